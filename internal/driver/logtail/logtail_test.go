package logtail

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	write := func(s string, flag int) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	var mu sync.Mutex
	tail := New(path, &mu) // no file yet
	buf := make([]byte, 64)
	read := func() string {
		n, err := tail.ReadNew(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	steps := []struct {
		name  string
		write string
		flag  int
		want  string
	}{
		{"nothing yet", "", 0, ""},
		{"first output", "boot\n", os.O_APPEND, "boot\n"},
		{"nothing new", "", os.O_APPEND, ""},
		{"appended", "more\n", os.O_APPEND, "more\n"},
		{"truncated and rewritten", "new\n", os.O_TRUNC, "new\n"},
	}
	for _, s := range steps {
		if s.flag != 0 || s.write != "" {
			write(s.write, s.flag)
		}
		if got := read(); got != s.want {
			t.Errorf("%s: read %q, want %q", s.name, got, s.want)
		}
	}
	// A new Tail starts at the end: old output is not replayed.
	if n, _ := New(path, nil).ReadNew(buf); n != 0 {
		t.Errorf("new tail replayed %q", buf[:n])
	}
}
