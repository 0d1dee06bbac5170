package logtail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLastLines(t *testing.T) {
	long := strings.Repeat("x", 200<<10) // spans several backward blocks
	tests := []struct {
		name    string
		content string
		n       int
		want    string // what starts at the offset
	}{
		{"empty file", "", 3, ""},
		{"empty file, all", "", -1, ""},
		{"all", "a\nb\nc\n", -1, "a\nb\nc\n"},
		{"none", "a\nb\nc\n", 0, ""},
		{"last two", "a\nb\nc\n", 2, "b\nc\n"},
		{"no trailing newline", "a\nb\nc", 2, "b\nc"},
		{"no trailing newline, one", "a\nb\nc", 1, "c"},
		{"more than there are", "a\nb\n", 10, "a\nb\n"},
		{"exactly as many", "a\nb\n", 2, "a\nb\n"},
		{"one line, no newline", "abc", 1, "abc"},
		{"empty lines count", "a\n\n\n", 2, "\n\n"},
		{"huge lines", "first\n" + long + "\n" + long + "\nlast\n", 2, long + "\nlast\n"},
		{"huge last line", "first\n" + long, 1, long},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := strings.NewReader(tt.content)
			off, err := LastLines(r, int64(len(tt.content)), tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.content[off:]; got != tt.want {
				t.Fatalf("offset %d gives %q, want %q", off, short(got), short(tt.want))
			}
		})
	}
}

func short(s string) string {
	if len(s) > 40 {
		return fmt.Sprintf("%s...(%d bytes)", s[:20], len(s))
	}
	return s
}

// collect runs Stream without follow and returns the lines.
func collect(t *testing.T, path string, tail int) []string {
	t.Helper()
	var got []string
	err := Stream(context.Background(), path, tail, false, func(lines [][]byte) error {
		for _, l := range lines {
			got = append(got, string(l))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestStreamTail(t *testing.T) {
	huge := strings.Repeat("h", MaxLine+10)
	tests := []struct {
		name    string
		content *string // nil: no file
		tail    int
		want    []string
	}{
		{"no file", nil, -1, nil},
		{"empty file", ptr(""), -1, nil},
		{"all", ptr("a\nb\nc\n"), -1, []string{"a", "b", "c"}},
		{"tail 2", ptr("a\nb\nc\n"), 2, []string{"b", "c"}},
		{"tail 0", ptr("a\nb\nc\n"), 0, nil},
		{"tail larger than the file", ptr("a\nb\n"), 100, []string{"a", "b"}},
		{"partial last line emitted at the end", ptr("a\nb"), -1, []string{"a", "b"}},
		{"serial console line ends", ptr("a\r\nb\r\n"), -1, []string{"a", "b"}},
		{"empty lines kept", ptr("a\n\nb\n"), -1, []string{"a", "", "b"}},
		{"line longer than MaxLine is split", ptr("a\n" + huge + "\nz\n"), -1, []string{"a", huge[:MaxLine], huge[MaxLine:], "z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.log")
			if tt.content != nil {
				if err := os.WriteFile(path, []byte(*tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got := collect(t, path, tt.tail)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %d lines %q, want %d %q", len(got), shortAll(got), len(tt.want), shortAll(tt.want))
			}
		})
	}
}

func TestStreamManyLinesInBatches(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	var b bytes.Buffer
	const n = 100000
	for i := range n {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	calls, seq := 0, 0
	err := Stream(context.Background(), path, -1, false, func(lines [][]byte) error {
		calls++
		for _, l := range lines {
			if want := fmt.Sprintf("line %d", seq); string(l) != want {
				return fmt.Errorf("got %q, want %q", l, want)
			}
			seq++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seq != n {
		t.Fatalf("got %d lines, want %d", seq, n)
	}
	if calls >= n/10 {
		t.Fatalf("%d emits for %d lines: not batched", calls, n)
	}
}

func TestStreamEmitError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(path, []byte("a\nb\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("client gone")
	err := Stream(context.Background(), path, -1, false, func([][]byte) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want the emit error", err)
	}
}

func ptr(s string) *string { return &s }

func shortAll(l []string) []string {
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = short(s)
	}
	return out
}

// follower runs Stream with follow in the background.
type follower struct {
	lines  chan string
	done   chan error
	cancel context.CancelFunc
}

func follow(t *testing.T, path string, tail int) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{lines: make(chan string, 1024), done: make(chan error, 1), cancel: cancel}
	go func() {
		f.done <- Stream(ctx, path, tail, true, func(lines [][]byte) error {
			for _, l := range lines {
				f.lines <- string(l)
			}
			return nil
		})
	}()
	t.Cleanup(cancel)
	return f
}

// expect waits for the next lines to be want.
func (f *follower) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-f.lines:
			if got != w {
				t.Fatalf("got line %q, want %q", got, w)
			}
		case err := <-f.done:
			t.Fatalf("stream ended (%v) waiting for %q", err, w)
		case <-time.After(10 * time.Second):
			t.Fatalf("no line %q after 10s", w)
		}
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestStreamFollow(t *testing.T) {
	type step struct {
		do   func(t *testing.T, path string)
		want []string
	}
	appendS := func(s string) func(*testing.T, string) {
		return func(t *testing.T, p string) { appendFile(t, p, s) }
	}
	tests := []struct {
		name    string
		initial *string
		tail    int
		steps   []step
	}{
		{"appends after the tail", ptr("old1\nold2\nold3\n"), 1, []step{
			{nil, []string{"old3"}},
			{appendS("new1\nnew2\n"), []string{"new1", "new2"}},
			{appendS("new3\n"), []string{"new3"}},
		}},
		{"partial line held until its newline", ptr(""), -1, []step{
			{appendS("par"), nil},
			{appendS("tial\nnext\n"), []string{"partial", "next"}},
		}},
		{"file created later", nil, -1, []step{
			{appendS("born\n"), []string{"born"}},
			{appendS("grown\n"), []string{"grown"}},
		}},
		{"truncation starts over", ptr("a\n"), -1, []step{
			{nil, []string{"a"}},
			{func(t *testing.T, p string) {
				if err := os.Truncate(p, 0); err != nil {
					t.Fatal(err)
				}
			}, nil},
			{appendS("b\n"), []string{"b"}},
		}},
		{"rotation by rename drains the old file, then follows the new", ptr("a\n"), -1, []step{
			{nil, []string{"a"}},
			{func(t *testing.T, p string) {
				// The writer's last words land in the old file after the rename.
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := os.Rename(p, p+".1"); err != nil {
					t.Fatal(err)
				}
				if _, err := f.WriteString("last in old\n"); err != nil {
					t.Fatal(err)
				}
				appendFile(t, p, "first in new\n")
			}, []string{"last in old", "first in new"}},
			{appendS("more\n"), []string{"more"}},
		}},
		{"removed and made again", ptr("a\n"), -1, []step{
			{nil, []string{"a"}},
			{func(t *testing.T, p string) {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				appendFile(t, p, "again\n")
			}, []string{"again"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.log")
			if tt.initial != nil {
				if err := os.WriteFile(path, []byte(*tt.initial), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			f := follow(t, path, tt.tail)
			for _, s := range tt.steps {
				if s.do != nil {
					s.do(t, path)
				}
				f.expect(t, s.want...)
			}
			f.cancel()
			if err := <-f.done; err != nil {
				t.Fatalf("stream ended with %v, want nil on cancel", err)
			}
			select {
			case l := <-f.lines:
				t.Fatalf("unexpected line %q", l)
			default:
			}
		})
	}
}

func TestStreamFollowCancelFlushesPartialAndLeaksNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	path := filepath.Join(t.TempDir(), "x.log")
	if err := os.WriteFile(path, []byte("done\nhalf"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := follow(t, path, -1)
	f.expect(t, "done")
	f.cancel()
	if err := <-f.done; err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	f.expect(t, "half")
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}

func TestStreamFollowDirectoryRemoved(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inst")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "x.log")
	appendFile(t, path, "a\n")
	f := follow(t, path, -1)
	f.expect(t, "a")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-f.done:
		if !errors.Is(err, ErrGone) {
			t.Fatalf("got %v, want ErrGone", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream still running after its directory was removed")
	}
}

func TestStreamFollowDirectoryMadeLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "inst")
	path := filepath.Join(dir, "x.log")
	f := follow(t, path, -1)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, "first\n")
	f.expect(t, "first")
	appendFile(t, path, "second\n")
	f.expect(t, "second")
}

func TestStreamFollowNoParent(t *testing.T) {
	err := Stream(context.Background(), filepath.Join(t.TempDir(), "nope", "inst", "x.log"), -1, true, func([][]byte) error { return nil })
	if !errors.Is(err, ErrGone) {
		t.Fatalf("got %v, want ErrGone", err)
	}
}

// A follow whose tail has no line says so with one empty emit, so that a
// caller answering a client (SSE headers) need not wait for a new line.
func TestStreamFollowSaysReady(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content string
		tail    int
		want    int // lines in the first emit
	}{
		{"tail 0 of a log", "a\nb\n", 0, 0},
		{"empty log", "", -1, 0},
		{"tail with lines", "a\nb\n", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.log")
			appendFile(t, path, tc.content)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			first := make(chan int, 1)
			done := make(chan error, 1)
			go func() {
				done <- Stream(ctx, path, tc.tail, true, func(lines [][]byte) error {
					select {
					case first <- len(lines):
					default:
					}
					return nil
				})
			}()
			select {
			case n := <-first:
				if n != tc.want {
					t.Fatalf("first emit has %d lines, want %d", n, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no emit while following a quiet log")
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}
