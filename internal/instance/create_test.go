package instance

import (
	"context"
	"testing"
)

// LXD takes an instance's architecture from its image and ignores the
// request's field, whatever it holds (clients send names, numbers or
// nothing); the record holds the host's architecture.
func TestCreateFromImageIgnoresArchitecture(t *testing.T) {
	for _, arch := range []string{"", "x86_64", "2", "s390x", "not-an-arch"} {
		t.Run(arch, func(t *testing.T) {
			s, _, _, _ := newTestService(t)
			req := imageReq("c1")
			req.Architecture = arch
			if err := launch(t, s, req); err != nil {
				t.Fatalf("create with architecture %q: %v", arch, err)
			}
			inst, err := s.Get(context.Background(), "c1")
			if err != nil {
				t.Fatal(err)
			}
			if inst.Architecture != "x86_64" {
				t.Errorf("architecture %q, want the image's x86_64", inst.Architecture)
			}
		})
	}
}

// Without an image the request's architecture is all there is, and it
// must be one this host runs.
func TestCreateEmptyArchitecture(t *testing.T) {
	tests := []struct {
		arch string
		ok   bool
	}{{"", true}, {"x86_64", true}, {"s390x", false}, {"2", false}}
	for _, tt := range tests {
		t.Run(tt.arch, func(t *testing.T) {
			s, _, _, _ := newTestService(t)
			c, err := s.Create(context.Background(), CreateRequest{Name: "e1", Architecture: tt.arch, Source: Source{Type: "none"}})
			if (err == nil) != tt.ok {
				t.Fatalf("create with architecture %q: err %v, want ok=%v", tt.arch, err, tt.ok)
			}
			if c != nil {
				c.Abort()
			}
		})
	}
}
