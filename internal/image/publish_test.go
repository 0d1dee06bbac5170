package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

var publishMap = driver.IDMap{HostID: 100000, Size: 65536}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("publishing shifted trees needs root (chown, mknod, security.* xattrs)")
	}
}

// capV3 is a revision-3 security.capability value (cap_net_raw,
// effective) whose root is root.
func capV3(root uint32) []byte {
	v := make([]byte, capSizeV3)
	binary.LittleEndian.PutUint32(v, capRevision3|capFlagsEff)
	binary.LittleEndian.PutUint32(v[4:], 1<<13)
	binary.LittleEndian.PutUint32(v[capSizeV2:], root)
	return v
}

// aclWithUser is a POSIX ACL granting uid read access.
func aclWithUser(uid uint32) []byte {
	v := binary.LittleEndian.AppendUint32(nil, aclVersion)
	entry := func(tag, perm uint16, id uint32) {
		v = binary.LittleEndian.AppendUint16(v, tag)
		v = binary.LittleEndian.AppendUint16(v, perm)
		v = binary.LittleEndian.AppendUint32(v, id)
	}
	entry(0x01, 6, 0xffffffff) // user::rw-
	entry(aclUser, 4, uid)     // user:uid:r--
	entry(0x04, 4, 0xffffffff) // group::r--
	entry(0x10, 4, 0xffffffff) // mask::r--
	entry(0x20, 4, 0xffffffff) // other::r--
	return v
}

// makeTree builds an instance's root with odd files, its ownership
// shifted by m (nil: as is), and returns its path.
func makeTree(t *testing.T, m *driver.IDMap) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	host := func(id uint32) int {
		if m == nil {
			return int(id)
		}
		return int(m.HostID + id)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel, body string, mode os.FileMode, uid, gid uint32) {
		p := filepath.Join(root, rel)
		must(os.WriteFile(p, []byte(body), 0o600))
		must(os.Lchown(p, host(uid), host(gid)))
		must(os.Chmod(p, mode))
	}
	mkdir := func(rel string, mode os.FileMode, uid, gid uint32) {
		p := filepath.Join(root, rel)
		must(os.Mkdir(p, 0o700))
		must(os.Lchown(p, host(uid), host(gid)))
		must(os.Chmod(p, mode))
	}
	must(os.Mkdir(root, 0o755))
	must(os.Lchown(root, host(0), host(0)))
	mkdir("etc", 0o755, 0, 0)
	write("etc/hostname", "c1\n", 0o644, 0, 0)
	write("etc/os-release", "ID=published\nVERSION_ID=1\n", 0o644, 0, 0)
	mkdir("bin", 0o755, 0, 0)
	write("bin/sh", "#!fake shell\n", 0o755, 0, 0)
	must(os.Chmod(filepath.Join(root, "bin/sh"), 0o755|os.ModeSetuid))
	must(os.Symlink("sh", filepath.Join(root, "bin/bash")))
	must(os.Lchown(filepath.Join(root, "bin/bash"), host(0), host(0)))
	must(os.Symlink("/etc/shadow", filepath.Join(root, "bin/escape"))) // Never followed.
	must(os.Lchown(filepath.Join(root, "bin/escape"), host(0), host(0)))
	write("bin/ping", "ping", 0o755, 0, 0)
	must(unix.Setxattr(filepath.Join(root, "bin/ping"), "security.capability", capV3(uint32(host(0))), 0))
	write("bin/busybox", strings.Repeat("busybox", 1000), 0o755, 0, 0)
	must(os.Link(filepath.Join(root, "bin/busybox"), filepath.Join(root, "bin/ls")))
	must(os.Link(filepath.Join(root, "bin/busybox"), filepath.Join(root, "etc/ls-too")))
	mkdir("home", 0o755, 0, 0)
	mkdir("home/user", 0o750, 1000, 1000)
	write("home/user/notes", "shifted owner\n", 0o600, 1000, 1000)
	must(unix.Setxattr(filepath.Join(root, "home/user/notes"), "user.comment", []byte("kept"), 0))
	write("home/user/shared", "acl\n", 0o640, 1000, 1000)
	must(unix.Setxattr(filepath.Join(root, "home/user/shared"), "system.posix_acl_access", aclWithUser(uint32(host(1001))), 0))
	mkdir("tmp", 0o1777, 0, 0)
	write("tmp/empty", "", 0o644, 65533, 65533)
	mkdir("dev", 0o755, 0, 0)
	must(unix.Mknod(filepath.Join(root, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Lchown(filepath.Join(root, "dev/null"), host(0), host(0)))
	must(unix.Mknod(filepath.Join(root, "dev/loop9"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 9))))
	must(os.Lchown(filepath.Join(root, "dev/loop9"), host(0), host(6)))
	must(unix.Mkfifo(filepath.Join(root, "dev/fifo"), 0o600))
	must(os.Lchown(filepath.Join(root, "dev/fifo"), host(0), host(0)))
	// A socket: not publishable, left out.
	l, err := net.Listen("unix", filepath.Join(root, "tmp/sock"))
	must(err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	// Times last: creating entries changes their directories'.
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	must(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		ts := []unix.Timespec{unix.NsecToTimespec(old.UnixNano()), unix.NsecToTimespec(old.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	}))
	return root
}

// describeTree lists every entry of a tree with what an image keeps of
// it: type, mode, owner, size and content, symlink target, device
// number, xattrs, mtime, and for hard links the set of names sharing an
// inode. Sockets are left out (an image cannot hold them).
func describeTree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			return nil
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d mtime=%d", st.Mode, st.Uid, st.Gid, st.Mtim.Sec)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			desc += fmt.Sprintf(" size=%d sha=%x", len(b), sum[:8])
			if st.Nlink > 1 {
				inodes[st.Ino] = append(inodes[st.Ino], rel)
			}
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			desc += " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			desc += fmt.Sprintf(" dev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		names, err := listXattrs(-1, p)
		if err != nil {
			return err
		}
		for _, n := range names {
			v, err := getXattr(-1, p, n)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" %s=%x", n, v)
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range inodes {
		sort.Strings(names)
		for _, n := range names {
			out[n] += " links=" + strings.Join(names, ",")
		}
	}
	return out
}

func diffTrees(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range slices.Compact(keys) {
		if got[k] != want[k] {
			t.Errorf("%s: %s:\n got  %q\n want %q", what, k, got[k], want[k])
		}
	}
}

// blobSHA is the SHA-256 of a stored file (or of several, one after the
// other).
func blobSHA(t *testing.T, paths ...string) string {
	t.Helper()
	h := sha256.New()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(h, f)
		f.Close()
	}
	return hex.EncodeToString(h.Sum(nil))
}

// firstEntries decompresses a stored tarball and returns its first n
// entries' names and metadata.yaml's content.
func firstEntries(t *testing.T, blob string, n int) ([]string, []byte) {
	t.Helper()
	f, err := os.Open(blob)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, release, _, err := decompress(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	tr := tar.NewReader(r)
	var names []string
	var meta []byte
	for len(names) < n {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, hdr.Name)
		if hdr.Name == lxdMetadataName {
			meta, _ = io.ReadAll(tr)
		}
	}
	return names, meta
}

func TestPublishTreeRoundTrip(t *testing.T) {
	needRoot(t)
	src := makeTree(t, &publishMap)
	want := describeTree(t, src)
	expires := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, comp := range []string{"gzip", "zstd", "xz", "bzip2", "none"} {
		t.Run(comp, func(t *testing.T) {
			s, db, _, dir := newTestService(t)
			img, err := s.Publish(context.Background(), PublishSource{Dir: src, IDMap: &publishMap}, PublishOptions{
				Architecture: "x86_64",
				Properties:   map[string]string{"description": "my app", "os": "Debian"},
				Public:       true,
				Aliases:      []string{"app", "app-v1"},
				Compression:  comp,
				ExpiresAt:    expires,
			})
			if err != nil {
				t.Fatal(err)
			}
			blob := filepath.Join(dir, "blobs/sha256", img.Fingerprint)
			if got := blobSHA(t, blob); got != img.Fingerprint {
				t.Fatalf("fingerprint %s, SHA-256 of the blob %s", img.Fingerprint, got)
			}
			head := make([]byte, 512)
			bf, _ := os.Open(blob)
			bf.Read(head)
			bf.Close()
			if got := detectCompression(head); got != comp {
				t.Errorf("blob compressed with %s, want %s", got, comp)
			}

			rec := db.images[img.Fingerprint]
			if rec.Format != formatLXDUnified || rec.Type != typeContainer || !rec.Public || rec.Architecture != "x86_64" {
				t.Errorf("record %+v", rec)
			}
			if !rec.ExpiresAt.Equal(expires) || rec.Properties["description"] != "my app" || rec.Properties["os"] != "Debian" {
				t.Errorf("record expiry %v, properties %v", rec.ExpiresAt, rec.Properties)
			}
			var aliases []string
			for _, a := range img.Aliases {
				aliases = append(aliases, a.Name)
			}
			if !slices.Equal(aliases, []string{"app", "app-v1"}) {
				t.Errorf("aliases %v", aliases)
			}
			for _, a := range []string{"app", "app-v1"} {
				if fp, err := s.Resolve(context.Background(), a); err != nil || fp != img.Fingerprint {
					t.Errorf("alias %s: %s, %v", a, fp, err)
				}
			}

			// LXD's layout: metadata.yaml first, then templates/, then rootfs/.
			names, meta := firstEntries(t, blob, 3)
			if !slices.Equal(names, []string{"metadata.yaml", "templates/", "rootfs/"}) {
				t.Errorf("first entries %v", names)
			}
			var md map[string]any
			if err := yaml.Unmarshal(meta, &md); err != nil {
				t.Fatal(err)
			}
			var keys []string
			for k := range md {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if !slices.Equal(keys, []string{"architecture", "creation_date", "expiry_date", "properties", "templates"}) {
				t.Errorf("metadata.yaml keys %v:\n%s", keys, meta)
			}
			if md["expiry_date"] != int(expires.Unix()) || md["architecture"] != "x86_64" {
				t.Errorf("metadata.yaml:\n%s", meta)
			}

			// The image's tree, unshifted, is the instance's as it saw it;
			// shifted by the same map, it is the source again.
			plain, err := unpackShifted(t, s, img.Fingerprint, nil)
			if err != nil {
				t.Fatal(err)
			}
			diffTrees(t, "unshifted", describeTree(t, plain), unshiftedWant(t, want))
			shifted, err := unpackShifted(t, s, img.Fingerprint, &publishMap)
			if err != nil {
				t.Fatal(err)
			}
			diffTrees(t, "shifted again", describeTree(t, shifted), want)
		})
	}
}

// unshiftedWant is what the source tree's description becomes with ids
// seen inside the instance: owners and ACL ids less the map's base, the
// capability's root 0 written as revision 2.
func unshiftedWant(t *testing.T, shifted map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range shifted {
		for _, id := range []int{0, 6, 1000, 65533} {
			v = strings.ReplaceAll(v, fmt.Sprintf("uid=%d ", publishMap.HostID+uint32(id)), fmt.Sprintf("uid=%d ", id))
			v = strings.ReplaceAll(v, fmt.Sprintf("gid=%d ", publishMap.HostID+uint32(id)), fmt.Sprintf("gid=%d ", id))
		}
		v = strings.ReplaceAll(v, hex.EncodeToString(capV3(publishMap.HostID)), hex.EncodeToString(capV2(1<<13, true)))
		v = strings.ReplaceAll(v, hex.EncodeToString(aclWithUser(publishMap.HostID+1001)), hex.EncodeToString(aclWithUser(1001)))
		out[k] = v
	}
	return out
}

func TestPublishPrivilegedKeepsIDs(t *testing.T) {
	needRoot(t)
	src := makeTree(t, nil)
	s, _, _, _ := newTestService(t)
	img, err := s.Publish(context.Background(), PublishSource{Dir: src}, PublishOptions{Compression: "zstd"})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := unpackShifted(t, s, img.Fingerprint, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := describeTree(t, src)
	// Read from the host, a revision-3 capability whose root is 0 is
	// revision 2: what the image holds.
	for k, v := range want {
		want[k] = strings.ReplaceAll(v, hex.EncodeToString(capV3(0)), hex.EncodeToString(capV2(1<<13, true)))
	}
	diffTrees(t, "privileged", describeTree(t, plain), want)
}

// An owner the map does not hold (a file the instance saw as nobody) is
// published as nobody.
func TestPublishUnmappedOwnerIsNobody(t *testing.T) {
	needRoot(t)
	src := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chown(src, int(publishMap.HostID), int(publishMap.HostID))
	if err := os.WriteFile(filepath.Join(src, "host-owned"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, _, _, _ := newTestService(t)
	img, err := s.Publish(context.Background(), PublishSource{Dir: src, IDMap: &publishMap}, PublishOptions{Compression: "none"})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := unpackShifted(t, s, img.Fingerprint, nil)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(plain, "host-owned"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != overflowID || st.Gid != overflowID {
		t.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, overflowID, overflowID)
	}
}

// Requests that cannot succeed are refused before anything is read: the
// source here does not even exist, and the store stays empty.
func TestPublishRefusedUpFront(t *testing.T) {
	s, db, _, dir := newTestService(t)
	img, err := s.Import(context.Background(), bytes.NewReader(compress(t, "gzip", basicRootfs(t))), ImportMeta{Alias: "taken"})
	if err != nil {
		t.Fatal(err)
	}
	before := storeEntries(t, dir)
	missing := PublishSource{Dir: filepath.Join(t.TempDir(), "no-such-root")}
	tests := []struct {
		name string
		src  PublishSource
		opts PublishOptions
		kind error
		has  string
	}{
		{"alias taken", missing, PublishOptions{Aliases: []string{"new", "taken"}}, errdefs.ErrConflict, `alias "taken" already exists`},
		{"alias twice", missing, PublishOptions{Aliases: []string{"a", "a"}}, errdefs.ErrInvalidArgument, "twice"},
		{"bad alias", missing, PublishOptions{Aliases: []string{"a/b"}}, errdefs.ErrInvalidArgument, "slashes"},
		{"bad compression", missing, PublishOptions{Compression: "lz4"}, errdefs.ErrInvalidArgument, `compression "lz4"`},
		{"compression command", missing, PublishOptions{Compression: "gzip -9"}, errdefs.ErrInvalidArgument, "want one of"},
		{"bad architecture", missing, PublishOptions{Architecture: "vax"}, errdefs.ErrInvalidArgument, "architecture"},
		{"empty property", missing, PublishOptions{Properties: map[string]string{"": "x"}}, errdefs.ErrInvalidArgument, "empty name"},
		{"no source", PublishSource{}, PublishOptions{}, errdefs.ErrInvalidArgument, "no root tree or disk"},
		{"both", PublishSource{Dir: "/x", Disk: "/y"}, PublishOptions{}, errdefs.ErrInvalidArgument, "not both"},
		{"bad disk format", PublishSource{Disk: "/y", DiskFormat: "vmdk"}, PublishOptions{}, errdefs.ErrInvalidArgument, "vmdk"},
		{"bad id map", PublishSource{Dir: t.TempDir(), IDMap: &driver.IDMap{HostID: 1}}, PublishOptions{}, errdefs.ErrInvalidArgument, "size 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Publish(context.Background(), tt.src, tt.opts)
			assertKind(t, err, tt.kind)
			if !strings.Contains(err.Error(), tt.has) {
				t.Errorf("error %q, want it to say %q", err, tt.has)
			}
			if got := storeEntries(t, dir); !slices.Equal(got, before) {
				t.Errorf("store holds %v, was %v", got, before)
			}
			if n, a := db.counts(); n != 1 || a != 1 {
				t.Errorf("%d images, %d aliases: want the first import's alone", n, a)
			}
			if fp, _ := s.Resolve(context.Background(), "taken"); fp != img.Fingerprint {
				t.Errorf("alias taken moved to %s", fp)
			}
		})
	}
}

// The upload's size cap applies to a publish, and a refused publish
// leaves nothing.
func TestPublishOverCapLeavesNothing(t *testing.T) {
	needRoot(t)
	s, db, _, dir := newTestService(t)
	s.SetMaxUnpackedSize(func() int64 { return 1 << 20 })
	src := filepath.Join(t.TempDir(), "root")
	os.Mkdir(src, 0o755)
	if err := os.WriteFile(filepath.Join(src, "big"), bytes.Repeat([]byte("0123456789abcdef"), 1<<17), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := s.Publish(context.Background(), PublishSource{Dir: src}, PublishOptions{Aliases: []string{"big"}, Compression: "gzip"})
	assertKind(t, err, errdefs.ErrInvalidArgument)
	if !strings.Contains(err.Error(), "expands beyond") {
		t.Errorf("error %q", err)
	}
	if got := storeEntries(t, dir); len(got) != 0 {
		t.Errorf("store holds %v", got)
	}
	if n, a := db.counts(); n != 0 || a != 0 {
		t.Errorf("%d images, %d aliases left", n, a)
	}
}

// A cancelled publish stops and leaves nothing.
func TestPublishCancelled(t *testing.T) {
	needRoot(t)
	s, db, _, dir := newTestService(t)
	src := makeTree(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	opts := PublishOptions{Compression: "none", Progress: func(p Progress) {
		if p.Done > 0 {
			cancel() // Once packing has begun.
		}
	}}
	_, err := s.Publish(ctx, PublishSource{Dir: src}, opts)
	assertKind(t, err, errdefs.ErrCancelled)
	if got := storeEntries(t, dir); len(got) != 0 {
		t.Errorf("store holds %v", got)
	}
	if n, _ := db.counts(); n != 0 {
		t.Errorf("%d images left", n)
	}
}

func TestPublishProgress(t *testing.T) {
	needRoot(t)
	s, _, _, _ := newTestService(t)
	src := makeTree(t, nil)
	var last Progress
	var reports int
	_, err := s.Publish(context.Background(), PublishSource{Dir: src}, PublishOptions{Progress: func(p Progress) {
		last = p
		reports++
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The hard-linked busybox counts once as read and once per name in
	// the estimate: done ends at or under the total.
	if reports < 2 || last.Stage != ProgressPack || last.Done == 0 || last.Done > last.Total {
		t.Errorf("%d reports, last %+v", reports, last)
	}
}

func TestPublishDisk(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img not installed")
	}
	tmp := t.TempDir()
	base := filepath.Join(tmp, "base.qcow2")
	overlay := filepath.Join(tmp, "root.qcow2")
	for _, args := range [][]string{
		{"create", "-f", "qcow2", base, "8M"},
		{"io", "-c", "write -P 0x5a 1M 64k", base},
		{"create", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay},
		{"io", "-c", "write -P 0xa5 2M 64k", overlay},
	} {
		if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
			// qemu-io is a separate tool in some packagings.
			if args[0] == "io" {
				args = args[1:]
				out, err = exec.Command("qemu-io", args...).CombinedOutput()
			}
			if err != nil {
				t.Fatalf("%v: %v: %s", args, err, out)
			}
		}
	}
	for _, comp := range []string{"xz", "none"} {
		t.Run(comp, func(t *testing.T) {
			s, db, _, dir := newTestService(t)
			img, err := s.Publish(context.Background(), PublishSource{Disk: overlay, DiskFormat: "qcow2"},
				PublishOptions{Compression: comp, Aliases: []string{"vm"}, Properties: map[string]string{"os": "Debian"}})
			if err != nil {
				t.Fatal(err)
			}
			blob := filepath.Join(dir, "blobs/sha256", img.Fingerprint)
			if got := blobSHA(t, blob, blob+".rootfs"); got != img.Fingerprint {
				t.Fatalf("fingerprint %s, SHA-256 of the blobs %s", img.Fingerprint, got)
			}
			if img.Type != typeVM || db.images[img.Fingerprint].Format != formatLXDSplitQcow2 || img.Properties["os"] != "Debian" {
				t.Errorf("image %+v, format %s", img, db.images[img.Fingerprint].Format)
			}
			disk, format, ok, err := s.Disk(context.Background(), img.Fingerprint)
			if err != nil || !ok || format != "qcow2" {
				t.Fatalf("Disk: %s %s %v %v", disk, format, ok, err)
			}
			// Standalone (the backing chain flattened) and the same
			// content as the instance's disk.
			if out, err := exec.Command("qemu-img", "compare", "-f", "qcow2", "-F", "qcow2", overlay, disk).CombinedOutput(); err != nil {
				t.Errorf("qemu-img compare: %v: %s", err, out)
			}
			out, _ := exec.Command("qemu-img", "info", "--output=json", disk).Output()
			if bytes.Contains(out, []byte("backing-filename")) {
				t.Errorf("published disk has a backing file: %s", out)
			}
			names, _ := firstEntries(t, blob, 2)
			if !slices.Equal(names, []string{"metadata.yaml", "templates/"}) {
				t.Errorf("metadata tarball entries %v", names)
			}
			if got := storeEntries(t, dir); len(got) != 2 {
				t.Errorf("store holds %v: want the two blobs alone", got)
			}
		})
	}
}

// An alias taken between the check and its creation fails the publish
// whole: the image goes too.
func TestPublishLateAliasConflictUndoes(t *testing.T) {
	needRoot(t)
	s, db, _, dir := newTestService(t)
	src := makeTree(t, nil)
	opts := PublishOptions{Aliases: []string{"first", "second"}, Compression: "none", Progress: func(p Progress) {
		if p.Done > 0 {
			db.CreateAlias(context.Background(), AliasRecord{Project: "default", Name: "second", Target: strings.Repeat("0", 64)})
		}
	}}
	_, err := s.Publish(context.Background(), PublishSource{Dir: src}, opts)
	assertKind(t, err, errdefs.ErrConflict)
	if n, _ := db.counts(); n != 0 {
		t.Errorf("%d images left", n)
	}
	if _, err := db.GetAlias(context.Background(), "default", "first"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("alias first left: %v", err)
	}
	if got := storeEntries(t, dir); len(got) != 0 {
		t.Errorf("store holds %v", got)
	}
}
