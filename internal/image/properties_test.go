package image

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// tree builds a root filesystem from path -> content; content "->x" makes
// a symlink to x, "|fifo" a named pipe.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch {
		case len(c) > 2 && c[:2] == "->":
			err = os.Symlink(c[2:], full)
		case c == "|fifo":
			err = unix.Mkfifo(full, 0o644)
		default:
			err = os.WriteFile(full, []byte(c), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestReadOSRelease(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "os-release")
	if err := os.WriteFile(outside, []byte("NAME=Host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	debian := "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\nID=debian\n"
	tests := []struct {
		name        string
		files       map[string]string
		os, release string
	}{
		{"debian", map[string]string{"etc/os-release": debian}, "Debian GNU/Linux", "bookworm"},
		{"alpine without codename", map[string]string{"etc/os-release": "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.20.0\n"}, "Alpine Linux", "3.20.0"},
		{"relative symlink", map[string]string{"etc/os-release": "->../usr/lib/os-release", "usr/lib/os-release": debian}, "Debian GNU/Linux", "bookworm"},
		{"absolute symlink stays inside", map[string]string{"etc/os-release": "->/usr/lib/os-release", "usr/lib/os-release": debian}, "Debian GNU/Linux", "bookworm"},
		{"only usr/lib", map[string]string{"usr/lib/os-release": "ID=arch\n"}, "arch", ""},
		{"single quotes and comments", map[string]string{"etc/os-release": "# hi\nNAME='Void'\n\nVERSION_ID=\n"}, "Void", ""},
		// Hostile trees: nothing outside the tree is read, nothing blocks.
		{"symlink out of the tree", map[string]string{"etc/os-release": "->../../../../../../" + outside}, "", ""},
		{"absolute symlink to a host path", map[string]string{"etc/os-release": "->" + outside}, "", ""},
		{"symlink loop", map[string]string{"etc/os-release": "->os-release"}, "", ""},
		{"fifo", map[string]string{"etc/os-release": "|fifo"}, "", ""},
		{"directory", map[string]string{"etc/os-release/x": "NAME=x"}, "", ""},
		{"none", map[string]string{"bin/sh": "x"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			osName, release := readOSRelease(tree(t, tt.files))
			if osName != tt.os || release != tt.release {
				t.Errorf("got %q %q, want %q %q", osName, release, tt.os, tt.release)
			}
		})
	}
	if osName, _ := readOSRelease(filepath.Join(t.TempDir(), "missing")); osName != "" {
		t.Errorf("missing tree: %q", osName)
	}
}

func TestFillProperties(t *testing.T) {
	created := time.Date(2024, 3, 1, 13, 0, 5, 0, time.UTC)
	alpine := map[string]string{"etc/os-release": "NAME=\"Alpine Linux\"\nVERSION_ID=3.20.0\n"}
	tests := []struct {
		name  string
		props map[string]string
		files map[string]string // nil: a disk image, no tree
		want  map[string]string
	}{
		{"all from the tree", nil, alpine, map[string]string{
			"os": "Alpine Linux", "release": "3.20.0", "architecture": "x86_64", "serial": "20240301_13:00",
			"description": "Alpine Linux 3.20.0 x86_64 (20240301_13:00)"}},
		{"given values win", map[string]string{"os": "busybox", "description": "mine", "serial": "1"}, alpine, map[string]string{
			"os": "busybox", "release": "3.20.0", "architecture": "x86_64", "serial": "1", "description": "mine"}},
		{"no os: no description", nil, map[string]string{"bin/sh": "x"}, map[string]string{
			"architecture": "x86_64", "serial": "20240301_13:00"}},
		{"disk image", map[string]string{"os": "Ubuntu"}, nil, map[string]string{
			"os": "Ubuntu", "architecture": "x86_64", "serial": "20240301_13:00", "description": "Ubuntu x86_64 (20240301_13:00)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := Record{Architecture: "x86_64", CreatedAt: created, Properties: tt.props}
			dir := ""
			if tt.files != nil {
				dir = tree(t, tt.files)
			}
			fillProperties(&rec, dir)
			if diff := cmp.Diff(tt.want, rec.Properties); diff != "" {
				t.Errorf("properties (-want +got):\n%s", diff)
			}
		})
	}
}
