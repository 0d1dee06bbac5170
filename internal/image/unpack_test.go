package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// unpackInto unpacks data into a fresh directory root inside base, next to
// a directory "outside" holding a sentinel file.
func unpackInto(t *testing.T, data []byte, opts unpackOptions) (root, outside string, err error) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{root, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "sentinel"), []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = unpack(context.Background(), bytes.NewReader(data), root, opts)
	return root, outside, err
}

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return &st
}

func TestUnpackEntryTypes(t *testing.T) {
	withXattr := reg("xattr", "x", 0o644)
	withXattr.PAXRecords = map[string]string{
		"SCHILY.xattr.user.hangar":       "value\x00with-nul",
		"SCHILY.xattr.trusted.hangar":    "trusted",
		"SCHILY.xattr.security.selinux":  "system_u:object_r:bin_t:s0\x00",
		"SCHILY.xattr.user.other-record": "2",
	}
	linkWithXattr := symlinkEntry("lnk-x", "xattr")
	linkWithXattr.PAXRecords = map[string]string{"SCHILY.xattr.user.refused": "on symlinks"}
	owned := reg("owned", "o", 0o640)
	owned.Uid, owned.Gid = 1000, 1001
	suid := reg("bin/su", "su", 0o4755)
	suid.Uid, suid.Gid = 0, 0
	sgidDir := dirEntry("srv/", 0o2775)
	sgidDir.Gid = 50
	early := dirEntry("early/", 0o750)
	early.ModTime = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	chr := tarEntry{Header: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}}
	blk := tarEntry{Header: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop0", Mode: 0o660, Devmajor: 7, Devminor: 0, Gid: 6}}
	fifo := tarEntry{Header: tar.Header{Typeflag: tar.TypeFifo, Name: "run/initctl", Mode: 0o600}}
	lnk := symlinkEntry("etc/passwd-link", "/etc/passwd")
	lnk.ModTime = time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)

	data := buildTar(t,
		dirEntry("./", 0o755),
		early,
		reg("early/child", "c", 0o600), // Would bump early's mtime; times are applied last.
		withXattr,
		linkWithXattr,
		owned,
		suid,
		sgidDir,
		dirEntry("tmp/", 0o1777),
		chr, blk, fifo,
		lnk,
		reg("deep/implied/parents/file", "p", 0o644), // No entries for its parents.
		reg("orig", "shared", 0o644),
		hardlinkEntry("hard", "orig"),
		hardlinkEntry("/hard-abs", "/orig"),
	)
	root, _, err := unpackInto(t, data, unpackOptions{})
	if err != nil {
		t.Fatal(err)
	}

	// Modes, including setuid/setgid/sticky, and owners.
	for _, tc := range []struct {
		path     string
		typ      uint32
		perm     uint32
		uid, gid uint32
	}{
		{"owned", unix.S_IFREG, 0o640, 1000, 1001},
		{"bin/su", unix.S_IFREG, 0o4755, 0, 0},
		{"srv", unix.S_IFDIR, 0o2775, 0, 50},
		{"tmp", unix.S_IFDIR, 0o1777, 0, 0},
		{"early", unix.S_IFDIR, 0o750, 0, 0},
		{"dev/null", unix.S_IFCHR, 0o666, 0, 0},
		{"dev/loop0", unix.S_IFBLK, 0o660, 0, 6},
		{"run/initctl", unix.S_IFIFO, 0o600, 0, 0},
		{"etc/passwd-link", unix.S_IFLNK, 0o777, 0, 0},
		{"deep/implied", unix.S_IFDIR, 0o755, 0, 0},
	} {
		st := lstat(t, filepath.Join(root, tc.path))
		if st.Mode&unix.S_IFMT != tc.typ || st.Mode&0o7777 != tc.perm || st.Uid != tc.uid || st.Gid != tc.gid {
			t.Errorf("%s: mode %o owner %d:%d, want %o %o owner %d:%d", tc.path, st.Mode, st.Uid, st.Gid, tc.typ, tc.perm, tc.uid, tc.gid)
		}
	}
	if st := lstat(t, filepath.Join(root, "dev/null")); unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("dev/null is %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if st := lstat(t, filepath.Join(root, "dev/loop0")); unix.Major(st.Rdev) != 7 || unix.Minor(st.Rdev) != 0 {
		t.Errorf("dev/loop0 is %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}

	// Symlinks are created, not followed.
	if target, err := os.Readlink(filepath.Join(root, "etc/passwd-link")); err != nil || target != "/etc/passwd" {
		t.Errorf("symlink: %q, %v", target, err)
	}

	// Hardlinks share the inode.
	orig := lstat(t, filepath.Join(root, "orig"))
	for _, p := range []string{"hard", "hard-abs"} {
		if st := lstat(t, filepath.Join(root, p)); st.Ino != orig.Ino {
			t.Errorf("%s is not a hardlink of orig", p)
		}
	}
	if orig.Nlink != 3 {
		t.Errorf("orig has %d links, want 3", orig.Nlink)
	}

	// Times: of files, of symlinks, and of directories despite their children.
	for p, want := range map[string]time.Time{
		"orig":            testTime,
		"early":           early.ModTime,
		"etc/passwd-link": lnk.ModTime,
		"":                testTime,
	} {
		st := lstat(t, filepath.Join(root, p))
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(want) {
			t.Errorf("%q mtime %v, want %v", p, got.UTC(), want)
		}
	}

	// Xattrs, binary values included.
	for name, want := range map[string]string{"user.hangar": "value\x00with-nul", "trusted.hangar": "trusted", "user.other-record": "2"} {
		buf := make([]byte, 256)
		n, err := unix.Lgetxattr(filepath.Join(root, "xattr"), name, buf)
		if err != nil || string(buf[:n]) != want {
			t.Errorf("xattr %s: %q, %v", name, buf[:max(n, 0)], err)
		}
	}
}

func TestUnpackRootEntry(t *testing.T) {
	root, _, err := unpackInto(t, buildTar(t, dirEntry("./", 0o700), reg("f", "x", 0o644)), unpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, root); st.Mode&0o7777 != 0o700 {
		t.Errorf("root mode %o, want 700", st.Mode&0o7777)
	}
	// Without a root entry the root is 0755.
	root, _, err = unpackInto(t, buildTar(t, reg("f", "x", 0o644)), unpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, root); st.Mode&0o7777 != 0o755 {
		t.Errorf("root mode %o, want 755", st.Mode&0o7777)
	}
}

func TestUnpackReplace(t *testing.T) {
	data := buildTar(t,
		reg("f", "first", 0o644),
		reg("f", "second", 0o600), // Last one wins.
		dirEntry("d/", 0o755),
		reg("d/sub/x", "x", 0o644),
		reg("d", "file now", 0o644), // A directory replaced by a file, subtree and all.
		reg("g", "file", 0o644),
		dirEntry("g/", 0o700), // A file replaced by a directory.
		dirEntry("keep/", 0o755),
		reg("keep/a", "a", 0o644),
		dirEntry("keep/", 0o711), // A directory again: kept with its contents, new mode.
	)
	root, _, err := unpackInto(t, data, unpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"f": "second", "d": "file now", "keep/a": "a"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", p, b, err)
		}
	}
	if st := lstat(t, filepath.Join(root, "g")); st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o777 != 0o700 {
		t.Errorf("g: mode %o", st.Mode)
	}
	if st := lstat(t, filepath.Join(root, "keep")); st.Mode&0o777 != 0o711 {
		t.Errorf("keep: mode %o", st.Mode)
	}
}

// TestUnpackEscapes tries to write outside the root every way an archive
// can. Each either fails with an invalid-argument error or lands inside the
// root; never is anything outside touched.
func TestUnpackEscapes(t *testing.T) {
	var passwd unix.Stat_t
	if err := unix.Stat("/etc/passwd", &passwd); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		entries func(outside string) []tarEntry
		wantErr bool
		inside  string // For contained cases: where the write landed, relative to the root.
	}{{
		name:    "dot-dot",
		entries: func(string) []tarEntry { return []tarEntry{reg("../../etc/x", "evil", 0o644)} },
		wantErr: true,
	}, {
		name:    "dot-dot after a component",
		entries: func(string) []tarEntry { return []tarEntry{reg("a/../../outside/sentinel", "evil", 0o644)} },
		wantErr: true,
	}, {
		name:    "absolute path is relative to the root",
		entries: func(o string) []tarEntry { return []tarEntry{reg(o+"/sentinel", "evil", 0o644)} },
		inside:  "OUTSIDE/sentinel",
	}, {
		name:    "absolute hardlink target outside",
		entries: func(string) []tarEntry { return []tarEntry{hardlinkEntry("passwd", "/etc/passwd")} },
		wantErr: true,
	}, {
		name:    "hardlink target climbing out",
		entries: func(string) []tarEntry { return []tarEntry{hardlinkEntry("s", "../outside/sentinel")} },
		wantErr: true,
	}, {
		name: "hardlink through a symlink to outside",
		entries: func(o string) []tarEntry {
			return []tarEntry{symlinkEntry("out", o), hardlinkEntry("s", "out/sentinel")}
		},
		wantErr: true,
	}, {
		name: "file through an absolute symlink to a directory outside",
		entries: func(o string) []tarEntry {
			return []tarEntry{symlinkEntry("a", o), reg("a/evil", "evil", 0o644)}
		},
		wantErr: true, // OUTSIDE does not exist inside the root; the symlink is not a directory to create in.
	}, {
		name: "file through an absolute symlink to /tmp",
		entries: func(string) []tarEntry {
			return []tarEntry{dirEntry("tmp/", 0o1777), symlinkEntry("a", "/tmp"), reg("a/evil", "evil", 0o644)}
		},
		inside: "tmp/evil",
	}, {
		name: "file through a symlink to /",
		entries: func(string) []tarEntry {
			return []tarEntry{symlinkEntry("a", "/"), reg("a/evil", "evil", 0o644)}
		},
		inside: "evil",
	}, {
		name: "file through a relative symlink climbing out",
		entries: func(string) []tarEntry {
			return []tarEntry{symlinkEntry("a", "../../../../../../.."), reg("a/evil", "evil", 0o644)}
		},
		inside: "evil",
	}, {
		name: "file through a symlinked parent chain",
		entries: func(o string) []tarEntry {
			return []tarEntry{dirEntry("d/", 0o755), symlinkEntry("d/up", "../.."), symlinkEntry("x", "d/up/d"), reg("x/evil", "evil", 0o644)}
		},
		inside: "d/evil",
	}, {
		name: "file replacing a symlink to a file outside",
		entries: func(o string) []tarEntry {
			return []tarEntry{symlinkEntry("f", o+"/sentinel"), reg("f", "evil", 0o644)}
		},
		inside: "f",
	}, {
		name: "directory replacing a symlink to outside",
		entries: func(o string) []tarEntry {
			return []tarEntry{symlinkEntry("d", o), dirEntry("d/", 0o777), reg("d/sentinel", "evil", 0o644)}
		},
		inside: "d/sentinel",
	}, {
		name: "hardlink replacing a symlink to outside",
		entries: func(o string) []tarEntry {
			return []tarEntry{reg("src", "evil", 0o644), symlinkEntry("h", o+"/sentinel"), hardlinkEntry("h", "src")}
		},
		inside: "h",
	}, {
		name: "device replacing a symlink to outside",
		entries: func(o string) []tarEntry {
			return []tarEntry{symlinkEntry("n", o+"/sentinel"), {Header: tar.Header{Typeflag: tar.TypeFifo, Name: "n", Mode: 0o644}}}
		},
	}, {
		name:    "root replaced by a file",
		entries: func(string) []tarEntry { return []tarEntry{reg(".", "evil", 0o644)} },
		wantErr: true,
	}, {
		name:    "root replaced by a symlink",
		entries: func(o string) []tarEntry { return []tarEntry{symlinkEntry("/", o), reg("sentinel", "evil", 0o644)} },
		wantErr: true,
	}, {
		name:    "hardlink to the root",
		entries: func(string) []tarEntry { return []tarEntry{hardlinkEntry("r", "/")} },
		wantErr: true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			root := filepath.Join(base, "root")
			outside := filepath.Join(base, "outside")
			os.Mkdir(root, 0o755)
			os.Mkdir(outside, 0o755)
			os.WriteFile(filepath.Join(outside, "sentinel"), []byte("untouched"), 0o644)
			before := snapshot(t, outside)

			_, err := unpack(context.Background(), bytes.NewReader(buildTar(t, tc.entries(outside)...)), root, unpackOptions{})
			t.Logf("unpack: %v", err)
			if tc.wantErr {
				assertKind(t, err, errdefs.ErrInvalidArgument)
			} else if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, snapshot(t, outside)); diff != "" {
				t.Errorf("outside changed (-before +after):\n%s", diff)
			}
			entries, _ := os.ReadDir(base)
			if len(entries) != 2 {
				t.Errorf("base holds %d entries, want root and outside", len(entries))
			}
			var st unix.Stat_t
			if err := unix.Stat("/etc/passwd", &st); err != nil || st.Nlink != passwd.Nlink {
				t.Errorf("/etc/passwd links changed: %d, was %d", st.Nlink, passwd.Nlink)
			}
			if tc.inside != "" {
				p := filepath.Join(root, strings.Replace(tc.inside, "OUTSIDE", outside, 1))
				if b, err := os.ReadFile(p); err != nil || string(b) != "evil" {
					t.Errorf("contained write: %s: %q, %v", p, b, err)
				}
			}
		})
	}
}

func TestUnpackShift(t *testing.T) {
	m := &driver.IDMap{HostID: 1000000, Size: 65536}
	owned := reg("home/user/f", "x", 0o4750)
	owned.Uid, owned.Gid = 1000, 1000
	lnk := symlinkEntry("home/user/l", "f")
	lnk.Uid, lnk.Gid = 1000, 100
	root, _, err := unpackInto(t, buildTar(t, owned, lnk, dirEntry("etc/", 0o755)), unpackOptions{shift: m})
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string][2]uint32{
		"":            {1000000, 1000000}, // The root, without an entry of its own.
		"home":        {1000000, 1000000}, // Implied directories.
		"home/user/f": {1001000, 1001000},
		"home/user/l": {1001000, 1000100},
		"etc":         {1000000, 1000000},
	} {
		st := lstat(t, filepath.Join(root, p))
		if st.Uid != want[0] || st.Gid != want[1] {
			t.Errorf("%q owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, want[0], want[1])
		}
	}
	if st := lstat(t, filepath.Join(root, "home/user/f")); st.Mode&0o7777 != 0o4750 {
		t.Errorf("setuid lost on shift: %o", st.Mode&0o7777)
	}

	outOfMap := reg("f", "x", 0o644)
	outOfMap.Uid = 65536
	_, _, err = unpackInto(t, buildTar(t, outOfMap), unpackOptions{shift: m})
	assertKind(t, err, errdefs.ErrInvalidArgument)

	_, _, err = unpackInto(t, buildTar(t, reg("f", "x", 0o644)), unpackOptions{shift: &driver.IDMap{HostID: 4294967000, Size: 65536}})
	assertKind(t, err, errdefs.ErrInvalidArgument)
}

func capV2(permitted uint32, effective bool) []byte {
	b := make([]byte, capSizeV2)
	magic := uint32(capRevision2)
	if effective {
		magic |= capFlagsEff
	}
	binary.LittleEndian.PutUint32(b, magic)
	binary.LittleEndian.PutUint32(b[4:], permitted)
	return b
}

func TestUnpackFileCapabilities(t *testing.T) {
	const capNetRaw = 1 << 13
	ping := reg("bin/ping", "ping", 0o755)
	ping.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(capV2(capNetRaw, true))}
	data := buildTar(t, ping)

	read := func(root string) []byte {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(root, "bin/ping"), "security.capability", buf)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	// Unshifted: as in the archive.
	root, _, err := unpackInto(t, data, unpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := read(root); !bytes.Equal(got, capV2(capNetRaw, true)) {
		t.Errorf("unshifted capability %x", got)
	}
	// Shifted: revision 3 with the map's root, after the chown that clears it.
	root, _, err = unpackInto(t, data, unpackOptions{shift: &driver.IDMap{HostID: 1000000, Size: 65536}})
	if err != nil {
		t.Fatal(err)
	}
	got := read(root)
	if len(got) != capSizeV3 || binary.LittleEndian.Uint32(got) != capRevision3|capFlagsEff ||
		binary.LittleEndian.Uint32(got[4:]) != capNetRaw || binary.LittleEndian.Uint32(got[capSizeV2:]) != 1000000 {
		t.Errorf("shifted capability %x", got)
	}
}

func TestShiftCapabilityAndACL(t *testing.T) {
	m := driver.IDMap{HostID: 100000, Size: 1000}
	v3 := append(capV2(5, false), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(v3, capRevision3)
	binary.LittleEndian.PutUint32(v3[capSizeV2:], 7)
	got, err := shiftCapability(v3, m)
	if err != nil || binary.LittleEndian.Uint32(got[capSizeV2:]) != 100007 {
		t.Errorf("v3 root shift: %x, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {1, 2}, capV2(1, true)[:10], {0, 0, 0, 9}} {
		if _, err := shiftCapability(bad, m); err == nil {
			t.Errorf("shiftCapability(%x) accepted", bad)
		}
	}

	acl := func(entries ...[3]uint32) []byte {
		b := binary.LittleEndian.AppendUint32(nil, aclVersion)
		for _, e := range entries {
			b = binary.LittleEndian.AppendUint16(b, uint16(e[0]))
			b = binary.LittleEndian.AppendUint16(b, uint16(e[1]))
			b = binary.LittleEndian.AppendUint32(b, e[2])
		}
		return b
	}
	const undef = 0xffffffff
	in := acl([3]uint32{0x01, 6, undef}, [3]uint32{aclUser, 4, 10}, [3]uint32{0x04, 4, undef}, [3]uint32{aclGroup, 4, 20}, [3]uint32{0x10, 4, undef}, [3]uint32{0x20, 0, undef})
	want := acl([3]uint32{0x01, 6, undef}, [3]uint32{aclUser, 4, 100010}, [3]uint32{0x04, 4, undef}, [3]uint32{aclGroup, 4, 100020}, [3]uint32{0x10, 4, undef}, [3]uint32{0x20, 0, undef})
	if got, err := shiftACL(in, m); err != nil || !bytes.Equal(got, want) {
		t.Errorf("shiftACL: %x, %v", got, err)
	}
	for _, bad := range [][]byte{nil, {2, 0, 0, 0, 1}, acl([3]uint32{aclUser, 4, 1000})} {
		if _, err := shiftACL(bad, m); err == nil {
			t.Errorf("shiftACL(%x) accepted", bad)
		}
	}

	// Round trip through the filesystem.
	f := reg("acl", "x", 0o640)
	f.PAXRecords = map[string]string{"SCHILY.xattr.system.posix_acl_access": string(in)}
	root, _, err := unpackInto(t, buildTar(t, f), unpackOptions{shift: &m})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 128)
	n, err := unix.Lgetxattr(filepath.Join(root, "acl"), "system.posix_acl_access", buf)
	if err != nil {
		t.Skipf("no ACL support: %v", err)
	}
	if !bytes.Equal(buf[:n], want) {
		t.Errorf("ACL on disk %x, want %x", buf[:n], want)
	}
}

func TestUnpackInvalid(t *testing.T) {
	full := buildTar(t, reg("f", strings.Repeat("x", 5000), 0o644), reg("g", "y", 0o644))
	tests := []struct {
		name string
		data []byte
	}{
		{"truncated in content", full[:1500]},
		{"truncated in header", full[:100]},
		{"garbage", bytes.Repeat([]byte("not a tar archive "), 100)},
		{"bad device number", buildTar(t, tarEntry{Header: tar.Header{Typeflag: tar.TypeChar, Name: "c", Devmajor: 5000}})},
		{"empty symlink target", buildTar(t, tarEntry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: "l"}})},
		{"hardlink to nothing", buildTar(t, hardlinkEntry("h", "missing"))},
		{"hardlink to a directory", buildTar(t, dirEntry("d/", 0o755), hardlinkEntry("h", "d"))},
		{"file as a parent", buildTar(t, reg("f", "x", 0o644), reg("f/g", "y", 0o644))},
		{"owner beyond 32 bits", buildTar(t, tarEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "f", Uid: 1 << 33}})},
		{"name too long", buildTar(t, reg(strings.Repeat("n", 300), "x", 0o644))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := unpackInto(t, tc.data, unpackOptions{})
			assertKind(t, err, errdefs.ErrInvalidArgument)
		})
	}
}

func TestUnpackLimitAndCancel(t *testing.T) {
	data := buildTar(t, reg("big", strings.Repeat("x", 1<<20), 0o644))
	_, _, err := unpackInto(t, data, unpackOptions{size: &sizeCap{limit: 1000, why: "test"}})
	assertKind(t, err, errdefs.ErrInvalidArgument)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = unpack(ctx, bytes.NewReader(data), t.TempDir(), unpackOptions{})
	assertKind(t, err, errdefs.ErrCancelled)
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"":             "",
		".":            "",
		"./":           "",
		"/":            "",
		"//":           "",
		"a":            "a",
		"./a/b/":       "a/b",
		"/etc/passwd":  "etc/passwd",
		"a/./b//c":     "a/b/c",
		"a/../b":       "b",
		"a/b/../../c":  "c",
		"..foo":        "..foo",
		"a/..b/../c":   "a/c",
		"///x/../y/./": "y",
	} {
		if got, err := cleanPath(in); err != nil || got != want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"..", "../", "../a", "a/../..", "a/../../b", "/../x", "./..", "x\x00y"} {
		if got, err := cleanPath(in); err == nil {
			t.Errorf("cleanPath(%q) = %q, want an error", in, got)
		}
	}
}

func TestDetectCompression(t *testing.T) {
	plain := buildTar(t, reg("BZh91AY&SYxx", "named like bzip2", 0o644))
	for name, tc := range map[string]struct {
		data []byte
		want string
	}{
		"plain":                  {buildTar(t, reg("f", "x", 0o644)), compressionNone},
		"plain named like bzip2": {plain, compressionNone},
		"gzip":                   {compress(t, "gzip", plain), compressionGzip},
		"xz":                     {compress(t, "xz", plain), compressionXz},
		"zstd":                   {compress(t, "zstd", plain), compressionZstd},
		"bzip2":                  {compress(t, "bzip2", plain), compressionBzip2},
		"short":                  {[]byte{0x1f}, compressionNone},
		"empty":                  {nil, compressionNone},
	} {
		head := tc.data[:min(len(tc.data), 512)]
		if got := detectCompression(head); got != tc.want {
			t.Errorf("%s: detected %q, want %q", name, got, tc.want)
		}
	}
}
