package image

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// FuzzUnpack feeds arbitrary bytes to the unpacker: it must never panic and
// never write outside the target directory, whatever it makes of them.
func FuzzUnpack(f *testing.F) {
	xattr := reg("x", "x", 0o644)
	xattr.PAXRecords = map[string]string{"SCHILY.xattr.user.a": "b", "SCHILY.xattr.security.capability": string(capV2(1, true))}
	for _, entries := range [][]tarEntry{
		{dirEntry("./", 0o755), reg("etc/hostname", "h", 0o644), symlinkEntry("bin", "usr/bin"), hardlinkEntry("h2", "etc/hostname")},
		{reg("../../escape", "e", 0o644)},
		{symlinkEntry("a", "/"), reg("a/evil", "e", 0o644)},
		{symlinkEntry("a", "../../.."), reg("a/evil", "e", 0o644), hardlinkEntry("b", "a/evil")},
		{symlinkEntry("a", "/tmp"), dirEntry("a/d/", 0o755), reg("a/d/f", "e", 0o644)},
		{hardlinkEntry("pw", "/etc/passwd")},
		{dirEntry("d/", 0o755), reg("d/f", "f", 0o644), reg("d", "now a file", 0o644), symlinkEntry("d", "..")},
		{{Header: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
			{Header: tar.Header{Typeflag: tar.TypeFifo, Name: "p", Mode: 0o600}}, reg("s", "suid", 0o4755)},
		{xattr},
	} {
		data := buildTar(f, entries...)
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 1024))

	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		root := filepath.Join(base, "root")
		outside := filepath.Join(base, "outside")
		os.Mkdir(root, 0o755)
		os.Mkdir(outside, 0o755)
		if err := os.WriteFile(filepath.Join(outside, "sentinel"), []byte("untouched"), 0o644); err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, outside)

		unpack(context.Background(), bytes.NewReader(data), root, unpackOptions{size: &sizeCap{limit: 4 << 20, why: "fuzz"}})

		if diff := cmp.Diff(before, snapshot(t, outside)); diff != "" {
			t.Fatalf("outside changed:\n%s", diff)
		}
		entries, err := os.ReadDir(base)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 2 {
			t.Fatalf("base holds %v", entries)
		}
		if fi, err := os.Lstat(root); err != nil || !fi.IsDir() {
			t.Fatalf("root replaced: %v", err)
		}
	})
}
