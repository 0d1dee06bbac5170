package qemu

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"golang.org/x/sys/unix"
)

// qmpSocket is a QMP connection over a unix socket: one command at a time,
// replies and events told apart line by line. It implements qmp.Monitor.
// go-qemu's SocketMonitor hands a command's reply over as a slice of its
// line scanner's buffer, which its reader overwrites with the next line
// (an event that follows at once, as DEVICE_DELETED follows device_del)
// while the command's caller still decodes it; this reader copies every
// line it passes on.
type qmpSocket struct {
	conn    net.Conn
	mu      sync.Mutex // one command at a time
	replies chan qmpReply
	events  chan qmp.Event
}

type qmpReply struct {
	buf []byte
	err error
}

// handshakeTimeout bounds QEMU's greeting and capabilities negotiation.
const handshakeTimeout = 10 * time.Second

// dialQMP connects to the QMP socket at path and leaves capabilities
// negotiation mode.
func dialQMP(path string) (*qmpSocket, error) {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var greeting struct {
		QMP *json.RawMessage `json:"QMP"`
	}
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &greeting) != nil || greeting.QMP == nil {
		c.Close()
		return nil, fmt.Errorf("QMP %s: no greeting: %v", path, sc.Err())
	}
	if _, err := c.Write([]byte(`{"execute":"qmp_capabilities"}` + "\n")); err != nil {
		c.Close()
		return nil, err
	}
	for {
		if !sc.Scan() {
			c.Close()
			return nil, fmt.Errorf("QMP %s: capabilities: %v", path, sc.Err())
		}
		if err := qmpError(sc.Bytes()); err != nil {
			c.Close()
			return nil, fmt.Errorf("QMP %s: capabilities: %w", path, err)
		}
		var r struct {
			Return *json.RawMessage `json:"return"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Return != nil {
			break
		}
	}
	_ = c.SetDeadline(time.Time{})
	s := &qmpSocket{conn: c, replies: make(chan qmpReply), events: make(chan qmp.Event)}
	go s.read(sc)
	return s, nil
}

// read passes every line on: events to events (blocking: newMonitor
// drains them for the connection's life), the rest to the command
// waiting for its reply.
func (s *qmpSocket) read(sc *bufio.Scanner) {
	defer close(s.events)
	defer close(s.replies)
	for sc.Scan() {
		line := append([]byte(nil), sc.Bytes()...)
		var ev qmp.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			continue
		}
		if ev.Event != "" {
			s.events <- ev
			continue
		}
		s.replies <- qmpReply{buf: line}
	}
	if err := sc.Err(); err != nil {
		// To a command waiting, if any; the close below ends the
		// others.
		select {
		case s.replies <- qmpReply{err: err}:
		default:
		}
	}
}

// qmpError is the error a reply carries, as its description alone.
func qmpError(line []byte) error {
	var r struct {
		Error *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
	}
	if json.Unmarshal(line, &r) != nil || r.Error == nil {
		return nil
	}
	return errors.New(r.Error.Desc)
}

// Connect is a no-op: dialQMP connected.
func (s *qmpSocket) Connect() error { return nil }

// Disconnect closes the connection; the reader ends and closes the event
// channel.
func (s *qmpSocket) Disconnect() error { return s.conn.Close() }

// Events is the event channel, closed when the connection ends.
func (s *qmpSocket) Events(context.Context) (<-chan qmp.Event, error) { return s.events, nil }

// Run sends one command and returns its reply line; a QMP error is
// returned as an error with QEMU's description.
func (s *qmpSocket) Run(command []byte) ([]byte, error) {
	return s.RunWithFile(command, nil)
}

// RunWithFile is Run with a descriptor passed along (SCM_RIGHTS), as
// getfd takes it; f nil passes none.
func (s *qmpSocket) RunWithFile(command []byte, f *os.File) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == nil {
		if _, err := s.conn.Write(append(command, '\n')); err != nil {
			return nil, err
		}
	} else {
		uc, ok := s.conn.(*net.UnixConn)
		if !ok {
			return nil, errors.New("passing a descriptor needs a unix socket")
		}
		if _, _, err := uc.WriteMsgUnix(append(command, '\n'), unix.UnixRights(int(f.Fd())), nil); err != nil {
			return nil, err
		}
	}
	r, ok := <-s.replies
	if !ok {
		return nil, errors.New("the QMP connection ended")
	}
	if r.err != nil {
		return nil, r.err
	}
	if err := qmpError(r.buf); err != nil {
		return nil, err
	}
	return r.buf, nil
}
