package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/client"
	"github.com/hangar-dev/hangar/internal/backup"
)

// rootListing lists a running container's root file by file from the
// inside: path, mode, owner and a digest of regular files. Files the
// daemon writes at each start with the instance's own name (hostname,
// hosts) and the runtime's mounts are left out.
func (d *daemon) rootListing(name string) []string {
	d.t.Helper()
	script := `cd / && find . -xdev ! -path ./etc/hostname ! -path ./etc/hosts ! -path ./etc/resolv.conf | sort | while read -r f; do
  if [ -f "$f" ] && [ ! -L "$f" ]; then s=$(md5sum < "$f" | cut -c1-12); else s=-; fi
  echo "$f $(stat -c '%f %u:%g' "$f") $s"
done`
	out := d.must("exec", name, "--", "sh", "-c", script)
	return strings.Split(strings.TrimSpace(out), "\n")
}

// volumeDirs lists what a pool holds on disk for containers (hidden
// scratch entries too).
func (d *daemon) volumeDirs(pool string) []string {
	d.t.Helper()
	ents, _ := os.ReadDir(filepath.Join(d.dir, "storage-pools", pool, "containers"))
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestBackupExportImport: on dir and on btrfs, hangar export of a
// container with a snapshot and a changed file, imported under another
// name, has the same root file by file and the same snapshot (whose
// content is the old one); the real lxc exports and imports the same;
// a truncated backup, one with a ../ path and one for a pool that does
// not exist are refused and leave no instance, no volume, no directory.
func TestBackupExportImport(t *testing.T) {
	for _, pool := range []string{"default", "bk"} {
		t.Run(pool, func(t *testing.T) {
			d := startDaemon(t, "")
			d.importImages()
			if pool != "default" {
				requireBtrfs(t)
				d.must("storage", "create", pool, "btrfs", "size=1GiB")
				d.deletePoolAtEnd(t, pool)
			}
			d.must("launch", "busybox", "c1", "-s", pool)
			d.must("exec", "c1", "--", "sh", "-c", "echo before > /root/changed && chown 1000:1001 /root/changed && chmod 0640 /root/changed")
			d.must("snapshot", "create", "c1", "snap0")
			d.must("exec", "c1", "--", "sh", "-c", "echo after > /root/changed && mkdir -p /srv/data && head -c 200000 /dev/urandom > /srv/data/blob && ln -s ../root/changed /srv/link")
			want := d.rootListing("c1")
			file := filepath.Join(d.dir, "c1.tar.zst")
			d.must("export", "c1", file, "--compression", "zstd")
			if left := d.must("query", "/1.0/instances/c1/backups"); strings.Contains(left, "backups/") {
				t.Errorf("export left its backup on the daemon: %s", left)
			}
			d.must("import", file, "c2", "-s", pool)
			d.must("start", "c2")
			got := d.rootListing("c2")
			if !slices.Equal(got, want) {
				t.Errorf("c2's root differs from c1's:\n%s", diffLines(want, got))
			}
			if out := d.must("snapshot", "list", "c2"); !strings.Contains(out, "snap0") {
				t.Errorf("c2's snapshots:\n%s", out)
			}
			d.must("snapshot", "restore", "c2", "snap0")
			if out := d.must("exec", "c2", "--", "cat", "/root/changed"); strings.TrimSpace(out) != "before" {
				t.Errorf("c2's snapshot holds %q, want the old content", out)
			}
			if out := d.must("exec", "c2", "--", "stat", "-c", "%a %u:%g", "/root/changed"); strings.TrimSpace(out) != "640 1000:1001" {
				t.Errorf("c2's snapshot file mode and owner %q", out)
			}

			// The real lxc, both ways.
			lxcFile := filepath.Join(d.dir, "c1-lxc.tar.gz")
			d.mustLXC("export", "c1", lxcFile)
			d.mustLXC("import", lxcFile, "c3", "--storage", pool)
			d.mustLXC("start", "c3")
			if got := d.rootListing("c3"); !slices.Equal(got, want) {
				t.Errorf("lxc import's root differs from c1's:\n%s", diffLines(want, got))
			}
			if out, _, _ := d.lxc("info", "c3"); !strings.Contains(out, "snap0") {
				t.Errorf("lxc info c3 shows no snap0:\n%s", out)
			}

			// Bad backups: a clear error, nothing made.
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			bad := map[string][]byte{"truncated": data[:len(data)/2], "dotdot": dotDotTarball(t)}
			names, dirs := d.instanceNames(), d.volumeDirs(pool)
			for what, body := range bad {
				p := filepath.Join(d.dir, what+".tar")
				if err := os.WriteFile(p, body, 0o600); err != nil {
					t.Fatal(err)
				}
				d.mustFail([]string{"import", p, "bad-" + what, "-s", pool}, map[string]string{"truncated": "truncated", "dotdot": ".."}[what])
			}
			d.mustFail([]string{"import", file, "bad-pool", "-s", "nope"}, `"nope" not found`)
			d.mustLXCFail([]string{"import", file, "bad-lxc", "--storage", "nope"}, `"nope" not found`)
			if got := d.instanceNames(); !slices.Equal(got, names) {
				t.Errorf("instances after refused imports %v, want %v", got, names)
			}
			if got := d.volumeDirs(pool); !slices.Equal(got, dirs) {
				t.Errorf("volumes on disk after refused imports %v, want %v", got, dirs)
			}
			if got := d.volumesOf(pool, "container"); len(got) != 3 {
				t.Errorf("container volumes after refused imports %v, want c1, c2, c3", got)
			}
		})
	}
}

// backupEntries reads a backup file's index and entry names.
func backupEntries(t *testing.T, file string) (*backup.Index, []string) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	br, err := backup.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer br.Close()
	var names []string
	for {
		e, err := br.Next()
		if err == io.EOF {
			return br.Index, names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, e.Header.Name)
	}
}

// TestBackupOptimized: on btrfs, hangar export --optimized-storage
// writes btrfs send streams in LXD's layout; imported under another name
// the root is the same file by file and the snapshot holds the old
// content; the real lxc export --optimized-storage and lxc import do the
// same. On a dir pool the option writes trees (LXD's fallback), and an
// optimized backup imported onto a dir pool is refused and leaves
// nothing.
func TestBackupOptimized(t *testing.T) {
	requireBtrfs(t)
	d := startDaemon(t, "")
	d.importImages()
	d.must("storage", "create", "bk", "btrfs", "size=1GiB")
	d.deletePoolAtEnd(t, "bk")
	d.must("launch", "busybox", "c1", "-s", "bk")
	d.must("exec", "c1", "--", "sh", "-c", "echo before > /root/changed && chown 1000:1001 /root/changed && head -c 3000000 /dev/urandom > /root/blob")
	d.must("snapshot", "create", "c1", "snap0")
	d.must("exec", "c1", "--", "sh", "-c", "echo after > /root/changed && mkdir -p /srv/data && head -c 200000 /dev/urandom > /srv/data/blob && ln -s ../root/changed /srv/link && rm /root/blob")
	want := d.rootListing("c1")
	file := filepath.Join(d.dir, "c1-opt.tar.zst")
	d.must("export", "c1", file, "--optimized-storage", "--compression", "zstd")
	idx, names := backupEntries(t, file)
	wantNames := []string{"backup/optimized_header.yaml", "backup/snapshots/snap0.bin", "backup/snapshots/snap0_rootfs.bin", "backup/container.bin", "backup/container_rootfs.bin"}
	if !idx.Optimized || !idx.OptimizedHeader || idx.Backend != "btrfs" || !slices.Equal(names, wantNames) {
		t.Errorf("optimized export: optimized %v header %v backend %q entries %q, want %q", idx.Optimized, idx.OptimizedHeader, idx.Backend, names, wantNames)
	}
	if dirs := d.volumeDirs("bk"); len(dirs) != 2 {
		t.Errorf("the export left scratch volumes: %v", dirs)
	}
	d.must("import", file, "c2", "-s", "bk")
	d.must("start", "c2")
	if got := d.rootListing("c2"); !slices.Equal(got, want) {
		t.Errorf("c2's root differs from c1's:\n%s", diffLines(want, got))
	}
	d.must("snapshot", "restore", "c2", "snap0")
	if out := d.must("exec", "c2", "--", "sh", "-c", "cat /root/changed; stat -c '%u:%g' /root/changed; wc -c < /root/blob"); strings.Fields(out)[0] != "before" || !strings.Contains(out, "1000:1001") || !strings.Contains(out, "3000000") {
		t.Errorf("c2's snapshot holds %q, want the old content", out)
	}

	// The real lxc, both ways.
	lxcFile := filepath.Join(d.dir, "c1-opt-lxc.tar.gz")
	d.mustLXC("export", "c1", lxcFile, "--optimized-storage")
	if idx, _ := backupEntries(t, lxcFile); !idx.Optimized {
		t.Error("lxc export --optimized-storage wrote trees")
	}
	d.mustLXC("import", lxcFile, "c3", "--storage", "bk")
	d.mustLXC("start", "c3")
	if got := d.rootListing("c3"); !slices.Equal(got, want) {
		t.Errorf("lxc import's root differs from c1's:\n%s", diffLines(want, got))
	}
	if out, _, _ := d.lxc("info", "c3"); !strings.Contains(out, "snap0") {
		t.Errorf("lxc info c3 shows no snap0:\n%s", out)
	}

	// Onto a dir pool: refused, nothing made.
	names0, dirs0 := d.instanceNames(), d.volumeDirs("default")
	d.mustFail([]string{"import", file, "c4", "-s", "default"}, "own driver")
	if got := d.instanceNames(); !slices.Equal(got, names0) {
		t.Errorf("instances after a refused import %v, want %v", got, names0)
	}
	if got := d.volumeDirs("default"); !slices.Equal(got, dirs0) {
		t.Errorf("volumes after a refused import %v, want %v", got, dirs0)
	}

	// On a dir pool, optimized storage is trees, as LXD writes them.
	d.must("launch", "busybox", "c5")
	dirFile := filepath.Join(d.dir, "c5.tar.gz")
	d.must("export", "c5", dirFile, "--optimized-storage")
	if idx, names := backupEntries(t, dirFile); idx.Optimized || !slices.Contains(names, "backup/container/backup.yaml") {
		t.Errorf("optimized export on dir: optimized %v, entries %d", idx.Optimized, len(names))
	}
}

// TestBackupImportKilled: hangard killed with -9 in the middle of an
// import (the upload held half-way, the new root made and being filled)
// leaves, after a restart, no instance, no volume record and nothing in
// the pool's directory: the import's record carries volatile.creating,
// and the start removes it as it removes an unfinished copy.
func TestBackupImportKilled(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "busybox", "c1")
	d.must("exec", "c1", "--", "sh", "-c", "head -c 67108864 /dev/urandom > /root/big")
	d.must("stop", "c1")
	file := filepath.Join(d.dir, "c1.tar")
	d.must("export", "c1", file, "--compression", "none")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	containers := filepath.Join(d.dir, "storage-pools", "default", "containers")
	checkClean := func(when string) {
		t.Helper()
		if names := d.instanceNames(); !slices.Equal(names, []string{"c1"}) {
			t.Errorf("%s: instances %v, want [c1]", when, names)
		}
		if vols := d.volumesOf("default", "container"); !slices.Equal(vols, []string{"c1"}) {
			t.Errorf("%s: container volumes %v, want [c1]", when, vols)
		}
		if dirs := d.volumeDirs("default"); len(dirs) != 1 {
			t.Errorf("%s: the pool's containers directory holds %v, want c1's volume alone", when, dirs)
		}
	}
	checkClean("before the import")

	// The upload stops half-way until the daemon is dead: the kill lands
	// while the import is filling the new root, whatever the disk's speed.
	pr, pw := io.Pipe()
	release := make(chan struct{})
	go func() {
		if _, err := pw.Write(data[:len(data)/2]); err != nil {
			return
		}
		<-release
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}()
	c, err := client.Connect(d.socket)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.CreateInstanceFromBackup(context.Background(), pr, client.InstanceBackupArgs{Name: "c2"})
		done <- err
	}()
	waitFor(t, "the import to make its root", 60*time.Second, func() bool {
		ents, _ := os.ReadDir(containers)
		return len(ents) > 1
	})
	d.kill9()
	close(release)
	if err := <-done; err == nil {
		t.Error("an import whose daemon was killed succeeded")
	}
	c.Close()
	d.start()
	checkClean("after kill -9 and a restart")
	if !strings.Contains(d.logText(), "removed an instance whose create did not finish") {
		t.Error("the restart did not say it removed the unfinished import")
	}
}

// dotDotTarball is a backup whose entry climbs out of its volume.
func dotDotTarball(t *testing.T) []byte {
	t.Helper()
	index := "name: evil\nbackend: dir\npool: default\ntype: container\noptimized: false\noptimized_header: false\nconfig:\n  container:\n    name: evil\n    type: container\n"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{"backup/index.yaml", index}, {"backup/container/rootfs/../../../../etc/evil", "x"}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// diffLines shows the lines only in want (-) and only in got (+).
func diffLines(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
