package qemu

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestLegacyCache: what a driver before storage pools left (base disks
// and pinned images in Dir/.cache, a root overlay in an instance's
// directory) neither fails Recover nor Delete; Recover removes only the
// partial builds, since the rest backs roots storage adopted, and the
// directory once nothing else is there.
func TestLegacyCache(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cache []string
		want  []string // left in .cache; nil: .cache is gone
	}{
		{"bases stay and partial builds go",
			[]string{"disk-a.ext4", "image-b.qcow2", "disk-c.ext4.build", "disk-d.ext4.build.tmp", "image-e.raw.tmp"},
			[]string{"disk-a.ext4", "image-b.qcow2"}},
		{"partial builds only", []string{"disk-c.ext4.build", "image-e.raw.tmp"}, nil},
		{"empty", []string{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cache := filepath.Join(dir, ".cache")
			if err := os.Mkdir(cache, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, n := range tc.cache {
				if err := os.WriteFile(filepath.Join(cache, n), []byte("x"), 0o444); err != nil {
					t.Fatal(err)
				}
			}
			// A stopped VM of an old driver: its root overlay and logs.
			old := filepath.Join(dir, "h1")
			if err := os.Mkdir(old, 0o700); err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"root.qcow2", fileConsole, fileMeta} {
				if err := os.WriteFile(filepath.Join(old, n), []byte("x"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			d, err := New(Config{Dir: dir, CgroupParent: "/hangar-vm-test"})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			live, err := d.Recover(ctx)
			if err != nil || len(live) != 0 {
				t.Fatalf("recover: %v %v, want no live VM", live, err)
			}
			ents, err := os.ReadDir(cache)
			if tc.want == nil {
				if !errors.Is(err, os.ErrNotExist) {
					t.Fatalf(".cache after recover: %v %v, want it gone", ents, err)
				}
			} else {
				var got []string
				for _, e := range ents {
					got = append(got, e.Name())
				}
				if err != nil || !slices.Equal(got, tc.want) {
					t.Fatalf(".cache after recover holds %v (%v), want %v", got, err, tc.want)
				}
			}
			if err := d.Delete(ctx, "h1"); err != nil {
				t.Fatalf("delete an old VM: %v", err)
			}
			if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("old instance dir after delete: %v", err)
			}
			if tc.want != nil {
				if _, err := os.Stat(filepath.Join(cache, tc.want[0])); err != nil {
					t.Fatalf("delete took a base disk: %v", err)
				}
			}
		})
	}
}
