package qemu

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
)

// fakeQMPServer speaks QMP's framing on a unix socket: a greeting, then
// for each command line the reply script gives (several lines: a reply
// and the events that follow it at once).
func fakeQMPServer(t *testing.T, script func(cmd string) []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qmp.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintln(c, `{"QMP": {"version": {}, "capabilities": ["oob"]}}`)
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			lines := script(sc.Text())
			if lines == nil {
				return // hang up
			}
			// One write: the reply and its events arrive together.
			if _, err := c.Write([]byte(strings.Join(lines, "\n") + "\n")); err != nil {
				return
			}
		}
	}()
	return path
}

func TestQMPSocket(t *testing.T) {
	event := func(i int) string {
		return fmt.Sprintf(`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "DEVICE_DELETED", "data": {"device": "disk-%d%s"}}`, i, strings.Repeat("x", 200))
	}
	path := fakeQMPServer(t, func(cmd string) []string {
		switch {
		case strings.Contains(cmd, "qmp_capabilities"):
			return []string{`{"return": {}}`}
		case strings.Contains(cmd, "device_del"):
			return []string{`{"return": {"answer": "device_del"}}`, event(1), event(2), event(3)}
		case strings.Contains(cmd, "bad"):
			return []string{`{"error": {"class": "GenericError", "desc": "Device 'x' not found"}}`}
		}
		return nil
	})
	s, err := dialQMP(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Disconnect()
	events, _ := s.Events(context.Background())
	got := make(chan string, 8)
	go func() {
		for ev := range events {
			got <- ev.Data["device"].(string)
		}
		close(got)
	}()
	out, err := s.Run([]byte(`{"execute": "device_del"}`))
	if err != nil || string(out) != `{"return": {"answer": "device_del"}}` {
		t.Fatalf("reply %q %v", out, err)
	}
	for i := 1; i <= 3; i++ {
		if dev := <-got; !strings.HasPrefix(dev, fmt.Sprintf("disk-%dx", i)) {
			t.Fatalf("event %d: device %q", i, dev)
		}
	}
	if _, err := s.Run([]byte(`{"execute": "bad"}`)); err == nil || err.Error() != "Device 'x' not found" {
		t.Fatalf("QMP error %v, want its description alone", err)
	}
	// The server hangs up: the command fails, events end.
	if _, err := s.Run([]byte(`{"execute": "quit"}`)); err == nil {
		t.Fatal("a command on a closed connection succeeded")
	}
	if _, ok := <-got; ok {
		t.Fatal("events after the connection ended")
	}
}

func TestDialQMPRefusesNonQMP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not-qmp.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err == nil {
			fmt.Fprintln(c, `{"hello": 1}`)
			c.Close()
		}
	}()
	if _, err := dialQMP(path); err == nil {
		t.Fatal("dialled a socket that does not speak QMP")
	}
	if _, err := dialQMP(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Fatal("dialled a missing socket")
	}
}
