package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/driver"
)

// TestTrustEgressCA: on roots as images have them, the CA is written
// alone and appended to the bundle once however many boots, a bundle
// that is a link stays one, and an empty CA undoes it all.
func TestTrustEgressCA(t *testing.T) {
	const (
		ca     = "-----BEGIN CERTIFICATE-----\nHANGAR\n-----END CERTIFICATE-----\n"
		distro = "-----BEGIN CERTIFICATE-----\nDISTRO\n-----END CERTIFICATE-----\n"
	)
	tests := []struct {
		name   string
		setup  func(t *testing.T, root string)
		bundle string // where the bundle's content lives, relative to root
		before string // its content before
		mode   os.FileMode
	}{
		{"busybox: no /etc/ssl", func(*testing.T, string) {}, "etc/ssl/certs/ca-certificates.crt", "", 0o644},
		{"debian: a bundle of its own", func(t *testing.T, root string) {
			write(t, filepath.Join(root, "etc/ssl/certs/ca-certificates.crt"), distro, 0o444)
		}, "etc/ssl/certs/ca-certificates.crt", distro, 0o444},
		{"bundle is a link", func(t *testing.T, root string) {
			write(t, filepath.Join(root, "etc/ssl/cert.pem"), distro, 0o644)
			if err := os.MkdirAll(filepath.Join(root, "etc/ssl/certs"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("../cert.pem", filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")); err != nil {
				t.Fatal(err)
			}
		}, "etc/ssl/cert.pem", distro, 0o644},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			tc.setup(t, root)
			caFile := filepath.Join(root, driver.GuestCAFile)
			bundle := filepath.Join(root, tc.bundle)
			for boot := range 3 {
				if err := trustEgressCA(root, []byte(ca)); err != nil {
					t.Fatalf("boot %d: %v", boot, err)
				}
				if got := read(t, caFile); got != ca {
					t.Fatalf("boot %d: %s = %q", boot, driver.GuestCAFile, got)
				}
				got := read(t, bundle)
				if !strings.HasPrefix(got, tc.before) || strings.Count(got, ca) != 1 {
					t.Fatalf("boot %d: bundle = %q, want the old content and the CA once", boot, got)
				}
				if st, err := os.Stat(bundle); err != nil || st.Mode().Perm() != tc.mode {
					t.Fatalf("boot %d: bundle mode %v (%v), want %v", boot, st.Mode(), err, tc.mode)
				}
			}
			if st, err := os.Lstat(filepath.Join(root, driver.GuestCABundle)); err != nil || (tc.bundle != driver.GuestCABundle[1:]) != (st.Mode()&os.ModeSymlink != 0) {
				t.Fatalf("the bundle's path changed kind: %v %v", st, err)
			}
			// Egress turned off: back to what the image had.
			if err := trustEgressCA(root, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(caFile); !os.IsNotExist(err) {
				t.Fatalf("%s still there: %v", driver.GuestCAFile, err)
			}
			if tc.before == "" {
				if _, err := os.Lstat(bundle); !os.IsNotExist(err) {
					t.Fatalf("bundle after removal: %v, want none as the image had", err)
				}
			} else if got := read(t, bundle); got != tc.before {
				t.Fatalf("bundle after removal = %q, want %q", got, tc.before)
			}
		})
	}

	// Without egress a root that never trusted the CA is not touched.
	root := t.TempDir()
	if err := trustEgressCA(root, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc")); !os.IsNotExist(err) {
		t.Fatalf("/etc made without egress: %v", err)
	}
	// A root where the directory cannot be made fails with an error.
	write(t, filepath.Join(root, "etc/ssl"), "a file", 0o644)
	if err := trustEgressCA(root, []byte(ca)); err == nil {
		t.Fatal("no error with /etc/ssl a file")
	}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
