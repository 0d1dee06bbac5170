package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// monitor is one QMP connection. Its events are drained by a goroutine of
// its own and handed to onEvent in order: the connection's reader
// (qmp.go) blocks on an undrained event channel, and so would every
// command.
type monitor struct {
	mon  qmp.Monitor
	done chan struct{} // closed when the connection ends (QEMU exited or closed it)
}

// dialMonitor connects to a QMP socket, retrying until ctx ends: a QEMU
// just started needs a moment to listen.
func dialMonitor(ctx context.Context, path string) (qmp.Monitor, error) {
	for {
		m, err := dialQMP(path)
		if err == nil {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to QMP %s: %w", path, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// newMonitor starts draining m's events into onEvent.
func newMonitor(m qmp.Monitor, onEvent func(qmp.Event)) (*monitor, error) {
	events, err := m.Events(context.Background())
	if err != nil {
		return nil, fmt.Errorf("QMP events: %w", err)
	}
	mon := &monitor{mon: m, done: make(chan struct{})}
	go func() {
		defer close(mon.done)
		for ev := range events {
			onEvent(ev)
		}
	}()
	return mon, nil
}

// run executes a QMP command and returns its "return" value.
func (m *monitor) run(cmd string, args any) (json.RawMessage, error) {
	return m.runWithFile(cmd, args, nil)
}

// fileRunner is a QMP connection that passes descriptors (qmpSocket).
type fileRunner interface {
	RunWithFile(command []byte, f *os.File) ([]byte, error)
}

// runWithFile is run with f passed to QEMU along with the command (getfd);
// f nil is run.
func (m *monitor) runWithFile(cmd string, args any, f *os.File) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out []byte
	if f != nil {
		fr, ok := m.mon.(fileRunner)
		if !ok {
			return nil, fmt.Errorf("QMP %s: this connection cannot pass a descriptor", cmd)
		}
		out, err = fr.RunWithFile(b, f)
	} else {
		out, err = m.mon.Run(b)
	}
	if err != nil {
		return nil, fmt.Errorf("QMP %s: %w", cmd, err)
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("QMP %s: %w", cmd, err)
	}
	return resp.Return, nil
}

// runWithin is run for a caller that must not wait on QEMU for ever (a
// stop): Run cannot be cancelled, so a command QEMU does not
// answer is left to finish in the background and an error returned.
func (m *monitor) runWithin(d time.Duration, cmd string, args any) (json.RawMessage, error) {
	type result struct {
		out json.RawMessage
		err error
	}
	ch := make(chan result, 1)
	go func() {
		out, err := m.run(cmd, args)
		ch <- result{out, err}
	}()
	select {
	case r := <-ch:
		return r.out, r.err
	case <-m.done:
		return nil, fmt.Errorf("QMP %s: the connection ended", cmd)
	case <-time.After(d):
		return nil, fmt.Errorf("QMP %s: no answer in %s", cmd, d)
	}
}

// queryStatus returns QEMU's run state.
func (m *monitor) queryStatus() (string, error) {
	out, err := m.run("query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return "", fmt.Errorf("query-status: %w", err)
	}
	return st.Status, nil
}

func (m *monitor) close() {
	_ = m.mon.Disconnect()
}
