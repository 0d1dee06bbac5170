package container

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
)

const (
	testCA     = "-----BEGIN CERTIFICATE-----\nHANGAR\n-----END CERTIFICATE-----\n"
	testDistro = "-----BEGIN CERTIFICATE-----\nDISTRO\n-----END CERTIFICATE-----\n"
)

// TestStartTrustsEgressCA: a real unprivileged container on an overlay
// root gets the CA in its root before PID 1 runs, owned by its own root,
// once however many starts; a start without it removes it.
func TestStartTrustsEgressCA(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	s := e.spec(true, "sleep", "1000")
	upper := layer(t, s)
	s.EgressCA = []byte(testCA)
	e.start(s) // its clean-up stops and deletes whatever runs last
	for run := range 3 {
		if run > 0 {
			if _, err := e.d.Start(ctx, s); err != nil {
				t.Fatalf("start %d: %v", run, err)
			}
		}
		for _, p := range []string{driver.GuestCAFile, driver.GuestCABundle} {
			b, err := os.ReadFile(filepath.Join(upper, p))
			if err != nil {
				t.Fatalf("start %d: %v", run, err)
			}
			if strings.Count(string(b), testCA) != 1 {
				t.Fatalf("start %d: %s = %q, want the CA once", run, p, b)
			}
			st, err := os.Stat(filepath.Join(upper, p))
			if err != nil {
				t.Fatal(err)
			}
			if sys := st.Sys().(*syscall.Stat_t); sys.Uid != testHostID || sys.Gid != testHostID || st.Mode().Perm() != 0o644 {
				t.Fatalf("%s: owner %d:%d mode %v, want the container's root and 0644", p, sys.Uid, sys.Gid, st.Mode())
			}
		}
		if err := e.d.Stop(ctx, s.ID, 0, 0, true); err != nil {
			t.Fatal(err)
		}
	}
	// Egress off: what the image had (no bundle at all) is back.
	s.EgressCA = nil
	if _, err := e.d.Start(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(upper, driver.GuestCAFile)); !os.IsNotExist(err) {
		t.Fatalf("%s still there: %v", driver.GuestCAFile, err)
	}
	if b, err := os.ReadFile(filepath.Join(upper, driver.GuestCABundle)); !os.IsNotExist(err) {
		t.Fatalf("bundle after egress off: %q %v, want none as the image had", b, err)
	}
}

// TestTrustEgressCARoots: roots as images and hostile containers leave
// them. Links are followed inside the root, never to the host.
func TestTrustEgressCARoots(t *testing.T) {
	outside := t.TempDir()
	tests := []struct {
		name    string
		setup   func(t *testing.T, root string)
		bundle  string // where the bundle's content lands, in root
		before  string
		wantErr bool
	}{
		{"no /etc at all", func(*testing.T, string) {}, "etc/ssl/certs/ca-certificates.crt", "", false},
		{"a distribution's bundle", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), testDistro)
		}, "etc/ssl/certs/ca-certificates.crt", testDistro, false},
		{"bundle linked absolutely inside the root", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(root, "usr/share/ca/bundle.pem"), testDistro)
			symlink(t, "/usr/share/ca/bundle.pem", filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
		}, "usr/share/ca/bundle.pem", testDistro, false},
		{"/etc/ssl a link to a host path", func(t *testing.T, root string) {
			writeFile(t, filepath.Join(outside, "certs/ca-certificates.crt"), testDistro)
			symlink(t, outside, filepath.Join(root, "etc/ssl"))
		}, "", "", true},
		{"bundle a link out of the root", func(t *testing.T, root string) {
			symlink(t, "../../../../"+outside+"/certs/ca-certificates.crt", filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"))
		}, "", "", true},
		{"bundle a directory", func(t *testing.T, root string) {
			if err := os.MkdirAll(filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.setup(t, root)
			for range 2 {
				err := trustEgressCA(root, []byte(testCA), 0)
				if tc.wantErr {
					if err == nil {
						t.Fatal("no error")
					}
					if b, _ := os.ReadFile(filepath.Join(outside, "certs/ca-certificates.crt")); len(b) > 0 && string(b) != testDistro {
						t.Fatalf("a host file changed: %q", b)
					}
					if _, err := os.Stat(filepath.Join(outside, "certs/hangar-egress-ca.pem")); !os.IsNotExist(err) {
						t.Fatalf("a host file was made: %v", err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				b, err := os.ReadFile(filepath.Join(root, tc.bundle))
				if err != nil || !strings.HasPrefix(string(b), tc.before) || strings.Count(string(b), testCA) != 1 {
					t.Fatalf("bundle %q %v, want the old content and the CA once", b, err)
				}
			}
			if err := trustEgressCA(root, nil, 0); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(root, tc.bundle))
			if tc.before == "" && !os.IsNotExist(err) || tc.before != "" && string(b) != tc.before {
				t.Fatalf("bundle after removal %q %v, want %q", b, err, tc.before)
			}
		})
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}
