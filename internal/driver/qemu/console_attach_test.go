package qemu

import (
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
)

// consoleReader collects what an attached console prints.
type consoleReader struct {
	c    io.ReadWriteCloser
	got  chan string
	done chan struct{}
}

func readConsole(c io.ReadWriteCloser) *consoleReader {
	r := &consoleReader{c: c, got: make(chan string, 64), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				r.got <- string(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

// waitFor reads until the output holds want.
func (r *consoleReader) waitFor(t *testing.T, want string) {
	t.Helper()
	var all strings.Builder
	deadline := time.After(30 * time.Second)
	for !strings.Contains(all.String(), want) {
		select {
		case s := <-r.got:
			all.WriteString(s)
		case <-deadline:
			t.Fatalf("console never printed %q; got %q", want, all.String())
		}
	}
}

// testConsole runs on TestVMLifecycle's VM h1: two clients attach, both see
// what the guest prints on its console, input reaches a guest process
// reading the serial port, and detaching ends a client's Read.
func testConsole(t *testing.T, d *Driver, run func(args ...string) (string, int)) {
	ctx := context.Background()
	if _, err := d.AttachConsole(ctx, "h9"); err == nil {
		t.Fatal("attach to a VM that does not run succeeded")
	}
	var rs []*consoleReader
	for range 2 {
		c, err := d.AttachConsole(ctx, "h1")
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
		defer c.Close()
		rs = append(rs, readConsole(c))
	}
	run("sh", "-c", "echo printed-by-the-guest > /dev/console")
	for _, r := range rs {
		r.waitFor(t, "printed-by-the-guest")
	}

	// A guest process reads a line from the serial port and prints it.
	r, w, _ := os.Pipe()
	p, err := d.Exec(ctx, "h1", driver.ExecSpec{
		Args: []string{"sh", "-c", "read l </dev/ttyS0; echo got:$l"}, Env: []string{"PATH=/bin"}, Stdout: w, Stderr: w,
	})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs[1].c.Write([]byte("typed-in\r")); err != nil {
		t.Fatalf("console input: %v", err)
	}
	out, _ := io.ReadAll(r)
	if code, err := p.Wait(); err != nil || code != 0 || string(out) != "got:typed-in\n" {
		t.Fatalf("guest read %q (code %d, %v)", out, code, err)
	}

	for _, r := range rs {
		r.c.Close()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Fatal("Read goes on after Close")
		}
	}
	// The last client gone, the shared connection is closed, and a new
	// attach connects afresh.
	c, err := d.AttachConsole(ctx, "h1")
	if err != nil {
		t.Fatalf("attach again: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("\r")); err != nil {
		t.Fatalf("input after reattach: %v", err)
	}
}
