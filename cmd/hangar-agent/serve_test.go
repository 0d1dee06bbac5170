package main

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/vmagent"
)

// TestHelloEndsSession checks that a new daemon connection ends the old
// one's session: what the old session had running writes nothing more
// (its channel numbers are the new daemon's to reuse), its stdin is
// closed, and the new daemon gets a Ready.
func TestHelloEndsSession(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	frames := make(chan vmagent.Frame, 8)
	go func() {
		r := vmagent.NewReader(pr)
		for {
			f, err := r.Read()
			if err != nil {
				close(frames)
				return
			}
			frames <- f
		}
	}()
	a := &agent{w: vmagent.NewWriter(pw)}
	old := &session{w: a.w, chans: map[uint32]*channel{}}
	a.session.Store(old)
	stdinR, stdinW := io.Pipe()
	old.put(1, &channel{stdin: newInputQueue(stdinW)})

	if err := old.write(vmagent.MsgStdout, 1, []byte("before")); err != nil {
		t.Fatal(err)
	}
	if f := <-frames; f.Type != vmagent.MsgStdout || string(f.Payload) != "before" {
		t.Fatalf("frame %+v", f)
	}
	a.handle(vmagent.Frame{Type: vmagent.MsgHello})
	if f := <-frames; f.Type != vmagent.MsgReady || f.Channel != 0 {
		t.Fatalf("after hello: frame %+v, want Ready", f)
	}
	if err := old.write(vmagent.MsgStdout, 1, []byte("stale")); !errors.Is(err, errSessionEnded) {
		t.Fatalf("write of the old session: %v, want it refused", err)
	}
	if _, err := stdinR.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("the old session's stdin: %v, want EOF", err)
	}
	cur := a.session.Load()
	if cur == old || cur.get(1) != nil {
		t.Fatalf("the session after hello is the old one, or has its channels")
	}
	if err := cur.write(vmagent.MsgStdout, 1, []byte("new")); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-frames:
		if string(f.Payload) != "new" {
			t.Fatalf("frame %+v, want the new session's", f)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the new session's write did not come")
	}
	pw.Close()
}
