package drivers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testEnv is a data directory in a t.TempDir for pools, with the loop
// devices and btrfs filesystems a test makes for sources. Everything is
// undone in t.Cleanup even when the test fails half way; assertClean
// checks the test undid it itself.
type testEnv struct {
	t    *testing.T
	base string
	ctx  context.Context
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: pools mount filesystems and attach loop devices")
	}
}

func needBtrfs(t *testing.T) {
	t.Helper()
	needRoot(t)
	for _, tool := range []string{"mkfs.btrfs", "blkid"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (btrfs-progs, util-linux): %v", tool, err)
		}
	}
	if _, err := os.Stat("/sys/fs/btrfs"); err != nil {
		t.Skip("this kernel has no btrfs")
	}
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	needRoot(t)
	base := t.TempDir()
	t.Cleanup(func() { forceClean(base) })
	return &testEnv{t: t, base: base, ctx: context.Background()}
}

func (e *testEnv) pool(name, driver string, cfg map[string]string) (Driver, Pool) {
	e.t.Helper()
	if cfg == nil {
		cfg = map[string]string{}
	}
	p := Pool{
		Name:   name,
		Config: cfg,
		Dir:    filepath.Join(e.dataDir(), "storage-pools", name),
		Log:    slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	d, err := Load(driver, p)
	if err != nil {
		e.t.Fatalf("load %s pool %s: %v", driver, name, err)
	}
	return d, p
}

// dataDir is hangard's data directory in the env; sources the user
// gives are outside it, in base.
func (e *testEnv) dataDir() string { return filepath.Join(e.base, "data") }

// file makes a sparse file of size under the env's devs directory.
func (e *testEnv) file(name string, size int64) string {
	e.t.Helper()
	dir := filepath.Join(e.base, "devs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Truncate(p, size); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// loopDevice attaches a fresh file of size to a loop device (autoclear:
// it goes when release is called and nothing mounts it).
func (e *testEnv) loopDevice(name string, size int64) (dev string, release func()) {
	e.t.Helper()
	f, err := attachLoop(e.file(name, size))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { f.Close() })
	return f.Name(), func() { f.Close() }
}

func (e *testEnv) run(name string, args ...string) {
	e.t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		e.t.Fatalf("%s %v: %v: %s", name, args, err, out)
	}
}

// hostBtrfs mounts a btrfs of its own at base/host, standing for a
// btrfs filesystem the host already has (for directory sources).
func (e *testEnv) hostBtrfs() (mnt string, release func()) {
	e.t.Helper()
	dev, rel := e.loopDevice("host.img", 256<<20)
	e.run("mkfs.btrfs", "-q", dev)
	mnt = filepath.Join(e.base, "host")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
		e.t.Fatal(err)
	}
	return mnt, func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			e.t.Errorf("unmount host btrfs: %v", err)
		}
		rel()
	}
}

// assertClean: nothing of the pools is left under the data dir: no
// mount, no loop device on a file under it, no file in storage-pools or
// disks.
func (e *testEnv) assertClean() {
	e.t.Helper()
	ms, err := mounts()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, m := range ms {
		if inside(m.point, e.base) {
			e.t.Errorf("left mounted: %s (%s)", m.point, m.source)
		}
	}
	// Autoclear detaches a loop device when its last user goes, which
	// the kernel may finish just after the unmount returns: wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for {
		loops := loopsUnder(e.base)
		if len(loops) == 0 {
			break
		}
		if time.Now().After(deadline) {
			e.t.Errorf("loop devices left attached: %v", loops)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, d := range []string{"storage-pools", "disks"} {
		dir := filepath.Join(e.dataDir(), d)
		_ = filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
			if err == nil && p != dir {
				e.t.Errorf("left behind: %s", p)
			}
			return nil
		})
	}
}

// loopsUnder lists loop devices backed by files under dir.
func loopsUnder(dir string) []string {
	var out []string
	devs, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range devs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		backing := strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
		if inside(backing, dir) {
			out = append(out, fmt.Sprintf("%s=%s", strings.Split(f, "/")[3], backing))
		}
	}
	return out
}

// forceClean undoes whatever a failed test left: mounts under dir
// (deepest first) and loop devices on its files.
func forceClean(dir string) {
	ms, _ := mounts()
	sort.Slice(ms, func(i, j int) bool { return len(ms[i].point) > len(ms[j].point) })
	for _, m := range ms {
		if inside(m.point, dir) {
			_ = unix.Unmount(m.point, unix.MNT_DETACH)
		}
	}
	for _, l := range loopsUnder(dir) {
		name, _, _ := strings.Cut(l, "=")
		if f, err := os.OpenFile("/dev/"+name, os.O_RDONLY, 0); err == nil {
			_ = unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
			f.Close()
		}
	}
}

func mustErrIs(t *testing.T, err, kind error, what string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: error %v, want kind %v", what, err, kind)
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

// writeZeros writes n bytes of zeros to path (real blocks: zeros written
// through write(2) are allocated, not holes) and syncs them.
func writeZeros(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.Write(buf[:k]); err != nil {
			f.Close()
			return err
		}
		n -= k
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// makePool makes a pool of driver named name in the env: a dir pool in
// the data dir, or a btrfs pool on a sparse loop file of 1GiB.
func (e *testEnv) makePool(driver, name string) Driver {
	e.t.Helper()
	var cfg map[string]string
	if driver == "btrfs" {
		needBtrfs(e.t)
		cfg = map[string]string{"size": "1GiB"}
	}
	d, _ := e.pool(name, driver, cfg)
	cfg, err := d.Create(e.ctx)
	if err != nil {
		e.t.Fatalf("create %s pool %s: %v", driver, name, err)
	}
	d, _ = e.pool(name, driver, cfg)
	return d
}

// layoutOf is a driver's on-disk layout, for tests that leave pieces
// the way a killed call would.
func layoutOf(d Driver) layout {
	switch d := d.(type) {
	case *btrfsDriver:
		return d.l
	case *dirDriver:
		return d.l
	}
	panic(fmt.Sprintf("no layout for %T", d))
}

// Sizes of the odd tree's files.
const (
	oddSparseSize = 1 << 30
	oddSparseData = 3 * 4096 // the bytes written into the sparse file
)

// writeOddTree fills dir with what a copy tends to lose: a sparse 1GiB
// file, hard links, symlinks (one dangling), a device node and a fifo,
// files owned by an unprivileged container's IDs (1000000), file
// capabilities (a host one, and a namespaced one whose root is
// 1000000, as a container writes it), user xattrs, POSIX ACLs (access
// and default), odd modes (setuid, sticky, no permission at all).
func writeOddTree(dir string) error {
	steps := []func() error{
		func() error { return os.MkdirAll(filepath.Join(dir, "rootfs", "bin"), 0o755) },
		func() error {
			return os.WriteFile(filepath.Join(dir, "rootfs", "bin", "ping"), []byte("#!ping"), 0o755)
		},
		func() error {
			return unix.Setxattr(filepath.Join(dir, "rootfs", "bin", "ping"), "security.capability", vfsCapV2(1<<13), 0) // CAP_NET_RAW
		},
		func() error {
			return os.WriteFile(filepath.Join(dir, "rootfs", "bin", "arping"), []byte("#!arping"), 0o4755)
		},
		func() error { return os.Lchown(filepath.Join(dir, "rootfs", "bin", "arping"), 1000000, 1000000) },
		func() error {
			return unix.Setxattr(filepath.Join(dir, "rootfs", "bin", "arping"), "security.capability", vfsCapV3(1<<13, 1000000), 0)
		},
		// Setuid last: a chown or a capability written clears it.
		func() error { return unix.Chmod(filepath.Join(dir, "rootfs", "bin", "arping"), 0o4755) },
		func() error {
			p := filepath.Join(dir, "rootfs", "sparse.img")
			f, err := os.Create(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := f.Truncate(oddSparseSize); err != nil {
				return err
			}
			for _, off := range []int64{0, oddSparseSize / 2, oddSparseSize - 4096} {
				if _, err := f.WriteAt(bytes.Repeat([]byte{byte(off>>20) | 1}, 4096), off); err != nil {
					return err
				}
			}
			return f.Close()
		},
		func() error { return os.WriteFile(filepath.Join(dir, "rootfs", "data"), []byte("linked"), 0o640) },
		func() error {
			return os.Link(filepath.Join(dir, "rootfs", "data"), filepath.Join(dir, "rootfs", "bin", "data-link"))
		},
		func() error {
			return os.Link(filepath.Join(dir, "rootfs", "data"), filepath.Join(dir, "rootfs", "data-link2"))
		},
		func() error { return os.Symlink("data", filepath.Join(dir, "rootfs", "rel-link")) },
		func() error { return os.Symlink("/nowhere/at/all", filepath.Join(dir, "rootfs", "dangling")) },
		func() error { return os.Lchown(filepath.Join(dir, "rootfs", "dangling"), 1000000, 1000005) },
		func() error { return os.MkdirAll(filepath.Join(dir, "rootfs", "dev"), 0o755) },
		func() error {
			return unix.Mknod(filepath.Join(dir, "rootfs", "dev", "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
		},
		func() error { return unix.Mkfifo(filepath.Join(dir, "rootfs", "dev", "fifo"), 0o600) },
		func() error { return os.Mkdir(filepath.Join(dir, "rootfs", "tmp"), 0o777) },
		func() error { return unix.Chmod(filepath.Join(dir, "rootfs", "tmp"), 0o1777) },
		func() error { return os.WriteFile(filepath.Join(dir, "rootfs", "secret"), []byte("s"), 0) },
		func() error {
			return unix.Setxattr(filepath.Join(dir, "rootfs", "data"), "user.origin", []byte("odd tree"), 0)
		},
		func() error {
			return unix.Setxattr(filepath.Join(dir, "rootfs", "data"), "system.posix_acl_access", posixACL(1234), 0)
		},
		func() error {
			return unix.Setxattr(filepath.Join(dir, "rootfs", "tmp"), "system.posix_acl_default", posixACL(1000000), 0)
		},
		func() error { return os.Lchown(filepath.Join(dir, "rootfs"), 1000000, 1000000) },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			return fmt.Errorf("odd tree step %d: %w", i, err)
		}
	}
	return nil
}

// vfsCapV2 is a security.capability value (struct vfs_cap_data,
// revision 2, effective) permitting caps.
func vfsCapV2(caps uint32) []byte {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000000|1)
	binary.LittleEndian.PutUint32(b[4:], caps)
	return b
}

// vfsCapV3 is a namespaced capability (revision 3): valid in the user
// namespace whose root is rootID.
func vfsCapV3(caps, rootID uint32) []byte {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b[0:], 0x03000000|1)
	binary.LittleEndian.PutUint32(b[4:], caps)
	binary.LittleEndian.PutUint32(b[20:], rootID)
	return b
}

// posixACL is a system.posix_acl_* value: the owner rw, user uid r, the
// group r, mask r, others nothing.
func posixACL(uid uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{1, 6, ^uint32(0)}, {2, 4, uid}, {4, 4, ^uint32(0)}, {0x10, 4, ^uint32(0)}, {0x20, 0, ^uint32(0)}} {
		b = binary.LittleEndian.AppendUint16(b, e.tag)
		b = binary.LittleEndian.AppendUint16(b, e.perm)
		b = binary.LittleEndian.AppendUint32(b, e.id)
	}
	return b
}

// treeOf describes every entry under root, by path relative to it: type
// and mode, owner, size, device number, symlink target, xattrs, a hash
// of a regular file's content and its mtime, and, for a file with hard
// links, the first path (in walk order) of its inode. Two trees with the
// same description hold the same files.
func treeOf(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	firstOf := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		desc := fmt.Sprintf("mode=%o uid=%d gid=%d", st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			h, err := hashFile(p)
			if err != nil {
				return err
			}
			desc += fmt.Sprintf(" size=%d sha256=%s mtime=%d.%d", st.Size, h, st.Mtim.Sec, st.Mtim.Nsec)
			if st.Nlink > 1 {
				if _, ok := firstOf[st.Ino]; !ok {
					firstOf[st.Ino] = rel
				}
				desc += fmt.Sprintf(" nlink=%d first=%s", st.Nlink, firstOf[st.Ino])
			}
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			desc += " -> " + target
		case unix.S_IFCHR, unix.S_IFBLK:
			desc += fmt.Sprintf(" rdev=%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
		desc += xattrsOf(t, p)
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

// hashFile hashes a file's logical content without reading its holes:
// the size, then each 64KiB chunk that is not all zeros, by offset. A
// hole and written zeros hash alike, so a copy that makes holes of zeros
// (cp --sparse=always) matches its source.
func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	const chunk = 64 << 10
	h := sha256.New()
	fmt.Fprintf(h, "size %d\n", st.Size())
	buf := make([]byte, chunk)
	next := int64(0) // the first chunk not hashed yet
	for off := int64(0); off < st.Size(); {
		data, err := f.Seek(off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole is left
		}
		if err != nil {
			return "", err
		}
		hole, err := f.Seek(data, unix.SEEK_HOLE)
		if err != nil {
			return "", err
		}
		for c := max(data/chunk*chunk, next); c < hole; c += chunk {
			n, err := f.ReadAt(buf, c)
			if err != nil && !errors.Is(err, io.EOF) {
				return "", err
			}
			next = c + chunk
			if bytes.Count(buf[:n], []byte{0}) != n {
				fmt.Fprintf(h, "%d:", c)
				h.Write(buf[:n])
			}
		}
		off = hole
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// xattrsOf lists a file's xattrs, sorted, with their values in hex.
func xattrsOf(t *testing.T, p string) string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		t.Fatalf("listxattr %s: %v", p, err)
	}
	var names []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		v := make([]byte, 64<<10)
		k, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, name, err)
		}
		fmt.Fprintf(&b, " %s=%x", name, v[:k])
	}
	return b.String()
}

// assertSameTree fails with the entries that differ.
func assertSameTree(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: %s missing", what, k)
		} else if g != w {
			t.Errorf("%s: %s is\n\t%s\nwant\n\t%s", what, k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: %s extra", what, k)
		}
	}
}

// allocated is the bytes a file takes on disk.
func allocated(t *testing.T, p string) int64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

// volumesOf is the pool's volumes, sorted.
func volumesOf(t *testing.T, d Driver) []Volume {
	t.Helper()
	vols, err := d.Volumes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	sortVols(vols)
	return vols
}
