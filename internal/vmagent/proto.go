// Package vmagent is the wire protocol between hangard and hangar-agent, the
// guest agent that runs as PID 1 in a virtual machine booted from an OCI
// image. It is shared by both ends and imports nothing but the standard
// library, so the agent stays a small static binary.
//
// # Transport
//
// One virtio-serial port (name PortName) carries one byte stream between
// the daemon and the agent. QEMU listens on a unix socket in the instance's
// directory (agent.sock); the daemon connects to it. Only one host
// connection exists at a time; a daemon that is killed and started again
// connects anew, while the guest keeps running.
//
// # Frames
//
// Everything is a frame:
//
//	magic   4 bytes  "HGA1"
//	type    1 byte   one of the Msg* constants
//	channel 4 bytes  big endian; 0 is the control channel
//	length  4 bytes  big endian, at most MaxPayload
//	crc     4 bytes  big endian CRC-32 (IEEE) of the 13 bytes above
//	payload length bytes
//
// The header's magic and CRC let a reader find the next frame boundary
// when the stream was cut mid-frame: a daemon killed while the agent was
// writing leaves a partial frame in the port, which the next daemon skips
// (ReadFrame scans byte by byte for a valid header). Payloads are JSON for
// requests and replies, raw bytes for data.
//
// # Sessions
//
// The daemon opens a connection with MsgHello on channel 0; the agent drops
// every session of the previous connection and answers MsgReady (it also
// sends MsgReady by itself once it has booted). Each exec or file transfer
// uses a fresh channel number chosen by the daemon:
//
//	exec:   Exec → Started | Error; Stdin* (empty = EOF), Signal, Resize
//	        ← Stdout*, Stderr* (empty = EOF), then Exit
//	get:    FileGet → FileInfo, Data* (empty = end) | Error
//	put:    FilePut, Data* (empty = end) → Done | Error
//	delete: FileDelete → Done | Error
//	net:    NetConfig (a NIC) → Done | Error, once the interface is set up
//	        (the device may still be appearing: the agent waits for it)
//	state:  NetState (empty) → NetState | Error
//	disk:   Disk → Done | Error, once the guest has the disk (plugged or
//	        grown) and, for the root, its filesystem grew
//	ident:  Identity → Done | Error, once the guest has its new hostname,
//	        MACs and addresses (a VM restored from another's saved state)
//	stat:   Stat → StatInfo | Error
//
// A Hello ends the previous connection's session: what it had open is
// closed, and its processes' output is no longer sent (it would land on
// channel numbers the new daemon reuses; a VM restored from saved state
// has the saving daemon's execs still running in it).
//
// On channel 0 the daemon may send MsgShutdown (stop the workload and power
// off); the agent reports the workload's end with MsgWorkloadExit.
package vmagent

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
)

// PortName is the virtio-serial port's name (/sys/class/virtio-ports/*/name).
const PortName = "org.hangar.agent"

// LogPortName is the virtio-serial port the workload's stdout and stderr
// go to: QEMU appends what comes in to the console log. A serial UART
// under TCG moves a few hundred KB/s; a virtio port takes 32 KiB per
// write, handed over with no per-byte emulation.
const LogPortName = "org.hangar.log"

// ConfigPath is where the agent's boot configuration lies in the initramfs.
const ConfigPath = "/hangar/config.json"

// Version is the protocol version an agent reports in Ready, a number.
// Version 2 (VersionNet) added MsgNetConfig and MsgNetState, version 3
// (VersionDisk) MsgDisk, version 4 (VersionIdentity) MsgIdentity and
// sessions that end with their connection, version 5 (VersionStat)
// MsgStat and WorkloadExit's signal, OOM and not-found; an older agent
// ignores them, so the daemon does not send them to one.
const (
	Version         = "5"
	VersionNet      = 2
	VersionDisk     = 3
	VersionIdentity = 4
	VersionStat     = 5
)

// MaxPayload bounds one frame's payload.
const MaxPayload = 1 << 20

// DataChunk is the payload size data is sent in.
const DataChunk = 64 << 10

const headerLen = 17

var magic = [4]byte{'H', 'G', 'A', '1'}

// Message types.
const (
	MsgHello byte = iota + 1
	MsgReady
	MsgError
	MsgExec
	MsgStarted
	MsgStdin
	MsgStdout
	MsgStderr
	MsgSignal
	MsgResize
	MsgExit
	MsgFileGet
	MsgFileInfo
	MsgFilePut
	MsgFileDelete
	MsgData
	MsgDone
	MsgShutdown
	MsgWorkloadExit
	MsgNetConfig
	MsgNetState
	MsgDisk
	MsgIdentity
	MsgStat
	MsgStatInfo
)

// Frame is one message.
type Frame struct {
	Type    byte
	Channel uint32
	Payload []byte
}

// ErrTooLarge is returned for a payload over MaxPayload.
var ErrTooLarge = errors.New("vmagent: payload too large")

func header(t byte, ch uint32, n int) [headerLen]byte {
	var h [headerLen]byte
	copy(h[:4], magic[:])
	h[4] = t
	binary.BigEndian.PutUint32(h[5:9], ch)
	binary.BigEndian.PutUint32(h[9:13], uint32(n))
	binary.BigEndian.PutUint32(h[13:17], crc32.ChecksumIEEE(h[:13]))
	return h
}

// Writer writes whole frames; it is safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sends one frame. Header and payload go out in one write, so that a
// frame is never interleaved with another.
func (w *Writer) Write(t byte, ch uint32, payload []byte) error {
	if len(payload) > MaxPayload {
		return ErrTooLarge
	}
	h := header(t, ch, len(payload))
	buf := make([]byte, 0, headerLen+len(payload))
	buf = append(buf, h[:]...)
	buf = append(buf, payload...)
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.w.Write(buf)
	return err
}

// Reader reads frames, skipping garbage between them.
type Reader struct {
	r *bufio.Reader
	// Skipped counts bytes dropped while looking for a frame header.
	Skipped int64
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 128<<10)} }

// Read returns the next valid frame.
func (r *Reader) Read() (Frame, error) {
	for {
		h, err := r.r.Peek(headerLen)
		if err != nil {
			if len(h) > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, err
		}
		if [4]byte(h[:4]) != magic || binary.BigEndian.Uint32(h[13:17]) != crc32.ChecksumIEEE(h[:13]) {
			_, _ = r.r.Discard(1)
			r.Skipped++
			continue
		}
		f := Frame{Type: h[4], Channel: binary.BigEndian.Uint32(h[5:9])}
		n := binary.BigEndian.Uint32(h[9:13])
		if n > MaxPayload {
			_, _ = r.r.Discard(1)
			r.Skipped++
			continue
		}
		if _, err := r.r.Discard(headerLen); err != nil {
			return Frame{}, err
		}
		f.Payload = make([]byte, n)
		if _, err := io.ReadFull(r.r, f.Payload); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Frame{}, fmt.Errorf("vmagent: frame payload: %w", err)
		}
		return f, nil
	}
}
