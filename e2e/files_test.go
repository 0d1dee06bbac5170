package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/client"
)

// The tests' unprivileged containers map their ids to host 1000000 + id.
const hostIDBase = 1000000

// statOwner returns a file's host owner, group and mode bits (lstat).
func statOwner(t *testing.T, path string) (uid, gid uint32, mode os.FileMode) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid, st.Gid, os.FileMode(st.Mode & 0o777)
}

// writeTree makes a local tree: a.txt, sub/b.txt (0600), link -> a.txt and
// abs -> /etc/passwd.
func writeTree(t *testing.T, dir string) {
	t.Helper()
	for _, err := range []error{
		os.MkdirAll(filepath.Join(dir, "sub"), 0o755),
		os.WriteFile(filepath.Join(dir, "a.txt"), []byte("alpha\n"), 0o644),
		os.WriteFile(filepath.Join(dir, "sub", "b.txt"), []byte("beta\n"), 0o600),
		os.Chmod(filepath.Join(dir, "sub", "b.txt"), 0o600),
		os.Symlink("a.txt", filepath.Join(dir, "link")),
		os.Symlink("/etc/passwd", filepath.Join(dir, "abs")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestFiles(t *testing.T) {
	d := startDaemon(t, "")
	d.must("image", "import", imageTarball, "--alias", "busybox")
	d.must("launch", "busybox", "c1")
	c := d.client()
	ctx := context.Background()
	local := t.TempDir()
	// What the running container sees, from the host: its mount
	// namespace's root through /proc.
	pid1 := d.pid("c1") // read again after a restart
	inC1 := func(p string) string { return filepath.Join("/proc", strconv.Itoa(pid1), "root", p) }

	t.Run("push and pull keep owner and mode", func(t *testing.T) {
		d := d.on(t)
		src := filepath.Join(local, "conf")
		if err := os.WriteFile(src, []byte("key=value\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		d.must("file", "push", "--uid", "1000", "--gid", "1001", "--mode", "0640", src, "c1/root/conf")
		if uid, gid, mode := statOwner(t, inC1("root/conf")); uid != hostIDBase+1000 || gid != hostIDBase+1001 || mode != 0o640 {
			t.Fatalf("in the container: host ids %d:%d mode %o", uid, gid, mode)
		}
		r, info, err := c.GetInstanceFile(ctx, "c1", "/root/conf")
		if err != nil {
			t.Fatal(err)
		}
		r.Close()
		if info.UID != 1000 || info.GID != 1001 || info.Mode != 0o640 || info.Type != "file" {
			t.Fatalf("API headers: %+v", info)
		}
		out := filepath.Join(local, "pulled")
		d.must("file", "pull", "c1/root/conf", out)
		if got := readFile(t, out); got != "key=value\n" {
			t.Fatalf("pulled %q", got)
		}
		if _, _, mode := statOwner(t, out); mode != 0o640 {
			t.Fatalf("pulled mode %o", mode)
		}
		if got := d.must("file", "pull", "c1/etc/passwd", "-"); got != "root:x:0:0:root:/root:/bin/sh\n" {
			t.Fatalf("pull to stdout %q", got)
		}
		// An id the container's map does not hold is refused.
		d.mustFail([]string{"file", "push", "--uid", "70000", src, "c1/root/bad"}, "outside the instance's id map")
	})

	t.Run("push -r and pull -r a tree with symlinks", func(t *testing.T) {
		d := d.on(t)
		tree := filepath.Join(local, "tree")
		writeTree(t, tree)
		d.must("file", "push", "-r", "-p", tree, "c1/srv/data")
		if got := readFile(t, inC1("srv/data/tree/sub/b.txt")); got != "beta\n" {
			t.Fatalf("pushed tree: %q", got)
		}
		if _, _, mode := statOwner(t, inC1("srv/data/tree/sub/b.txt")); mode != 0o600 {
			t.Fatalf("pushed mode %o", mode)
		}
		if target, _ := os.Readlink(inC1("srv/data/tree/link")); target != "a.txt" {
			t.Fatalf("pushed link -> %q", target)
		}
		out := filepath.Join(local, "out") + "/"
		d.must("file", "pull", "-r", "c1/srv/data/tree", out)
		if got := readFile(t, filepath.Join(out, "tree/sub/b.txt")); got != "beta\n" {
			t.Fatalf("pulled tree: %q", got)
		}
		// A link into the tree stays relative; one out of it is absolute
		// as the instance sees it.
		for link, want := range map[string]string{"link": "a.txt", "abs": "/etc/passwd"} {
			if got, err := os.Readlink(filepath.Join(out, "tree", link)); err != nil || got != want {
				t.Fatalf("pulled %s -> %q (%v), want %q", link, got, err, want)
			}
		}
	})

	t.Run("append, edit and delete", func(t *testing.T) {
		d := d.on(t)
		if _, errOut, code := d.hangarStdin("one\n", "file", "push", "-", "c1/root/log"); code != 0 {
			t.Fatalf("push from stdin: %s", errOut)
		}
		if err := c.CreateInstanceFile(ctx, "c1", "/root/log", client.InstanceFileArgs{Content: strings.NewReader("two\n"), Append: true}); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, inC1("root/log")); got != "one\ntwo\n" {
			t.Fatalf("after append %q", got)
		}
		if _, errOut, code := d.hangarStdin("edited\n", "file", "edit", "c1/root/log"); code != 0 {
			t.Fatalf("edit from stdin: %s", errOut)
		}
		if got := readFile(t, inC1("root/log")); got != "edited\n" {
			t.Fatalf("after edit %q", got)
		}
		d.must("file", "delete", "c1/root/log")
		if _, err := os.Lstat(inC1("root/log")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("deleted file: %v", err)
		}
		d.mustFail([]string{"file", "delete", "c1/srv/data/tree"}, "not empty")
	})

	t.Run("escapes are refused and write nothing on the host", func(t *testing.T) {
		d := d.on(t)
		hostDir := t.TempDir()
		// Links a hostile container could make.
		for link, target := range map[string]string{"/root/up": "../../../..", "/root/hostdir": hostDir} {
			if err := c.CreateInstanceFile(ctx, "c1", link, client.InstanceFileArgs{Type: "symlink", Content: strings.NewReader(target)}); err != nil {
				t.Fatal(err)
			}
		}
		src := filepath.Join(local, "conf")
		d.mustFail([]string{"file", "push", src, "c1/../../" + strings.TrimPrefix(hostDir, "/") + "/pwned"}, "leaves the instance's root filesystem")
		d.mustFail([]string{"file", "push", src, "c1/root/up" + hostDir + "/pwned"}, "leaves the instance's root filesystem")
		d.mustFail([]string{"file", "pull", "c1/root/up/etc/shadow", local}, "leaves the instance's root filesystem")
		// An absolute link names a path inside the container, which has
		// no such directory.
		d.mustFail([]string{"file", "push", src, "c1/root/hostdir/pwned"}, "no such file or directory")
		if entries, _ := os.ReadDir(hostDir); len(entries) != 0 {
			t.Fatalf("written on the host: %v", entries)
		}
	})

	t.Run("stopped and never started instances", func(t *testing.T) {
		d := d.on(t)
		d.must("stop", "--force", "c1")
		d.must("file", "push", "-p", filepath.Join(local, "conf"), "c1/opt/app/conf")
		if got := d.must("file", "pull", "c1/opt/app/conf", "-"); got != "key=value\n" {
			t.Fatalf("pull from a stopped instance: %q", got)
		}
		d.must("file", "delete", "c1/root/conf")
		d.must("init", "busybox", "c2")
		d.must("file", "push", filepath.Join(local, "conf"), "c2/etc/app.conf")
		if mounts := mountsUnder(d.dir); len(mounts) != 0 {
			t.Fatalf("file operations left mounts: %v", mounts)
		}
		d.must("start", "c1", "c2")
		pid1 = d.pid("c1")
		if got := readFile(t, inC1("opt/app/conf")); got != "key=value\n" {
			t.Fatalf("pushed while stopped, seen after start: %q", got)
		}
		if _, err := os.Lstat(inC1("root/conf")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("deleted while stopped: %v", err)
		}
		pid2 := strconv.Itoa(d.pid("c2"))
		if uid, _, _ := statOwner(t, filepath.Join("/proc", pid2, "root/etc/app.conf")); uid != hostIDBase {
			t.Fatalf("c2's file owned by host id %d", uid)
		}
	})

	t.Run("lxc file push and pull", func(t *testing.T) {
		d := d.on(t)
		lxc := lookPath("lxc")
		if lxc == "" {
			t.Skip("lxc is not installed (apt-get install lxd-client)")
		}
		conf := t.TempDir()
		run := func(args ...string) string {
			t.Helper()
			cmd := exec.Command(lxc, args...)
			cmd.Env = append(os.Environ(), "LXD_SOCKET="+d.socket, "LXD_CONF="+conf)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("lxc %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		src := filepath.Join(local, "lxc.txt")
		if err := os.WriteFile(src, []byte("from lxc\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		run("file", "push", src, "c1/root/lxc.txt")
		if got := readFile(t, inC1("root/lxc.txt")); got != "from lxc\n" {
			t.Fatalf("lxc push: %q", got)
		}
		if _, _, mode := statOwner(t, inC1("root/lxc.txt")); mode != 0o600 {
			t.Fatalf("lxc push mode %o", mode)
		}
		run("file", "push", "-p", src, "c1/root/a/b/c/lxc.txt")
		if got := readFile(t, inC1("root/a/b/c/lxc.txt")); got != "from lxc\n" {
			t.Fatalf("lxc push -p: %q", got)
		}
		tree := filepath.Join(local, "lxctree")
		writeTree(t, tree)
		run("file", "push", "-r", tree, "c1/root/")
		if target, _ := os.Readlink(inC1("root/lxctree/link")); target != "a.txt" {
			t.Fatalf("lxc push -r link -> %q", target)
		}
		run("file", "push", "-r", "-p", tree, "c1/root/x/y")
		if got := readFile(t, inC1("root/x/y/lxctree/sub/b.txt")); got != "beta\n" {
			t.Fatalf("lxc push -r -p: %q", got)
		}

		out := filepath.Join(local, "lxcout")
		run("file", "pull", "c1/root/lxc.txt", out)
		if got := readFile(t, out); got != "from lxc\n" {
			t.Fatalf("lxc pull: %q", got)
		}
		deep := filepath.Join(local, "lxcdeep", "x", "lxc.txt")
		run("file", "pull", "-p", "c1/root/lxc.txt", deep)
		if got := readFile(t, deep); got != "from lxc\n" {
			t.Fatalf("lxc pull -p: %q", got)
		}
		outDir := filepath.Join(local, "lxcpulled")
		run("file", "pull", "-r", "c1/root/lxctree", outDir)
		if got := readFile(t, filepath.Join(outDir, "lxctree/sub/b.txt")); got != "beta\n" {
			t.Fatalf("lxc pull -r: %q", got)
		}
		// LXD reports link targets as absolute paths; lxc makes them so.
		if target, _ := os.Readlink(filepath.Join(outDir, "lxctree/link")); target != "/root/lxctree/a.txt" {
			t.Fatalf("lxc pull -r link -> %q", target)
		}
		edit := exec.Command(lxc, "file", "edit", "c1/root/lxc.txt")
		edit.Env = append(os.Environ(), "LXD_SOCKET="+d.socket, "LXD_CONF="+conf)
		edit.Stdin = strings.NewReader("edited by lxc\n")
		if out, err := edit.CombinedOutput(); err != nil {
			t.Fatalf("lxc file edit: %v\n%s", err, out)
		}
		if got := readFile(t, inC1("root/lxc.txt")); got != "edited by lxc\n" {
			t.Fatalf("lxc edit: %q", got)
		}
		run("file", "delete", "c1/root/lxc.txt")
		if _, err := os.Lstat(inC1("root/lxc.txt")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("lxc delete: %v", err)
		}
	})
}
