package fsroot

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// testTree builds a root with the links the tests walk, beside an
// "outside" directory that nothing may reach. It returns the root's host
// path, the outside dir and the Root.
func testTree(t *testing.T) (string, string, *Root) {
	t.Helper()
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	mk := func(dir string) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, path string) {
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
	}
	mk(outside)
	write(filepath.Join(outside, "secret"), "host secret")
	for _, d := range []string{"etc", "deep/a/b", "empty", "proc"} {
		mk(filepath.Join(root, d))
	}
	write(filepath.Join(root, "etc/passwd"), "root:x:0:0\n")
	link("/etc", filepath.Join(root, "abs"))                   // absolute, inside
	link("etc", filepath.Join(root, "rel"))                    // relative, inside
	link("../etc", filepath.Join(root, "up"))                  // climbs out at once
	link("../../etc", filepath.Join(root, "deep/a/up2"))       // climbs, stays inside
	link("../../../etc", filepath.Join(root, "deep/a/up3"))    // climbs out
	link("/", filepath.Join(root, "slash"))                    // the root itself
	link("loop2", filepath.Join(root, "loop1"))                // loop
	link("loop1", filepath.Join(root, "loop2"))                //
	link("/proc/self/root", filepath.Join(root, "magic"))      // a magic link's path
	link("deep/a", filepath.Join(root, "middle"))              // dir link in the middle
	link("../outside/secret", filepath.Join(root, "out"))      // relative, to the host
	link(outside+"/secret", filepath.Join(root, "absout"))     // absolute host path
	link("/etc/passwd", filepath.Join(root, "passwd-link"))    // file link
	link("/etc/new-through-link", filepath.Join(root, "dang")) // dangling, inside
	link("../../..", filepath.Join(root, "deep/a/b/top"))      // to the root via ..
	dir, err := os.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	return root, outside, New(dir)
}

func TestGetResolvesInsideRoot(t *testing.T) {
	_, _, r := testTree(t)
	tests := []struct {
		path    string
		want    string // file content, or "dir" or "link:TARGET"
		errKind error  // nil for success
		errHas  string
	}{
		{path: "/etc/passwd", want: "root:x:0:0\n"},
		{path: "/abs/passwd", want: "root:x:0:0\n"},
		{path: "/rel/passwd", want: "root:x:0:0\n"},
		{path: "/deep/a/up2/passwd", want: "root:x:0:0\n"},
		{path: "/slash/etc/passwd", want: "root:x:0:0\n"},
		{path: "/slash/slash/abs/passwd", want: "root:x:0:0\n"},
		{path: "/middle/b", want: "dir"},
		{path: "/deep/a/b/top/etc/passwd", want: "root:x:0:0\n"},
		{path: "/a/../etc/passwd", want: "root:x:0:0\n"}, // lexical, as LXD
		{path: "//etc//passwd/", want: "root:x:0:0\n"},
		{path: "/", want: "dir"},
		// The last component is not followed.
		{path: "/abs", want: "link:/etc"},
		{path: "/up", want: "link:../etc"},
		{path: "/absout", want: "link:" + "ABSOUT"},
		// Escapes are refused, not clamped.
		{path: "/..", errKind: ErrOutsideRoot},
		{path: "/../etc/passwd", errKind: ErrOutsideRoot},
		{path: "/../../etc/passwd", errKind: ErrOutsideRoot},
		{path: "/etc/../../etc/passwd", errKind: ErrOutsideRoot},
		{path: "/up/passwd", errKind: ErrOutsideRoot, errHas: `symlink target "../etc"`},
		{path: "/deep/a/up3/passwd", errKind: ErrOutsideRoot},
		{path: "/middle/up3/passwd", errKind: ErrOutsideRoot},
		{path: "/out/x", errKind: ErrOutsideRoot},
		// An absolute host path in a link means that path in the root.
		{path: "/absout/x", errKind: errdefs.ErrNotFound},
		// A magic link's text is just a path in the root, which has no
		// procfs here.
		{path: "/magic/etc/passwd", errKind: errdefs.ErrNotFound},
		{path: "/loop1/x", errKind: errdefs.ErrInvalidArgument, errHas: "too many levels"},
		{path: "/etc/passwd/x", errKind: errdefs.ErrInvalidArgument, errHas: "not a directory"},
		{path: "/nope", errKind: errdefs.ErrNotFound},
		{path: "etc/passwd", errKind: errdefs.ErrInvalidArgument, errHas: "not absolute"},
		{path: "/etc/\x00", errKind: errdefs.ErrInvalidArgument, errHas: "NUL"},
		{path: "/" + strings.Repeat("a/", 2100), errKind: errdefs.ErrInvalidArgument, errHas: "longer"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			n, err := r.Get(tt.path)
			if tt.errKind != nil {
				if !errors.Is(err, tt.errKind) || !strings.Contains(errString(err), tt.errHas) {
					t.Fatalf("Get: %v, want %v containing %q", err, tt.errKind, tt.errHas)
				}
				if errors.Is(err, ErrOutsideRoot) && !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("escape %v is not an invalid argument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.want == "dir":
				if n.Type != TypeDir {
					t.Fatalf("type %v, want directory", n.Type)
				}
			case strings.HasPrefix(tt.want, "link:"):
				if n.Type != TypeSymlink {
					t.Fatalf("type %v, want symlink", n.Type)
				}
				if want := strings.TrimPrefix(tt.want, "link:"); want != "ABSOUT" && n.Target != want {
					t.Fatalf("target %q, want %q", n.Target, want)
				}
			default:
				if n.Type != TypeFile {
					t.Fatalf("type %v, want file", n.Type)
				}
				b, _ := io.ReadAll(n.File)
				n.File.Close()
				if string(b) != tt.want {
					t.Fatalf("content %q, want %q", b, tt.want)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestChangesNeverEscape tries every change through every escape and
// checks that the outside dir is untouched.
func TestChangesNeverEscape(t *testing.T) {
	root, outside, r := testTree(t)
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	paths := []string{"/up/new", "/../new", "/deep/a/up3/new", "/out", "/middle/up3/x", "/out/x"}
	for _, p := range paths {
		t.Run(p, func(t *testing.T) {
			_, werr := r.WriteFile(p, strings.NewReader("pwned"), FileOptions{UID: uid, GID: gid, Mode: 0o644})
			_, aerr := r.WriteFile(p, strings.NewReader("pwned"), FileOptions{Append: true})
			_, merr := r.Mkdir(p, uid, gid, 0o755)
			_, serr := r.Symlink("/etc", p+"/l", uid, gid)
			rerr := r.Remove(p + "/secret")
			for name, err := range map[string]error{"write": werr, "append": aerr, "mkdir": merr, "symlink": serr, "remove": rerr} {
				if err == nil {
					t.Errorf("%s %s: no error", name, p)
				}
			}
		})
	}
	// The absolute host path in a link is a path inside the root.
	if _, err := r.WriteFile("/absout", strings.NewReader("pwned"), FileOptions{UID: uid, GID: gid, Mode: 0o644}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("write through absolute host link: %v, want not found", err)
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 || readFile(t, filepath.Join(outside, "secret")) != "host secret" {
		t.Fatalf("outside changed: %v", entries)
	}
	if _, err := os.Lstat(filepath.Join(root, "out")); err != nil {
		t.Fatalf("the escaping link itself is gone: %v", err)
	}
}

// TestMountedProcIsNotCrossed mounts a real procfs in the root, where its
// magic links (/proc/self/root) lead to the host's root: the walk must not
// cross into it.
func TestMountedProcIsNotCrossed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting procfs needs root")
	}
	root, _, r := testTree(t)
	proc := filepath.Join(root, "proc")
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		t.Skipf("cannot mount procfs here: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(proc, unix.MNT_DETACH) })
	for _, p := range []string{"/proc/self/root/etc/passwd", "/magic/etc/passwd", "/proc/1/environ"} {
		n, err := r.Get(p)
		if err == nil {
			n.File.Close()
			t.Fatalf("Get %s went through the procfs mount", p)
		}
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "mount point") {
			t.Errorf("Get %s: %v, want a mount point error", p, err)
		}
	}
	if _, err := r.WriteFile("/proc/self/root/tmp/pwned", strings.NewReader("x"), FileOptions{}); err == nil {
		t.Fatal("wrote through procfs")
	}
}

// TestMountedTmpfsIsCrossed mounts a tmpfs in the root, as an instance's
// /tmp often is: files pushed there land in it, where the instance sees
// them.
func TestMountedTmpfsIsCrossed(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting tmpfs needs root")
	}
	root, _, r := testTree(t)
	dir := filepath.Join(root, "scratch")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Skipf("cannot mount tmpfs here: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if _, err := r.WriteFile("/scratch/f", strings.NewReader("in tmpfs"), FileOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dir, "f")); got != "in tmpfs" {
		t.Fatalf("tmpfs file %q", got)
	}
	n, err := r.Get("/scratch/f")
	if err != nil {
		t.Fatal(err)
	}
	n.File.Close()
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mode(t *testing.T, path string) (os.FileMode, uint32, uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return os.FileMode(st.Mode & 0o7777), st.Uid, st.Gid
}

func TestWriteFile(t *testing.T) {
	root, _, r := testTree(t)
	// Distinct owners need root; otherwise our own ids still test the flow.
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	if os.Geteuid() == 0 {
		uid, gid = 1001000, 1001001
	}
	created, err := r.WriteFile("/etc/new", strings.NewReader("one\n"), FileOptions{UID: uid, GID: gid, Mode: 0o640})
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if m, u, g := mode(t, filepath.Join(root, "etc/new")); m != 0o640 || u != uid || g != gid {
		t.Fatalf("new file %o %d:%d", m, u, g)
	}
	// Overwrite keeps the owner and mode, as LXD does.
	created, err = r.WriteFile("/etc/new", strings.NewReader("two\n"), FileOptions{UID: 0, GID: 0, Mode: 0o600})
	if err != nil || created {
		t.Fatalf("overwrite: %v %v", created, err)
	}
	if m, u, g := mode(t, filepath.Join(root, "etc/new")); m != 0o640 || u != uid || g != gid {
		t.Fatalf("overwritten file %o %d:%d", m, u, g)
	}
	if _, err := r.WriteFile("/etc/new", strings.NewReader("three\n"), FileOptions{Append: true}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, "etc/new")); got != "two\nthree\n" {
		t.Fatalf("after append %q", got)
	}
	// Special bits survive (chmod after chown).
	if _, err := r.WriteFile("/etc/suid", strings.NewReader("x"), FileOptions{UID: uid, GID: gid, Mode: 0o4755}); err != nil {
		t.Fatal(err)
	}
	if m, _, _ := mode(t, filepath.Join(root, "etc/suid")); m != 0o4755 {
		t.Fatalf("setuid file mode %o", m)
	}
	// A link in last place is followed inside the root: the link stays.
	if _, err := r.WriteFile("/passwd-link", strings.NewReader("via link\n"), FileOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, "etc/passwd")); got != "via link\n" {
		t.Fatalf("write through link: %q", got)
	}
	if fi, err := os.Lstat(filepath.Join(root, "passwd-link")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("link replaced: %v", err)
	}
	// A dangling link is created through, as open(O_CREAT) does.
	if _, err := r.WriteFile("/dang", strings.NewReader("made\n"), FileOptions{Mode: 0o644, UID: uid, GID: gid}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(root, "etc/new-through-link")); got != "made\n" {
		t.Fatalf("through dangling link: %q", got)
	}

	errs := []struct {
		name, path string
		o          FileOptions
		body       io.Reader
		kind       error
	}{
		{"directory", "/etc", FileOptions{}, strings.NewReader("x"), errdefs.ErrConflict},
		{"link to root", "/slash", FileOptions{}, strings.NewReader("x"), errdefs.ErrConflict},
		{"append to missing", "/etc/missing", FileOptions{Append: true}, strings.NewReader("x"), errdefs.ErrNotFound},
		{"missing parent", "/nodir/x", FileOptions{}, strings.NewReader("x"), errdefs.ErrNotFound},
		{"failing body", "/etc/passwd", FileOptions{}, iotest.ErrReader(errors.New("client went away")), nil},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.WriteFile(tt.path, tt.body, tt.o)
			if err == nil || (tt.kind != nil && !errors.Is(err, tt.kind)) {
				t.Fatalf("%v, want %v", err, tt.kind)
			}
		})
	}
	// The failed overwrite left the old content and no temporary file.
	if got := readFile(t, filepath.Join(root, "etc/passwd")); got != "via link\n" {
		t.Fatalf("failed overwrite changed the file: %q", got)
	}
	entries, _ := os.ReadDir(filepath.Join(root, "etc"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".hangar-") {
			t.Fatalf("temporary file left: %s", e.Name())
		}
	}
}

func TestMkdirSymlinkRemove(t *testing.T) {
	root, _, r := testTree(t)
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	if existed, err := r.Mkdir("/etc/d", uid, gid, 0o750); err != nil || existed {
		t.Fatalf("mkdir: %v %v", existed, err)
	}
	if m, _, _ := mode(t, filepath.Join(root, "etc/d")); m != 0o750 {
		t.Fatalf("dir mode %o", m)
	}
	for _, p := range []string{"/etc/d", "/etc", "/", "/abs", "/middle"} {
		if existed, err := r.Mkdir(p, uid, gid, 0o700); err != nil || !existed {
			t.Fatalf("mkdir existing %s: %v %v", p, existed, err)
		}
	}
	if m, _, _ := mode(t, filepath.Join(root, "etc/d")); m != 0o750 {
		t.Fatalf("existing dir changed to %o", m)
	}
	for _, p := range []string{"/etc/passwd", "/passwd-link", "/dang"} {
		if _, err := r.Mkdir(p, uid, gid, 0o700); !errors.Is(err, errdefs.ErrConflict) {
			t.Fatalf("mkdir over %s: %v", p, err)
		}
	}
	if _, err := r.Mkdir("/nodir/x", uid, gid, 0o700); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("mkdir without parent: %v", err)
	}

	if existed, err := r.Symlink("../passwd", "/etc/d/l", uid, gid); err != nil || existed {
		t.Fatalf("symlink: %v %v", existed, err)
	}
	if target, _ := os.Readlink(filepath.Join(root, "etc/d/l")); target != "../passwd" {
		t.Fatalf("link target %q", target)
	}
	if existed, err := r.Symlink("../passwd", "/etc/d/l", uid, gid); err != nil || !existed {
		t.Fatalf("same symlink again: %v %v", existed, err)
	}
	if _, err := r.Symlink("/other", "/etc/d/l", uid, gid); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("other target over a link: %v", err)
	}
	if _, err := r.Symlink("/x", "/etc/passwd", uid, gid); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("link over a file: %v", err)
	}
	// A link pointing anywhere may be made: it is only ever followed inside.
	if _, err := r.Symlink("../../../../..", "/etc/far", uid, gid); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Symlink("", "/etc/empty", uid, gid); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("empty target: %v", err)
	}

	if err := r.Remove("/etc/d"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("remove non-empty dir: %v", err)
	}
	// Removing a link removes the link, not its target.
	if err := r.Remove("/abs"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatalf("link target gone: %v", err)
	}
	for _, p := range []string{"/etc/d/l", "/etc/d", "/empty", "/etc/passwd"} {
		if err := r.Remove(p); err != nil {
			t.Fatalf("remove %s: %v", p, err)
		}
		if _, err := os.Lstat(filepath.Join(root, p)); !os.IsNotExist(err) {
			t.Fatalf("%s still there: %v", p, err)
		}
	}
	if err := r.Remove("/etc/passwd"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("remove missing: %v", err)
	}
	if err := r.Remove("/"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("remove root: %v", err)
	}
	if err := r.Remove("/up/passwd"); !errors.Is(err, ErrOutsideRoot) {
		t.Fatalf("remove through escape: %v", err)
	}
}

func TestGetRefusesDevicesAndLists(t *testing.T) {
	root, _, r := testTree(t)
	n, err := r.Get("/deep/a")
	if err != nil || n.Type != TypeDir || strings.Join(n.Entries, ",") != "b,up2,up3" {
		t.Fatalf("list: %+v %v", n, err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Get("/fifo"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("fifo: %v", err)
	}
	if _, err := r.WriteFile("/fifo", strings.NewReader("x"), FileOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("write fifo: %v", err)
	}
}
