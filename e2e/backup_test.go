package e2e

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
