package backup

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

const goodIndex = "name: c1\nbackend: dir\npool: default\ntype: container\nsnapshots: [snap0]\n"

// goodEntries is a small valid container backup with one snapshot.
func goodEntries() []ent {
	return []ent{
		{name: IndexName, body: goodIndex},
		{name: "backup/snapshots/snap0", typ: tar.TypeDir, mode: 0o755},
		{name: "backup/snapshots/snap0/rootfs/etc/hostname", body: "old\n"},
		{name: "backup/container", typ: tar.TypeDir, mode: 0o755},
		{name: "backup/container/backup.yaml", body: "container: {name: c1}\n"},
		{name: "backup/container/rootfs", typ: tar.TypeDir, mode: 0o755},
		{name: "backup/container/rootfs/etc/hostname", body: strings.Repeat("new\n", 3000)},
	}
}

// TestBadArchives feeds broken and hostile archives: each must fail with
// an invalid-argument error and write nothing outside the destination.
func TestBadArchives(t *testing.T) {
	requireRoot(t)
	with := func(extra ...ent) []ent { return append(goodEntries(), extra...) }
	replaceIndex := func(body string) []ent {
		e := goodEntries()
		e[0].body = body
		return e
	}
	tests := []struct {
		name    string
		entries []ent
		errHas  string
	}{
		{"dot-dot path", with(ent{name: "backup/container/rootfs/../../../../outside/pwned", body: "x"}), "climbs"},
		{"dot-dot at the top", with(ent{name: "../outside/pwned", body: "x"}), "climbs"},
		{"absolute path", with(ent{name: "/outside/pwned", body: "x"}), "absolute"},
		{"dot component", with(ent{name: "backup/container/./rootfs/x", body: "x"}), "not clean"},
		{"symlink then a file through it", with(
			ent{name: "backup/container/rootfs/evil", typ: tar.TypeSymlink, link: "../../../outside"},
			ent{name: "backup/container/rootfs/evil/pwned", body: "x"}), "symlink"},
		{"absolute symlink then a directory through it", with(
			ent{name: "backup/container/rootfs/evil", typ: tar.TypeSymlink, link: "/"},
			ent{name: "backup/container/rootfs/evil/tmp", typ: tar.TypeDir}), "symlink"},
		{"hard link outside", with(ent{name: "backup/container/rootfs/h", typ: tar.TypeLink, link: "../../etc/passwd"}), "climbs"},
		{"hard link to another volume", with(ent{name: "backup/container/rootfs/h", typ: tar.TypeLink, link: "backup/snapshots/snap0/rootfs/etc/hostname"}), "outside its volume"},
		{"hard link to nothing", with(ent{name: "backup/container/rootfs/h", typ: tar.TypeLink, link: "backup/container/rootfs/nothing"}), "hard link"},
		{"file replacing a directory", with(ent{name: "backup/container/rootfs/etc", body: "x"}), "replace a directory"},
		{"index missing", goodEntries()[1:], "must be the first entry"},
		{"index not first", append([]ent{goodEntries()[3]}, goodEntries()...), "must be the first entry"},
		{"index twice", with(ent{name: IndexName, body: goodIndex}), "twice"},
		{"index a directory", []ent{{name: IndexName, typ: tar.TypeDir}}, "not a regular file"},
		{"unknown type", replaceIndex("name: c1\nbackend: dir\ntype: lxc\n"), "unknown instance type"},
		{"bad yaml", replaceIndex("name: [c1\n"), "invalid index.yaml"},
		{"yaml of another shape", replaceIndex("- c1\n"), "invalid index.yaml"},
		{"bad name", replaceIndex("name: ../c1\nbackend: dir\n"), "invalid instance name"},
		{"bad snapshot name", replaceIndex("name: c1\nbackend: dir\nsnapshots: [a/b]\n"), "invalid snapshot name"},
		{"unknown backend", replaceIndex("name: c1\nbackend: nfs\n"), "unknown storage backend"},
		{"snapshot not in the index", with(ent{name: "backup/snapshots/other/x", body: "x"}), "unexpected entry"},
		{"unknown entry", with(ent{name: "backup/other", body: "x"}), "unexpected entry"},
		{"outside backup/", with(ent{name: "etc/passwd", body: "x"}), "unexpected entry"},
		{"vm disk in a container backup", with(ent{name: "backup/virtual-machine.img", body: "x"}), "unexpected entry"},
		{"optimized stream in a tree backup", with(ent{name: "backup/container.bin", body: "x"}), "unexpected entry"},
		{"snapshot promised but absent", replaceIndex("name: c1\nbackend: dir\nsnapshots: [snap0, snap1]\n"), "no volume data for snapshot \"snap1\""},
		{"volume root not a directory", with(ent{name: "backup/snapshots/snap0", body: "x"}), "must be a directory"},
		{"owner outside the map", with(ent{name: "backup/container/rootfs/big", body: "x", uid: mapSize + 5}), "outside the target's id map"},
		{"bad capability", with(ent{name: "backup/container/rootfs/cap", body: "x", pax: map[string]string{"SCHILY.xattr.security.capability": "abc"}}), "xattr security.capability"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := mkTar(t, CompressionNone, tt.entries)
			checkRefused(t, data, tt.errHas)
		})
	}
}

// checkRefused restores data under base/dst and checks the error and
// that base holds nothing but dst.
func checkRefused(t *testing.T, data []byte, errHas string) {
	t.Helper()
	base := t.TempDir()
	dst := filepath.Join(base, "dst")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{dst, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, err := restore(data, dst, ExtractOptions{HostMap: SingleRange(dstBase, mapSize)})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(errString(err), errHas) {
		t.Fatalf("%v, want invalid containing %q", err, errHas)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("written outside the destination: %v", entries)
	}
	if entries, _ := os.ReadDir(base); len(entries) != 2 {
		t.Fatalf("written beside the destination: %v", entries)
	}
	if _, err := os.Stat("/outside"); err == nil {
		t.Fatal("/outside exists")
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestTruncated cuts valid archives anywhere: at every cut reading must
// fail, never end early with a partial restore.
func TestTruncated(t *testing.T) {
	requireRoot(t)
	for _, algo := range []string{CompressionNone, CompressionGzip, CompressionZstd, CompressionXz} {
		data := mkTar(t, algo, goodEntries())
		if _, err := restore(data, t.TempDir(), ExtractOptions{}); err != nil {
			t.Fatalf("%s: the whole archive: %v", algo, err)
		}
		cuts := []int{0, 1, 10, 100, 511, 512, 1024, 1500, len(data) / 3, len(data) / 2, len(data) - 1}
		if algo == CompressionNone {
			// Between two entries (the trailer gone), and inside the
			// trailer: archive/tar alone reports both as a clean end.
			cuts = append(cuts, len(data)-1024, len(data)-512)
		}
		for _, cut := range cuts {
			if cut < 0 || cut >= len(data) {
				continue
			}
			_, err := restore(data[:cut], t.TempDir(), ExtractOptions{})
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%s cut at %d of %d: %v, want invalid", algo, cut, len(data), err)
				continue
			}
			if !strings.Contains(err.Error(), "truncated") {
				t.Errorf("%s cut at %d of %d: %v, want it called truncated", algo, cut, len(data), err)
			}
		}
	}
}

func TestNotATarball(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty":   nil,
		"text":    []byte(strings.Repeat("hello world\n", 100)),
		"bad gz":  append([]byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0}, []byte(strings.Repeat("garbage", 100))...),
		"zip":     append([]byte("PK\x03\x04"), make([]byte, 600)...),
		"bad zst": append([]byte{0x28, 0xb5, 0x2f, 0xfd}, []byte(strings.Repeat("x", 600))...),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := restore(data, t.TempDir(), ExtractOptions{})
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("%v, want invalid", err)
			}
		})
	}
}
