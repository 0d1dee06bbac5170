package backup

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Test trees are owned by shifted ids when shift is set: hostBase+n, as
// an unprivileged container's tree is on the host.
const (
	srcBase = 1000000
	dstBase = 2000000
	mapSize = 65536
)

// capV2 is a security.capability value (revision 2, effective, with
// cap_net_bind_service permitted).
func capV2() []byte {
	v := make([]byte, capSizeV2)
	binary.LittleEndian.PutUint32(v, capRevision2|capFlagsEff)
	binary.LittleEndian.PutUint32(v[4:], 1<<10)
	return v
}

func capV3(root uint32) []byte {
	v := make([]byte, capSizeV3)
	binary.LittleEndian.PutUint32(v, capRevision3|capFlagsEff)
	binary.LittleEndian.PutUint32(v[4:], 1<<10)
	binary.LittleEndian.PutUint32(v[capSizeV2:], root)
	return v
}

// aclValue is a POSIX ACL xattr with a named user and a named group.
func aclValue(uid, gid uint32) []byte {
	var b bytes.Buffer
	le := func(v any) { binary.Write(&b, binary.LittleEndian, v) }
	le(uint32(aclVersion))
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{0x01, 6, 0xffffffff}, {aclUser, 4, uid}, {0x04, 4, 0xffffffff}, {aclGroup, 4, gid}, {0x10, 6, 0xffffffff}, {0x20, 4, 0xffffffff}} {
		le(e.tag)
		le(e.perm)
		le(e.id)
	}
	return b.Bytes()
}

// buildTree makes a tree with every kind of file a root filesystem holds.
// base is added to every owner (0 for a plain tree).
func buildTree(t *testing.T, dir string, base uint32) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Only rootfs/ is shifted, as on an LXD disk.
	own := func(p string, uid, gid uint32) {
		t.Helper()
		b := uint32(0)
		if strings.Contains(p, "/rootfs") {
			b = base
		}
		must(os.Lchown(p, int(b+uid), int(b+gid)))
	}
	p := func(rel string) string { return filepath.Join(dir, rel) }
	must(os.MkdirAll(p("rootfs/etc/ssl"), 0o755))
	must(os.MkdirAll(p("rootfs/tmp"), 0o755))
	must(os.MkdirAll(p("rootfs/home/user/.private"), 0o755))
	must(os.MkdirAll(p("templates"), 0o755))
	must(os.WriteFile(p("metadata.yaml"), []byte("architecture: x86_64\n"), 0o644))
	must(os.WriteFile(p("templates/hostname.tpl"), []byte("{{ container.name }}\n"), 0o644))
	must(os.WriteFile(p("rootfs/etc/hostname"), []byte("c1\n"), 0o644))
	must(os.WriteFile(p("rootfs/etc/empty"), nil, 0o600))
	must(os.WriteFile(p("rootfs/etc/shadow"), []byte("root:*:19000::::::\n"), 0o640))
	must(os.WriteFile(p("rootfs/home/user/notes"), bytes.Repeat([]byte("notes "), 100000), 0o644))
	must(os.WriteFile(p("rootfs/suid"), []byte("#!/bin/sh\n"), 0o755))
	must(os.Chmod(p("rootfs/suid"), 0o4755))
	must(os.Chmod(p("rootfs/tmp"), 0o1777))
	must(os.Chmod(p("rootfs/home/user/.private"), 0o700))
	// A sparse file: 8 MiB with data at 1 MiB and at the end.
	f, err := os.Create(p("rootfs/sparse"))
	must(err)
	_, err = f.WriteAt([]byte("middle"), 1<<20)
	must(err)
	_, err = f.WriteAt([]byte("end"), 8<<20-3)
	must(err)
	must(f.Close())
	must(os.Symlink("/etc/hostname", p("rootfs/abs-link")))
	must(os.Symlink("../etc/ssl", p("rootfs/home/rel-link")))
	must(os.Symlink("/nowhere", p("rootfs/dangling")))
	must(os.Link(p("rootfs/etc/hostname"), p("rootfs/etc/hostname.hard")))
	must(unix.Mkfifo(p("rootfs/fifo"), 0o620))
	must(unix.Mknod(p("rootfs/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	// A long name (PAX).
	long := p("rootfs/" + strings.Repeat("long-name-", 20))
	must(os.WriteFile(long, []byte("long"), 0o644))

	must(unix.Setxattr(p("rootfs/etc/hostname"), "user.comment", []byte("from the image"), 0))
	must(unix.Setxattr(p("rootfs/home"), "trusted.overlay.opaque", []byte("y"), 0))
	must(unix.Lsetxattr(p("rootfs/fifo"), "trusted.x", []byte("fifo attr"), 0))
	caps := capV2()
	if base != 0 {
		caps = capV3(base) // as an unprivileged container's tree holds them
	}
	_ = filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		must(err)
		uid, gid := uint32(0), uint32(0)
		if strings.Contains(path, "/home/user") {
			uid, gid = 1000, 1000
		}
		if strings.HasSuffix(path, "shadow") {
			gid = 42
		}
		own(path, uid, gid)
		return nil
	})
	// chown cleared the setuid bit.
	must(os.Chmod(p("rootfs/suid"), 0o4755))
	must(unix.Setxattr(p("rootfs/suid"), "security.capability", caps, 0))
	if err := unix.Setxattr(p("rootfs/home/user/notes"), "system.posix_acl_access", aclValue(base+1000, base+42), 0); err != nil {
		t.Logf("no ACL support here: %v", err)
	}
}

// fileInfo is what the comparison looks at.
type fileInfo struct {
	mode     uint32
	uid, gid uint32
	size     int64
	rdev     uint64
	content  string // files: sha of a sort; links: target
	xattrs   map[string]string
	ino      uint64
	blocks   int64
	modTimeS int64
}

func scan(t *testing.T, dir string) map[string]fileInfo {
	t.Helper()
	out := map[string]fileInfo{}
	err := filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		fi := fileInfo{mode: st.Mode, uid: st.Uid, gid: st.Gid, rdev: st.Rdev, ino: st.Ino, blocks: st.Blocks, modTimeS: st.Mtim.Sec, xattrs: map[string]string{}}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			fi.size = st.Size
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			fi.content = string(b)
		case unix.S_IFLNK:
			fi.content, _ = os.Readlink(path)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			buf := make([]byte, 4096)
			n, err := unix.Llistxattr(path, buf)
			if err != nil {
				return err
			}
			for _, name := range strings.Split(string(buf[:n]), "\x00") {
				if name == "" {
					continue
				}
				v := make([]byte, 4096)
				m, err := unix.Lgetxattr(path, name, v)
				if err != nil {
					return err
				}
				fi.xattrs[name] = string(v[:m])
			}
		}
		out[rel] = fi
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareTrees checks that got is want with every owner in rootfs/ moved
// by delta, holes kept when wantSparse, and the xattrs wantXattr maps
// expected (nil: the same).
func compareTrees(t *testing.T, want, got string, delta int64, wantSparse bool, wantXattr func(rel, name, v string) string) {
	t.Helper()
	w, g := scan(t, want), scan(t, got)
	var names []string
	for n := range w {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == "." {
			continue // The volume's root belongs to storage.
		}
		a, ok := w[n]
		b, found := g[n]
		if !ok || !found {
			t.Errorf("%s: missing from the extracted tree", n)
			continue
		}
		if a.mode != b.mode {
			t.Errorf("%s: mode %o, want %o", n, b.mode, a.mode)
		}
		d := int64(0)
		if inRootfs(n) {
			d = delta
		}
		if int64(b.uid) != int64(a.uid)+d || int64(b.gid) != int64(a.gid)+d {
			t.Errorf("%s: owner %d:%d, want %d:%d", n, b.uid, b.gid, int64(a.uid)+d, int64(a.gid)+d)
		}
		if a.size != b.size || a.content != b.content || a.rdev != b.rdev {
			t.Errorf("%s: content, size or device differs (%d vs %d bytes)", n, b.size, a.size)
		}
		if a.modTimeS != b.modTimeS {
			t.Errorf("%s: mtime %d, want %d", n, b.modTimeS, a.modTimeS)
		}
		for name, v := range a.xattrs {
			if wantXattr != nil {
				v = wantXattr(n, name, v)
			}
			if b.xattrs[name] != v {
				t.Errorf("%s: xattr %s = %x, want %x", n, name, b.xattrs[name], v)
			}
		}
		if len(a.xattrs) != len(b.xattrs) {
			t.Errorf("%s: xattrs %v, want %v", n, keys(b.xattrs), keys(a.xattrs))
		}
	}
	for n := range g {
		if _, ok := w[n]; !ok {
			t.Errorf("%s: extra in the extracted tree", n)
		}
	}
	if g["rootfs/etc/hostname"].ino != g["rootfs/etc/hostname.hard"].ino {
		t.Errorf("hard link not kept")
	}
	if sp := g["rootfs/sparse"]; wantSparse && sp.blocks*512 >= sp.size/2 {
		t.Errorf("sparse file not sparse: %d blocks for %d bytes", sp.blocks, sp.size)
	}
}

func keys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

// restore reads a whole archive into dst: each volume part under
// dst/instance or dst/snap-NAME, disks as dst/NAME.img, optimized
// streams as dst/NAME.bin. It returns the reader (for its index) and the
// first error.
func restore(data []byte, dst string, opts ExtractOptions) (*Reader, error) {
	r, err := Open(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	defer r.Close()
	xs := map[string]*Extractor{}
	defer func() {
		for _, x := range xs {
			x.Close()
		}
	}()
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return r, err
		}
		key := "instance"
		if e.Part.Snapshot != "" {
			key = "snap-" + e.Part.Snapshot
		}
		switch e.Part.Kind {
		case PartVolume:
			x := xs[key]
			if x == nil {
				if err := os.MkdirAll(filepath.Join(dst, key), 0o755); err != nil {
					return r, err
				}
				if x, err = NewExtractor(filepath.Join(dst, key), opts); err != nil {
					return r, err
				}
				xs[key] = x
			}
			if err := x.Extract(e, r); err != nil {
				return r, err
			}
		case PartDisk, PartOptimized, PartOptimizedHeader:
			name := fmt.Sprintf("%s-%s%s.blob", key, e.Part.Kind, strings.ReplaceAll(e.Part.Subvolume, "/", "_"))
			f, err := os.Create(filepath.Join(dst, name))
			if err != nil {
				return r, err
			}
			_, err = CopyDisk(f, r)
			f.Close()
			if err != nil {
				return r, err
			}
		}
	}
	for k, x := range xs {
		delete(xs, k)
		if err := x.Close(); err != nil {
			return r, err
		}
	}
	return r, nil
}

// ent is one entry of a hand-built archive.
type ent struct {
	name string
	typ  byte
	body string
	link string
	mode int64
	uid  int
	gid  int
	pax  map[string]string
}

// mkTar builds an archive entry by entry, exactly as listed.
func mkTar(t *testing.T, compression string, entries []ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	c, err := newCompressor(&buf, compression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(c)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Uid: e.uid, Gid: e.gid, Linkname: e.link, ModTime: time.Unix(1700000000, 0), PAXRecords: e.pax}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("owners, devices and trusted xattrs need root")
	}
}
