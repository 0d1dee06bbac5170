package qemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

// errAgentGone is what requests in flight get when the connection to the
// guest agent ends (the VM stopped).
var errAgentGone = errors.New("the guest agent went away (the VM stopped)")

// agentConn is the daemon's end of the virtio-serial port: one stream
// multiplexed into channels (package vmagent). Its reader never blocks on
// a consumer: each channel queues its frames.
type agentConn struct {
	conn net.Conn
	w    *vmagent.Writer

	mu     sync.Mutex
	chans  map[uint32]*frameQueue
	next   uint32
	closed bool

	ready     chan struct{} // closed at the first Ready
	readyOnce sync.Once
	version   string // the agent's protocol version, from its Ready
	// workloadPid is the guest pid of the workload its last Ready gave
	// (0: none runs, or it ended).
	workloadPid int
	// onWorkloadExit receives the workload's end.
	onWorkloadExit func(vmagent.WorkloadExit)
	done           chan struct{} // closed when the reader ends
}

// dialAgent connects to the agent's socket and says hello. It does not
// wait for the agent: a booting guest answers when it is up (ready).
func dialAgent(path string, onWorkloadExit func(vmagent.WorkloadExit)) (*agentConn, error) {
	c, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("connect to guest agent: %w", err)
	}
	a := &agentConn{
		conn:           c,
		w:              vmagent.NewWriter(c),
		chans:          map[uint32]*frameQueue{},
		ready:          make(chan struct{}),
		onWorkloadExit: onWorkloadExit,
		done:           make(chan struct{}),
	}
	if err := a.w.Write(vmagent.MsgHello, 0, nil); err != nil {
		c.Close()
		return nil, fmt.Errorf("guest agent hello: %w", err)
	}
	go a.read()
	return a, nil
}

func (a *agentConn) read() {
	defer close(a.done)
	r := vmagent.NewReader(a.conn)
	for {
		f, err := r.Read()
		if err != nil {
			break
		}
		if f.Channel == 0 {
			switch f.Type {
			case vmagent.MsgReady:
				var r vmagent.Ready
				if json.Unmarshal(f.Payload, &r) == nil {
					a.mu.Lock()
					a.version, a.workloadPid = r.Version, r.WorkloadPid
					a.mu.Unlock()
				}
				a.readyOnce.Do(func() { close(a.ready) })
			case vmagent.MsgWorkloadExit:
				var e vmagent.WorkloadExit
				if json.Unmarshal(f.Payload, &e) == nil {
					a.mu.Lock()
					a.workloadPid = 0
					a.mu.Unlock()
					if a.onWorkloadExit != nil {
						a.onWorkloadExit(e)
					}
				}
			}
			continue
		}
		a.mu.Lock()
		q := a.chans[f.Channel]
		a.mu.Unlock()
		if q != nil {
			q.push(f)
		}
	}
	a.mu.Lock()
	a.closed = true
	for id, q := range a.chans {
		q.close()
		delete(a.chans, id)
	}
	a.mu.Unlock()
}

// waitReady waits for the agent's greeting.
func (a *agentConn) waitReady(ctx context.Context) error {
	select {
	case <-a.ready:
		return nil
	case <-a.done:
		return errAgentGone
	case <-ctx.Done():
		return ctx.Err()
	}
}

// agentVersion is the protocol version the agent said it speaks (0
// before its Ready).
func (a *agentConn) agentVersion() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, _ := strconv.Atoi(a.version)
	return n
}

// workloadStarted says the agent reported the workload running: its
// Ready named the workload's pid, and no end came since.
func (a *agentConn) workloadStarted() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.workloadPid > 0
}

// open allocates a channel.
func (a *agentConn) open() (uint32, *frameQueue, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return 0, nil, errAgentGone
	}
	a.next++
	if a.next == 0 {
		a.next = 1
	}
	q := newFrameQueue()
	a.chans[a.next] = q
	return a.next, q, nil
}

func (a *agentConn) release(ch uint32) {
	a.mu.Lock()
	if q := a.chans[ch]; q != nil {
		q.close()
		delete(a.chans, ch)
	}
	a.mu.Unlock()
}

func (a *agentConn) send(t byte, ch uint32, v any) error {
	var b []byte
	switch v := v.(type) {
	case nil:
	case []byte:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return err
		}
	}
	if err := a.w.Write(t, ch, b); err != nil {
		return fmt.Errorf("guest agent: %w", err)
	}
	return nil
}

func (a *agentConn) close() {
	a.conn.Close()
	<-a.done
}

// agentError turns an Error frame into an error.
func agentError(f vmagent.Frame) error {
	var e vmagent.Error
	if err := json.Unmarshal(f.Payload, &e); err != nil {
		return fmt.Errorf("guest agent: bad error reply: %w", err)
	}
	return &guestError{e}
}

// guestError is an error the agent reported.
type guestError struct{ e vmagent.Error }

func (g *guestError) Error() string { return g.e.Message }

// frameQueue is an unbounded queue of one channel's frames.
type frameQueue struct {
	mu     sync.Mutex
	frames []vmagent.Frame
	wake   chan struct{}
	closed bool
}

func newFrameQueue() *frameQueue { return &frameQueue{wake: make(chan struct{}, 1)} }

func (q *frameQueue) push(f vmagent.Frame) {
	q.mu.Lock()
	q.frames = append(q.frames, f)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *frameQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// pop returns the next frame; errAgentGone once the queue is closed and
// empty.
func (q *frameQueue) pop(ctx context.Context) (vmagent.Frame, error) {
	for {
		q.mu.Lock()
		if len(q.frames) > 0 {
			f := q.frames[0]
			q.frames[0] = vmagent.Frame{}
			q.frames = q.frames[1:]
			q.mu.Unlock()
			return f, nil
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return vmagent.Frame{}, errAgentGone
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return vmagent.Frame{}, ctx.Err()
		}
	}
}
