package backup

import (
	"archive/tar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// lxdIdmap is volatile.last_state.idmap of an LXD 5.0 container shifted
// to LXD's default map (snap: 1000000, size 1000000000).
const lxdIdmap = `[{"Isuid":true,"Isgid":false,"Hostid":1000000,"Nsid":0,"Maprange":1000000000},{"Isuid":false,"Isgid":true,"Hostid":1000000,"Nsid":0,"Maprange":1000000000}]`

// lxdIndex is index.yaml as LXD 5.0.2's backupWriteIndex renders it
// (yaml.v2 of backup.Info with the whole config.Config embedded), fields
// hangard drops included (status, location, profiles, used_by...).
func lxdIndex(typ string, optimized bool, backend string) string {
	return `name: c1
backend: ` + backend + `
pool: default
snapshots:
- snap0
optimized: ` + map[bool]string{true: "true", false: "false"}[optimized] + `
optimized_header: ` + map[bool]string{true: "true", false: "false"}[optimized && backend == "btrfs"] + `
type: ` + typ + `
config:
  container:
    architecture: x86_64
    config:
      image.os: Alpine
      volatile.base_image: 5a8d1e2b
      volatile.idmap.base: "0"
      volatile.last_state.idmap: '` + lxdIdmap + `'
      volatile.uuid: 3c2a6f6e-6a8e-4d5c-9c36-0e7e3f1b2a11
    devices: {}
    ephemeral: false
    profiles:
    - default
    stateful: false
    description: ""
    created_at: 2023-03-01T10:00:00.123456789Z
    expanded_config:
      image.os: Alpine
    expanded_devices:
      eth0:
        name: eth0
        network: lxdbr0
        type: nic
      root:
        path: /
        pool: default
        type: disk
    name: c1
    status: Stopped
    status_code: 102
    last_used_at: 2023-03-01T10:05:00.5Z
    location: none
    type: ` + typ + `
    project: default
  snapshots:
  - expires_at: 0001-01-01T00:00:00Z
    architecture: x86_64
    config:
      image.os: Alpine
    created_at: 2023-03-01T10:02:00Z
    devices: {}
    ephemeral: false
    expanded_config:
      image.os: Alpine
    expanded_devices:
      root:
        path: /
        pool: default
        type: disk
    last_used_at: 0001-01-01T00:00:00Z
    name: snap0
    profiles:
    - default
    stateful: false
    size: -1
  pool:
    config:
      source: /var/snap/lxd/common/lxd/storage-pools/default
    description: ""
    name: default
    driver: ` + backend + `
    used_by: []
    status: Created
    locations:
    - none
  profiles:
  - config: {}
    description: Default LXD profile
    devices:
      root:
        path: /
        pool: default
        type: disk
    name: default
    used_by: []
  volume:
    config: {}
    description: ""
    name: c1
    type: ` + typ + `
    used_by: []
    location: none
    content_type: filesystem
    project: default
    created_at: 0001-01-01T00:00:00Z
  volume_snapshots:
  - description: ""
    expires_at: 0001-01-01T00:00:00Z
    name: snap0
    config: {}
    content_type: filesystem
    created_at: 0001-01-01T00:00:00Z
`
}

// TestReadLXDContainerExport reads a tarball laid out exactly as LXD 5.0.2
// exports a container (genericVFSBackupVolume: snapshots first, each
// volume's root directory an entry, names without "./" or trailing "/",
// ids as on disk, shifted by LXD's map).
func TestReadLXDContainerExport(t *testing.T) {
	requireRoot(t)
	const h = 1000000 // LXD's shift
	vol := func(prefix string, hostname string) []ent {
		return []ent{
			{name: prefix, typ: tar.TypeDir, mode: 0o700, uid: 0, gid: 0},
			{name: prefix + "/backup.yaml", body: "container: {name: c1}\n", mode: 0o600},
			{name: prefix + "/metadata.yaml", body: "architecture: x86_64\n"},
			{name: prefix + "/rootfs", typ: tar.TypeDir, mode: 0o755, uid: h, gid: h},
			{name: prefix + "/rootfs/etc", typ: tar.TypeDir, mode: 0o755, uid: h, gid: h},
			{name: prefix + "/rootfs/etc/hostname", body: hostname, uid: h, gid: h},
			{name: prefix + "/rootfs/etc/hosts", typ: tar.TypeLink, link: prefix + "/rootfs/etc/hostname", uid: h, gid: h},
			{name: prefix + "/rootfs/bin", typ: tar.TypeSymlink, link: "usr/bin", uid: h, gid: h},
			{name: prefix + "/rootfs/home", typ: tar.TypeDir, mode: 0o755, uid: h, gid: h},
			{name: prefix + "/rootfs/home/u", typ: tar.TypeDir, mode: 0o700, uid: h + 1000, gid: h + 1000},
			{name: prefix + "/rootfs/ping", body: "ELF", mode: 0o755, uid: h, gid: h,
				pax: map[string]string{"SCHILY.xattr.security.capability": string(capV3(h))}},
			{name: prefix + "/templates", typ: tar.TypeDir, mode: 0o755},
			{name: prefix + "/templates/hostname.tpl", body: "{{ container.name }}\n"},
		}
	}
	entries := []ent{{name: IndexName, body: lxdIndex(TypeContainer, false, "dir")}}
	entries = append(entries, vol("backup/snapshots/snap0", "old\n")...)
	entries = append(entries, vol("backup/container", "c1\n")...)
	data := mkTar(t, CompressionGzip, entries)

	// The config says how the archive's ids are shifted.
	r, err := Open(strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	idx := r.Index
	r.Close()
	c := idx.Config
	if idx.Name != "c1" || idx.Type != TypeContainer || idx.Backend != "dir" || idx.Pool != "default" || idx.Optimized ||
		len(idx.Snapshots) != 1 || c == nil || c.Instance == nil || c.Pool == nil || c.Volume == nil || len(c.Snapshots) != 1 || len(c.VolumeSnapshots) != 1 {
		t.Fatalf("index %+v", idx)
	}
	if c.Instance.Architecture != "x86_64" || c.Instance.ExpandedDevices["root"]["pool"] != "default" ||
		!c.Instance.CreatedAt.Equal(time.Date(2023, 3, 1, 10, 0, 0, 123456789, time.UTC)) ||
		c.Snapshots[0].Name != "snap0" || !c.Snapshots[0].ExpiresAt.IsZero() || c.Pool.Driver != "dir" || c.Volume.ContentType != "filesystem" {
		t.Fatalf("config %+v", c)
	}
	// Fields hangard does not keep are not carried on.
	out, err := MarshalConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, dropped := range []string{"status", "location", "used_by", "profiles:\n  -", "size:"} {
		if strings.Contains(string(out), dropped) {
			t.Errorf("re-rendered config keeps %q:\n%s", dropped, out)
		}
	}
	archiveMap, err := ParseLXDIDMap(c.Instance.Config[KeyLastIDMap])
	if err != nil {
		t.Fatal(err)
	}

	dst := t.TempDir()
	if _, err := restore(data, dst, ExtractOptions{ArchiveMap: archiveMap, HostMap: SingleRange(dstBase, mapSize)}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path     string
		uid      uint32
		mode     uint32
		content  string
		linkedTo string
	}{
		{path: "instance/rootfs/etc/hostname", uid: dstBase, mode: 0o644, content: "c1\n"},
		{path: "instance/rootfs/etc/hosts", uid: dstBase, mode: 0o644, content: "c1\n", linkedTo: "instance/rootfs/etc/hostname"},
		{path: "instance/rootfs/home/u", uid: dstBase + 1000, mode: 0o700},
		{path: "instance/backup.yaml", uid: 0, mode: 0o600, content: "container: {name: c1}\n"},
		{path: "instance/templates/hostname.tpl", uid: 0, mode: 0o644},
		{path: "snap-snap0/rootfs/etc/hostname", uid: dstBase, mode: 0o644, content: "old\n"},
		{path: "snap-snap0/metadata.yaml", uid: 0, mode: 0o644},
	} {
		p := filepath.Join(dst, tc.path)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Errorf("%s: %v", tc.path, err)
			continue
		}
		if st.Uid != tc.uid || st.Gid != tc.uid || st.Mode&0o7777 != tc.mode {
			t.Errorf("%s: %d:%d %o, want %d %o", tc.path, st.Uid, st.Gid, st.Mode&0o7777, tc.uid, tc.mode)
		}
		if tc.content != "" {
			if b, _ := os.ReadFile(p); string(b) != tc.content {
				t.Errorf("%s: %q", tc.path, b)
			}
		}
		if tc.linkedTo != "" {
			var lt unix.Stat_t
			unix.Lstat(filepath.Join(dst, tc.linkedTo), &lt)
			if lt.Ino != st.Ino {
				t.Errorf("%s: not a hard link of %s", tc.path, tc.linkedTo)
			}
		}
	}
	if l, _ := os.Readlink(filepath.Join(dst, "instance/rootfs/bin")); l != "usr/bin" {
		t.Errorf("symlink %q", l)
	}
	// LXD's capability (root id = its shifted root) now names our root.
	v := make([]byte, 64)
	n, err := unix.Getxattr(filepath.Join(dst, "instance/rootfs/ping"), "security.capability", v)
	if err != nil || string(v[:n]) != string(capV3(dstBase)) {
		t.Errorf("capability %x %v, want %x", v[:n], err, capV3(dstBase))
	}
}

// TestReadLXDLayouts checks the part of every name LXD 5.0.2 writes, for
// VMs (config volume files beside a raw .img) and for optimized btrfs
// backups (optimized_header.yaml, send streams, nested subvolumes).
func TestReadLXDLayouts(t *testing.T) {
	type want struct {
		name string
		part Part
	}
	tests := []struct {
		name    string
		index   string
		entries []want
	}{
		{"vm", lxdIndex(TypeVM, false, "dir"), []want{
			{"backup/virtual-machine-snapshots/snap0", Part{Kind: PartVolume, Snapshot: "snap0"}},
			{"backup/virtual-machine-snapshots/snap0/backup.yaml", Part{Kind: PartVolume, Snapshot: "snap0", Path: "backup.yaml"}},
			{"backup/virtual-machine-snapshots/snap0/metadata.yaml", Part{Kind: PartVolume, Snapshot: "snap0", Path: "metadata.yaml"}},
			{"backup/virtual-machine-snapshots/snap0.img", Part{Kind: PartDisk, Snapshot: "snap0"}},
			{"backup/virtual-machine", Part{Kind: PartVolume}},
			{"backup/virtual-machine/backup.yaml", Part{Kind: PartVolume, Path: "backup.yaml"}},
			{"backup/virtual-machine/templates/hostname.tpl", Part{Kind: PartVolume, Path: "templates/hostname.tpl"}},
			{"backup/virtual-machine.img", Part{Kind: PartDisk}},
		}},
		{"btrfs optimized container", lxdIndex(TypeContainer, true, "btrfs"), []want{
			{"backup/optimized_header.yaml", Part{Kind: PartOptimizedHeader}},
			{"backup/snapshots/snap0.bin", Part{Kind: PartOptimized, Snapshot: "snap0", Subvolume: "/"}},
			{"backup/snapshots/snap0_rootfs-var-lib-docker.bin", Part{Kind: PartOptimized, Snapshot: "snap0", Subvolume: "/rootfs/var/lib/docker"}},
			{"backup/container.bin", Part{Kind: PartOptimized, Subvolume: "/"}},
			{"backup/container_rootfs-var-lib-docker.bin", Part{Kind: PartOptimized, Subvolume: "/rootfs/var/lib/docker"}},
		}},
		{"btrfs optimized vm", lxdIndex(TypeVM, true, "btrfs"), []want{
			{"backup/optimized_header.yaml", Part{Kind: PartOptimizedHeader}},
			{"backup/virtual-machine-snapshots/snap0.bin", Part{Kind: PartOptimized, Snapshot: "snap0", Subvolume: "/"}},
			{"backup/virtual-machine.bin", Part{Kind: PartOptimized, Subvolume: "/"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries := []ent{{name: IndexName, body: tt.index}}
			for _, w := range tt.entries {
				e := ent{name: w.name, body: "data"}
				if w.part.Kind == PartVolume && !strings.Contains(w.name, ".yaml") && !strings.Contains(w.name, ".tpl") {
					e = ent{name: w.name, typ: tar.TypeDir}
				}
				entries = append(entries, e)
			}
			r, err := Open(strings.NewReader(string(mkTar(t, CompressionZstd, entries))))
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for _, w := range tt.entries {
				e, err := r.Next()
				if err != nil {
					t.Fatalf("%s: %v", w.name, err)
				}
				if e.Header.Name != w.name || e.Part != w.part {
					t.Errorf("%s: part %+v, want %+v", e.Header.Name, e.Part, w.part)
				}
			}
			if _, err := r.Next(); err == nil || err.Error() != "EOF" {
				t.Fatalf("end: %v", err)
			}
		})
	}
}

// TestGNUTarReadsOurExport unpacks our export as LXD 5.0.2's import does
// (genericVFSBackupUnpack runs GNU tar with these flags per volume): the
// trees must come out whole, with container ids (LXD shifts them at first
// start, as volatile.last_state.idmap is "[]").
func TestGNUTarReadsOurExport(t *testing.T) {
	requireRoot(t)
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar")
	}
	src := t.TempDir()
	buildTree(t, src, srcBase)
	data := writeBackup(t, CompressionGzip, src, []string{"snap0"}, SingleRange(srcBase, mapSize))
	file := filepath.Join(t.TempDir(), "c1.tar.gz")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"backup/snapshots/snap0", "backup/container"} {
		dst := t.TempDir()
		cmd := exec.Command("tar", "-zxf", file, "--xattrs-include=*", "--restrict", "--force-local", "--numeric-owner",
			"-C", dst, "--strip-components="+strconv.Itoa(strings.Count(prefix, "/")+1), prefix)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("tar: %v\n%s", err, out)
		}
		os.Remove(filepath.Join(dst, ConfigFile))
		compareTrees(t, src, dst, -srcBase, false, func(rel, name, v string) string {
			switch name {
			case "security.capability":
				return string(capV2())
			case "system.posix_acl_access":
				return string(aclValue(1000, 42))
			}
			return v
		})
	}
}
