package cli

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDetachReader(t *testing.T) {
	tests := []struct {
		name, in, want string
		detached       bool
	}{
		{"plain", "hello\n", "hello\n", false},
		{"detach", "ab\x01qcd", "ab", true},
		{"ctrl-a alone passes", "a\x01b", "a\x01b", false},
		{"ctrl-a at the end", "a\x01", "a", false},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			d := &detachReader{r: r, detach: make(chan struct{})}
			got, _ := io.ReadAll(d)
			detached := false
			select {
			case <-d.detach:
				detached = true
			default:
			}
			if string(got) != tt.want || detached != tt.detached {
				t.Errorf("%s (one byte at a time: %v): got %q detached=%v, want %q %v", tt.name, oneByte, got, detached, tt.want, tt.detached)
			}
		}
	}
}
