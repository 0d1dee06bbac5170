package qemu

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// fakeStream is what QEMU's migration stream looks like to the codec:
// the QEVM magic, then pages, most of them zero, some random.
func fakeStream(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("QEVM\x00\x00\x00\x03")
	page := make([]byte, 4096)
	for i := 0; i < 2048; i++ {
		if i%8 == 0 {
			if _, err := rand.Read(page); err != nil {
				t.Fatal(err)
			}
		} else {
			clear(page)
		}
		b.Write(page)
	}
	return b.Bytes()
}

// TestStateCodecRoundTrip writes a stream through the sink as QEMU does
// (into the descriptor it is given, then closing it), after a header,
// and reads it back through the source as QEMU would: the same bytes, for
// every compression, and the file is compressed when asked.
func TestStateCodecRoundTrip(t *testing.T) {
	stream := fakeStream(t)
	for _, spec := range []string{"none", "zstd", "zstd:19", "lz4", "lz4:9"} {
		t.Run(spec, func(t *testing.T) {
			comp, err := driver.ParseCompression(spec)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "state")
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			hdr := stateHeader{Memory: 512 << 20, CPUs: 1, Compression: comp.String()}
			if err := writeStateHeader(f, hdr); err != nil {
				t.Fatal(err)
			}
			sink, err := newStateSink(f, comp)
			if err != nil {
				t.Fatal(err)
			}
			// QEMU's copy of its end (getfd) outlives the daemon's.
			qemuEnd, err := dupFile(sink.qemuEnd)
			if err != nil {
				t.Fatal(err)
			}
			sink.closeOurs()
			if _, err := qemuEnd.Write(stream); err != nil {
				t.Fatal(err)
			}
			qemuEnd.Close()
			if err := sink.wait(true); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if !comp.IsZero() && st.Size() >= int64(len(stream))/2 {
				t.Errorf("%s: file %d bytes for a %d-byte stream, 7/8 zero: not compressed", spec, st.Size(), len(stream))
			}

			rf, got, found, err := openStateFile(path)
			if err != nil || !found || got.Memory != hdr.Memory || got.Compression != hdr.Compression {
				t.Fatalf("header %+v found=%v err=%v", got, found, err)
			}
			defer rf.Close()
			src, err := newStateSource(rf)
			if err != nil {
				t.Fatal(err)
			}
			qemuIn, err := dupFile(src.qemuEnd)
			if err != nil {
				t.Fatal(err)
			}
			src.closeOurs()
			back, err := io.ReadAll(qemuIn)
			qemuIn.Close()
			if err != nil {
				t.Fatal(err)
			}
			if err := src.close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, stream) {
				t.Fatalf("%s: read back %d bytes, want the %d written", spec, len(back), len(stream))
			}
		})
	}
}

// A restore that stops reading early (QEMU failed, or does not read the
// stream's tail) must not leave the decompressor stuck.
func TestStateSourceReaderGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := newStateSink(f, driver.Compression{Algorithm: driver.CompressZstd, Level: 1})
	if err != nil {
		t.Fatal(err)
	}
	stream := fakeStream(t)
	if _, err := sink.qemuEnd.Write(stream); err != nil {
		t.Fatal(err)
	}
	sink.qemuEnd.Close()
	if err := sink.wait(true); err != nil {
		t.Fatal(err)
	}
	f.Close()
	rf, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	src, err := newStateSource(rf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(src.qemuEnd, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	src.qemuEnd.Close() // the reader dies
	if err := src.close(); err != nil {
		t.Fatalf("close after the reader went: %v", err)
	}
}

func TestStateSourceBadInput(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage":   "this is not a VM state at all",
		"truncated": "QE",
		"empty":     "",
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		f, _, found, err := openStateFile(path)
		if err != nil || found {
			t.Fatalf("%s: open %v found=%v", name, err, found)
		}
		if _, err := newStateSource(f); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err = %v, want invalid", name, err)
		}
		f.Close()
	}
	// A header that promises a stream of a format nobody knows.
	path := filepath.Join(dir, "badhdr")
	if err := os.WriteFile(path, []byte(stateMagic+"{\"memory\":0}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := openStateFile(path); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad header: %v", err)
	}
}

func dupFile(f *os.File) (*os.File, error) {
	fd, err := dupCloexec(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), f.Name()), nil
}

func dupCloexec(fd int) (int, error) { return unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0) }
