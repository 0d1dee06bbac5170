package container

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// poolDir makes a directory for what a storage pool would hold, where an
// unprivileged container's root can reach it.
func (e *testEnv) poolDir(name string) string {
	e.t.Helper()
	p := filepath.Join(filepath.Dir(e.dir), "pool", name+"-"+randomID(e.t))
	if err := os.MkdirAll(p, 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// storageRoot makes the root a storage pool hands over for a new
// instance: "overlay" (a dir pool: the image under a writable layer whose
// root belongs to the container's root, as storage chowns it) or "bind"
// (a directory holding the image's tree, a btrfs subvolume's stand-in).
// data is where the instance's writes land.
func (e *testEnv) storageRoot(kind string, userns bool) (root driver.Root, data string) {
	e.t.Helper()
	owner, lower := 0, e.rootfs
	if userns {
		owner, lower = testHostID, e.shifted
	}
	switch kind {
	case "overlay":
		vol := e.poolDir("overlay")
		upper, work := filepath.Join(vol, "upper"), filepath.Join(vol, "work")
		for _, p := range []string{upper, work} {
			if err := os.Mkdir(p, 0o755); err != nil {
				e.t.Fatal(err)
			}
		}
		if err := os.Lchown(upper, owner, owner); err != nil {
			e.t.Fatal(err)
		}
		return driver.Root{Mounts: []driver.Mount{{Type: "overlay", Source: "overlay",
			Options: []string{"lowerdir=" + lower, "upperdir=" + upper, "workdir=" + work}}}}, upper
	case "bind":
		vol := filepath.Join(e.poolDir("bind"), "rootfs")
		copyTree(e.t, e.rootfs, vol, owner)
		return driver.Root{Mounts: []driver.Mount{{Type: "bind", Source: vol}}}, vol
	}
	e.t.Fatalf("unknown root kind %q", kind)
	return driver.Root{}, ""
}

// storageSpec is a spec for a new ID on a root storage made.
func (e *testEnv) storageSpec(kind string, userns bool, args ...string) (driver.Spec, string) {
	root, data := e.storageRoot(kind, userns)
	s := driver.Spec{ID: randomID(e.t), Root: root, Args: args}
	if userns {
		s.IDMap = &driver.IDMap{HostID: testHostID, Size: testIDSize}
	}
	return s, data
}

// hostFile writes a file owned by uid:gid (host ids), making its directory.
func hostFile(t *testing.T, p, content string, uid, gid int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(p, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// inside runs sh -c script in the container and returns its stdout,
// failing on a non-zero exit.
func inside(t *testing.T, e *testEnv, id, script string) string {
	t.Helper()
	out, errOut, code := runExec(t, e.d, id, driver.ExecSpec{Args: []string{"sh", "-c", script}}, "")
	if code != 0 {
		t.Fatalf("%q in the container: exit %d, stderr %q", script, code, errOut)
	}
	return out
}

// insideFails runs sh -c script in the container, which must fail, and
// returns its stderr.
func insideFails(t *testing.T, e *testEnv, id, script string) string {
	t.Helper()
	out, errOut, code := runExec(t, e.d, id, driver.ExecSpec{Args: []string{"sh", "-c", script}}, "")
	if code == 0 {
		t.Fatalf("%q in the container succeeded: %q", script, out)
	}
	return errOut
}

func ownerOf(t *testing.T, p string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", st.Uid, st.Gid)
}

// TestRootFromStorage starts containers on the roots storage hands over
// (an overlay, a bind of a plain directory) and opens them while stopped:
// the driver makes no layer of its own, and Delete leaves storage's data.
func TestRootFromStorage(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, kind := range []string{"overlay", "bind"} {
		for _, userns := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/userns=%v", kind, userns), func(t *testing.T) {
				s, data := e.storageSpec(kind, userns, "sleep", "1000")
				rootOwner := "0:0"
				if userns {
					rootOwner = fmt.Sprintf("%d:%d", testHostID, testHostID)
				}

				// Stopped, never started: opened for us alone.
				root, err := e.d.OpenRoot(bg, s)
				if err != nil {
					t.Fatal(err)
				}
				if got, err := readAt(root, "etc/passwd"); err != nil || !strings.HasPrefix(got, "root:x:0:0") {
					t.Fatalf("image through the root: %q %v", got, err)
				}
				writeAt(t, root, "root/pushed", "pushed while stopped")
				root.Close()
				if b, err := os.ReadFile(filepath.Join(data, "root/pushed")); err != nil || string(b) != "pushed while stopped" {
					t.Fatalf("push landed in storage's data: %q %v", b, err)
				}
				dir := e.d.instanceDir(s.ID)
				for _, name := range []string{"upper", "work"} {
					if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("the driver made its own %s: %v", name, err)
					}
				}
				if mps, _ := mountPoints(dir); len(mps) != 0 {
					t.Fatalf("a private root shows in the mount table: %v", mps)
				}

				e.start(s)
				if got := inside(t, e, s.ID, "cat /root/pushed; stat -c %u:%g /; touch /written"); got != "pushed while stopped0:0\n" {
					t.Errorf("inside: %q, want the push and / owned by root", got)
				}
				if got := ownerOf(t, filepath.Join(data, "written")); got != rootOwner {
					t.Errorf("written owned by %s on the host, want %s", got, rootOwner)
				}
				if err := e.d.Stop(bg, s.ID, 0, 0, true); err != nil {
					t.Fatal(err)
				}
				e.assertGone(s.ID)

				// Stopped after a run: opened again, with the run's writes.
				root, err = e.d.OpenRoot(bg, s)
				if err != nil {
					t.Fatal(err)
				}
				var st unix.Stat_t
				if err := unix.Fstatat(int(root.Fd()), "written", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					t.Errorf("the run's write through the root: %v", err)
				}
				root.Close()

				if err := e.d.Delete(bg, s.ID); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left: %v", dir, err)
				}
				keep := []string{"written", "root/pushed"}
				if kind == "bind" {
					keep = append(keep, "bin/busybox")
				}
				for _, p := range keep {
					if _, err := os.Lstat(filepath.Join(data, p)); err != nil {
						t.Errorf("Delete reached into storage's data: %v", err)
					}
				}
			})
		}
	}
}

// TestStartBadStorageInput: a root or mounts that cannot be made are
// refused before anything is made, and nothing is left.
func TestStartBadStorageInput(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	okRoot, _ := e.storageRoot("bind", false)
	src := e.poolDir("src")
	missing := filepath.Join(src, "missing")
	overlay := func(opts ...string) driver.Root {
		return driver.Root{Mounts: []driver.Mount{{Type: "overlay", Source: "overlay", Options: opts}}}
	}
	up, wk := "upperdir="+e.poolDir("u"), "workdir="+e.poolDir("w")
	for _, tc := range []struct {
		name    string
		root    driver.Root
		mounts  []driver.Mount
		limits  driver.Limits
		invalid bool // else any error
	}{
		{name: "two root mounts", root: driver.Root{Mounts: append(okRoot.Mounts, okRoot.Mounts...)}, invalid: true},
		{name: "root of an unknown type", root: driver.Root{Mounts: []driver.Mount{{Type: "zfs", Source: src}}}, invalid: true},
		{name: "comma in lowerdir", root: overlay("lowerdir="+e.rootfs+",upperdir=/x", up, wk), invalid: true},
		{name: "relative upperdir", root: overlay("lowerdir="+e.rootfs, "upperdir=up", wk), invalid: true},
		{name: "no lowerdir", root: overlay(up, wk), invalid: true},
		{name: "upperdir without workdir", root: overlay("lowerdir="+e.rootfs, up), invalid: true},
		{name: "missing lower", root: overlay("lowerdir="+missing, up, wk)},
		{name: "relative bind root", root: driver.Root{Mounts: []driver.Mount{{Type: "bind", Source: "rootfs"}}}, invalid: true},
		{name: "missing bind root", root: driver.Root{Mounts: []driver.Mount{{Type: "bind", Source: missing}}}},
		{name: "root mount with a destination", root: driver.Root{Mounts: []driver.Mount{{Type: "bind", Source: src, Destination: "/x"}}}, invalid: true},
		{name: "relative destination", root: okRoot, mounts: []driver.Mount{{Type: "bind", Source: src, Destination: "mnt"}}, invalid: true},
		{name: "destination /", root: okRoot, mounts: []driver.Mount{{Type: "bind", Source: src, Destination: "/"}}, invalid: true},
		{name: "destination in /proc", root: okRoot, mounts: []driver.Mount{{Type: "bind", Source: src, Destination: "/proc/sys"}}, invalid: true},
		{name: "missing source", root: okRoot, mounts: []driver.Mount{{Type: "bind", Source: missing, Destination: "/mnt"}}, invalid: true},
		{name: "relative source", root: okRoot, mounts: []driver.Mount{{Type: "bind", Source: "src", Destination: "/mnt"}}, invalid: true},
		{name: "not a bind", root: okRoot, mounts: []driver.Mount{{Type: "overlay", Source: src, Destination: "/mnt"}}, invalid: true},
		{name: "one destination twice", root: okRoot, mounts: []driver.Mount{{Source: src, Destination: "/mnt"}, {Source: src, Destination: "/mnt/"}}, invalid: true},
		{name: "unknown block device", root: okRoot, limits: driver.Limits{BlockIO: []driver.BlockIOLimit{{Major: 4095, Minor: 1048575, IOLimits: driver.IOLimits{ReadBps: 1}}}}, invalid: true},
		{name: "negative I/O limit", root: okRoot, limits: driver.Limits{BlockIO: []driver.BlockIOLimit{{Major: 1, Minor: 3, IOLimits: driver.IOLimits{ReadBps: -1}}}}, invalid: true},
		{name: "disk priority 11", root: okRoot, limits: driver.Limits{DiskPriority: 11}, invalid: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := driver.Spec{ID: randomID(t), Args: []string{"sleep", "1000"}, Root: tc.root, Mounts: tc.mounts, Limits: tc.limits}
			_, err := e.d.Start(bg, s)
			if err == nil || tc.invalid && !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Start = %v, want an error (invalid argument: %v)", err, tc.invalid)
			}
			t.Logf("error: %v", err)
			e.assertGone(s.ID)
			if _, err := os.Stat(e.d.instanceDir(s.ID)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("instance dir left: %v", err)
			}
			if len(tc.mounts) == 0 && tc.limits.Equal(driver.Limits{}) {
				if f, err := e.d.OpenRoot(bg, s); err == nil {
					f.Close()
					t.Errorf("OpenRoot of a bad root succeeded")
				}
			}
		})
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing source was made: %v", err)
	}
}

// TestExtraMounts: binds at their destinations, read-write and read-only
// (EROFS inside), a file on a file, a nested one after its parent whatever
// the order given; a start-time mount detaches like a hot one.
func TestExtraMounts(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, userns := range []bool{false, true} {
		t.Run(fmt.Sprintf("userns=%v", userns), func(t *testing.T) {
			owner := 0
			if userns {
				owner = testHostID
			}
			rw, ro, nested, files := e.poolDir("rw"), e.poolDir("ro"), e.poolDir("nested"), e.poolDir("files")
			for _, p := range []string{rw, nested} {
				if err := os.Chown(p, owner, owner); err != nil {
					t.Fatal(err)
				}
			}
			hostFile(t, filepath.Join(ro, "hello"), "read only\n", 0, 0)
			hostFile(t, filepath.Join(nested, "n"), "nested\n", owner, owner)
			conf := filepath.Join(files, "extra.conf")
			hostFile(t, conf, "a file\n", 0, 0)

			s, _ := e.storageSpec("overlay", userns, "sleep", "1000")
			s.Mounts = []driver.Mount{
				{Type: "bind", Source: nested, Destination: "/mnt/rw/nested", Name: "nested"},
				{Type: "bind", Source: rw, Destination: "/mnt/rw", Name: "rw"},
				{Type: "bind", Source: ro, Destination: "/mnt/ro", ReadOnly: true, Name: "ro"},
				{Type: "bind", Source: conf, Destination: "/etc/extra.conf", ReadOnly: true, Name: "conf"},
			}
			e.start(s)
			got := inside(t, e, s.ID, "echo hi > /mnt/rw/f && cat /mnt/ro/hello /etc/extra.conf /mnt/rw/nested/n")
			if got != "read only\na file\nnested\n" {
				t.Errorf("inside: %q", got)
			}
			if b, err := os.ReadFile(filepath.Join(rw, "f")); err != nil || string(b) != "hi\n" {
				t.Errorf("write through the rw mount: %q %v", b, err)
			}
			for _, p := range []string{"/mnt/ro/f", "/etc/extra.conf"} {
				if msg := insideFails(t, e, s.ID, "echo x > "+p); !strings.Contains(msg, "Read-only file system") {
					t.Errorf("write to %s: %q, want EROFS", p, msg)
				}
			}
			if _, err := os.Stat(filepath.Join(ro, "f")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("written through a read-only mount: %v", err)
			}
			if _, err := os.Stat(filepath.Join(e.d.instanceDir(s.ID), mountsFile)); err != nil {
				t.Errorf("no mount records: %v", err)
			}

			// A start-time mount detaches like a hot one.
			if err := e.d.DetachMount(bg, s.ID, "/mnt/ro"); err != nil {
				t.Fatal(err)
			}
			if got := inside(t, e, s.ID, "ls -A /mnt/ro"); got != "" {
				t.Errorf("/mnt/ro after detach: %q", got)
			}
			if err := e.d.Stop(bg, s.ID, 0, 0, true); err != nil {
				t.Fatal(err)
			}
			e.assertGone(s.ID)
			if _, err := os.Stat(filepath.Join(e.d.instanceDir(s.ID), mountsFile)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("mount records outlive the run: %v", err)
			}
			// A PID 1 that is done at once still starts and exits.
			s.Args = []string{"cat", "/mnt/ro/hello", "/etc/extra.conf"}
			e.exits.mu.Lock()
			e.exits.exits = nil
			e.exits.mu.Unlock()
			pid := e.start(s)
			if x := e.exits.wait(t, s.ID, 5*time.Second); x.Pid != pid || x.Code != 0 {
				t.Errorf("short run: exit %+v", x)
			}
			if log, _ := e.d.ConsoleLog(bg, s.ID); string(log) != "read only\na file\n" {
				t.Errorf("short run: console %q", log)
			}
			if err := e.d.Delete(bg, s.ID); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{filepath.Join(rw, "f"), filepath.Join(ro, "hello"), conf, filepath.Join(nested, "n")} {
				if _, err := os.Stat(p); err != nil {
					t.Errorf("Delete reached into a mount's source: %v", err)
				}
			}
		})
	}
}

// TestShiftedMount: a host directory owned by host root, mounted with
// Shift into an unprivileged container, is owned by the container's root
// inside (an idmapped mount, made between runc create and start), and the
// container's writes are host root's on the host.
func TestShiftedMount(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	shared := e.poolDir("shared")
	hostFile(t, filepath.Join(shared, "file"), "shared\n", 0, 0)
	file := filepath.Join(e.poolDir("file"), "one")
	hostFile(t, file, "one file\n", 0, 0)

	s, _ := e.storageSpec("overlay", true, "sleep", "1000")
	s.Mounts = []driver.Mount{
		{Source: shared, Destination: "/shared", Shift: true},
		{Source: shared, Destination: "/shared-ro", Shift: true, ReadOnly: true},
		{Source: file, Destination: "/etc/one", Shift: true},
		{Source: shared, Destination: "/unshifted"},
	}
	e.start(s)
	got := inside(t, e, s.ID, "stat -c %u:%g /shared /shared/file /etc/one /unshifted/file; touch /shared/new")
	if want := "0:0\n0:0\n0:0\n65534:65534\n"; got != want {
		t.Errorf("owners inside = %q, want %q (shifted, shifted, shifted, unmapped)", got, want)
	}
	if got := ownerOf(t, filepath.Join(shared, "new")); got != "0:0" {
		t.Errorf("a file the container made is %s on the host, want 0:0", got)
	}
	if msg := insideFails(t, e, s.ID, "touch /shared-ro/x"); !strings.Contains(msg, "Read-only file system") {
		t.Errorf("write to the read-only shifted mount: %q", msg)
	}
	if got := inside(t, e, s.ID, "cat /proc/1/cmdline"); got != "sleep\x001000\x00" {
		t.Errorf("PID 1 = %q: runc start did not run the command", got)
	}
	if err := e.d.DetachMount(bg, s.ID, "/shared"); err != nil {
		t.Fatal(err)
	}
	if got := inside(t, e, s.ID, "ls -A /shared"); got != "" {
		t.Errorf("/shared after detach: %q", got)
	}
	if err := e.d.Stop(bg, s.ID, 0, 0, true); err != nil {
		t.Fatal(err)
	}
	e.assertGone(s.ID)

	// In a privileged container ids are the host's: Shift changes nothing.
	p, _ := e.storageSpec("bind", false, "sleep", "1000")
	p.Mounts = []driver.Mount{{Source: shared, Destination: "/shared", Shift: true}}
	e.start(p)
	if got := inside(t, e, p.ID, "stat -c %u:%g /shared/file"); got != "0:0\n" {
		t.Errorf("privileged: %q", got)
	}

	// A filesystem without idmapped mounts (procfs) is refused clearly,
	// and the created container is undone.
	bad, _ := e.storageSpec("overlay", true, "sleep", "1000")
	bad.Mounts = []driver.Mount{{Source: "/proc/sys/kernel", Destination: "/kernel", Shift: true}}
	if _, err := e.d.Start(bg, bad); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "idmapped") {
		t.Errorf("Start with a shift on procfs = %v, want invalid argument naming idmapped mounts", err)
	}
	e.assertGone(bad.ID)
}

// TestAttachDetach hot-plugs mounts into running containers.
func TestAttachDetach(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	for _, userns := range []bool{false, true} {
		t.Run(fmt.Sprintf("userns=%v", userns), func(t *testing.T) {
			dir := e.poolDir("hot")
			hostFile(t, filepath.Join(dir, "a"), "hot\n", 0, 0)
			conf := filepath.Join(e.poolDir("conf"), "hot.conf")
			hostFile(t, conf, "conf\n", 0, 0)
			s, _ := e.storageSpec("overlay", userns, "sleep", "1000")
			pid := e.start(s)
			proc := fmt.Sprintf("/proc/%d/root", pid)

			attach := func(m driver.Mount) {
				t.Helper()
				if err := e.d.AttachMount(bg, s.ID, m); err != nil {
					t.Fatalf("attach %s: %v", m.Destination, err)
				}
			}
			attach(driver.Mount{Source: dir, Destination: "/mnt/hot/deep", Name: "hot"})
			attach(driver.Mount{Source: conf, Destination: "/etc/hot.conf", ReadOnly: true, Name: "conf"})
			attach(driver.Mount{Source: dir, Destination: "/shifted", Shift: true, Name: "shifted"})
			got := inside(t, e, s.ID, "cat /mnt/hot/deep/a /etc/hot.conf; stat -c %u:%g /mnt/hot /mnt/hot/deep /etc/hot.conf /shifted/a")
			unmapped := "0:0"
			if userns {
				unmapped = "65534:65534"
			}
			// The made directory /mnt/hot is the container's root's; the
			// mounts show the host's owners, mapped or shifted.
			want := "hot\nconf\n0:0\n" + unmapped + "\n" + unmapped + "\n0:0\n"
			if got != want {
				t.Errorf("inside = %q, want %q", got, want)
			}
			if msg := insideFails(t, e, s.ID, "echo x > /etc/hot.conf"); !strings.Contains(msg, "Read-only file system") {
				t.Errorf("write to a read-only attached file: %q", msg)
			}

			// A destination under a symlink that points out of the root
			// stays inside it.
			if err := os.Symlink("../../../../../../../../..", filepath.Join(proc, "escape")); err != nil {
				t.Fatal(err)
			}
			name := "esc-" + randomID(t)
			attach(driver.Mount{Source: dir, Destination: "/escape/" + name})
			if got := inside(t, e, s.ID, "cat /"+name+"/a"); got != "hot\n" {
				t.Errorf("mounted through the symlink at /%s: %q", name, got)
			}
			if _, err := os.Lstat("/" + name); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("made on the host's root: %v", err)
			}
			outside := e.poolDir("outside")
			if err := os.Symlink(outside, filepath.Join(proc, "abs")); err != nil {
				t.Fatal(err)
			}
			if err := e.d.AttachMount(bg, s.ID, driver.Mount{Source: dir, Destination: "/abs/x"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("attach through a symlink to a host path = %v, want invalid argument", err)
			}
			if _, err := os.Lstat(filepath.Join(outside, "x")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("made on the host through a symlink: %v", err)
			}

			// Bad input, each leaving nothing.
			for _, tc := range []struct {
				m    driver.Mount
				want error
			}{
				{driver.Mount{Source: dir, Destination: "mnt/rel"}, errdefs.ErrInvalidArgument},
				{driver.Mount{Source: filepath.Join(dir, "missing"), Destination: "/mnt/bad"}, errdefs.ErrInvalidArgument},
				{driver.Mount{Source: dir, Destination: "/"}, errdefs.ErrInvalidArgument},
				{driver.Mount{Source: dir, Destination: "/proc/bad"}, errdefs.ErrInvalidArgument},
				{driver.Mount{Source: dir, Destination: "/etc/passwd"}, errdefs.ErrInvalidArgument},
				{driver.Mount{Source: conf, Destination: "/etc"}, errdefs.ErrInvalidArgument},
				{driver.Mount{Source: dir, Destination: "/mnt/hot/deep"}, errdefs.ErrConflict},
				{driver.Mount{Type: "tmpfs", Source: dir, Destination: "/mnt/bad"}, errdefs.ErrInvalidArgument},
			} {
				if err := e.d.AttachMount(bg, s.ID, tc.m); !errors.Is(err, tc.want) {
					t.Errorf("attach %+v = %v, want %v", tc.m, err, tc.want)
				}
			}
			if _, err := os.Lstat(filepath.Join(proc, "mnt/bad")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused attach made its destination: %v", err)
			}

			// Detach: gone at once; again, or never attached: nothing to do.
			for _, dest := range []string{"/mnt/hot/deep", "/etc/hot.conf", "/shifted"} {
				if err := e.d.DetachMount(bg, s.ID, dest); err != nil {
					t.Fatalf("detach %s: %v", dest, err)
				}
			}
			if got := inside(t, e, s.ID, "ls -A /mnt/hot/deep; ls -A /shifted; cat /etc/hot.conf"); got != "" {
				t.Errorf("after detach: %q", got)
			}
			for _, dest := range []string{"/mnt/hot/deep", "/never"} {
				if err := e.d.DetachMount(bg, s.ID, dest); err != nil {
					t.Errorf("detach %s again = %v", dest, err)
				}
			}
			if err := e.d.DetachMount(bg, s.ID, "rel"); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("detach of a relative path = %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "a")); err != nil {
				t.Errorf("the source after detach: %v", err)
			}
		})
	}
	stopped := randomID(t)
	if err := e.d.AttachMount(bg, stopped, driver.Mount{Source: e.rootfs, Destination: "/x"}); !errors.Is(err, driver.ErrNotRunning) {
		t.Errorf("attach to a stopped container = %v", err)
	}
	if err := e.d.DetachMount(bg, stopped, "/x"); !errors.Is(err, driver.ErrNotRunning) {
		t.Errorf("detach from a stopped container = %v", err)
	}
}

// TestAttachSurvivesRestart: a daemon restarted while a container runs
// detaches what the previous one attached (the records are on disk).
func TestAttachSurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	dir := e.poolDir("hot")
	hostFile(t, filepath.Join(dir, "a"), "hot\n", 0, 0)
	s, _ := e.storageSpec("bind", true, "sleep", "1000")
	s.Mounts = []driver.Mount{{Source: dir, Destination: "/started"}}
	e.start(s)
	if err := e.d.AttachMount(bg, s.ID, driver.Mount{Source: dir, Destination: "/hot"}); err != nil {
		t.Fatal(err)
	}
	e.d.Close()
	d2 := e.newDriver(0)
	e.d = d2
	if _, err := d2.Recover(bg); err != nil {
		t.Fatal(err)
	}
	for _, dest := range []string{"/hot", "/started"} {
		if err := d2.DetachMount(bg, s.ID, dest); err != nil {
			t.Fatal(err)
		}
	}
	if got := inside(t, e, s.ID, "ls -A /hot; ls -A /started"); got != "" {
		t.Errorf("after detach by the new daemon: %q", got)
	}
	if err := d2.Stop(bg, s.ID, 0, 0, true); err != nil {
		t.Fatal(err)
	}
	e.assertGone(s.ID)
}

// loopDevice attaches a loop device to a file of the test's, with one
// partition (an MBR), and returns the device numbers of the disk and of
// its partition; the partition's are -1 when the kernel reads no MBR
// (this CI kernel has no msdos partition support).
func loopDevice(t *testing.T) (disk, part [2]int64) {
	t.Helper()
	img := filepath.Join(t.TempDir(), "disk.img")
	mbr := make([]byte, 512)
	entry := mbr[446:462]
	entry[4] = 0x83                                           // Linux
	binary.LittleEndian.PutUint32(entry[8:], 2048)            // first sector
	binary.LittleEndian.PutUint32(entry[12:], 16*2048-2048-1) // sectors
	mbr[510], mbr[511] = 0x55, 0xaa
	if err := os.WriteFile(img, mbr, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", "--partscan", img).Output()
	if err != nil {
		t.Skipf("no loop device: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("detach %s: %v %s", dev, err, out)
		}
	})
	numbers := func(p string) [2]int64 {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var n [2]int64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &n[0], &n[1]); err != nil {
			t.Fatalf("%s: %q: %v", p, b, err)
		}
		return n
	}
	name := filepath.Base(dev)
	part = [2]int64{-1, -1}
	if _, err := os.Stat("/sys/block/" + name + "/" + name + "p1"); err == nil {
		part = numbers("/sys/block/" + name + "/" + name + "p1/dev")
	}
	return numbers("/sys/block/" + name + "/dev"), part
}

// TestBlockIOLimits: throttles land in the container's cgroup at start
// and change in place; a host without a weight file still starts.
func TestBlockIOLimits(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	disk, part := loopDevice(t)
	major, minor := disk[0], disk[1]
	dev := fmt.Sprintf("%d:%d", major, minor)
	s, _ := e.storageSpec("bind", true, "sleep", "1000")
	s.Limits = driver.Limits{DiskPriority: 5, BlockIO: []driver.BlockIOLimit{
		{Major: major, Minor: minor, IOLimits: driver.IOLimits{ReadBps: 1 << 20, WriteIops: 100}},
	}}
	e.start(s)
	dir := e.d.blkioDir(s.ID)

	// read returns the limits of dev: v1 one file per kind, v2 io.max.
	read := func() map[string]string {
		t.Helper()
		got := map[string]string{}
		if e.d.cg.v2 {
			b, err := os.ReadFile(filepath.Join(dir, "io.max"))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				if f := strings.Fields(line); len(f) > 0 && f[0] == dev {
					for _, kv := range f[1:] {
						if k, v, _ := strings.Cut(kv, "="); v != "max" {
							got[k] = v
						}
					}
				}
			}
			return got
		}
		for k, f := range map[string]string{"rbps": "read_bps", "wbps": "write_bps", "riops": "read_iops", "wiops": "write_iops"} {
			b, err := os.ReadFile(filepath.Join(dir, "blkio.throttle."+f+"_device"))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				if d, v, ok := strings.Cut(line, " "); ok && d == dev {
					got[k] = v
				}
			}
		}
		return got
	}
	check := func(when string, want map[string]string) {
		t.Helper()
		got := read()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: limits of %s = %v, want %v", when, dev, got, want)
		}
	}
	check("start", map[string]string{"rbps": strconv.Itoa(1 << 20), "wiops": "100"})
	for _, f := range e.d.weightFiles() {
		if b, err := os.ReadFile(filepath.Join(dir, f.name)); err == nil {
			if got := strings.TrimSpace(string(b)); !strings.Contains(got, "500") {
				t.Errorf("%s = %q, want 500 (priority 5)", f.name, got)
			}
			break
		}
	}

	l := driver.Limits{DiskPriority: -1, BlockIO: []driver.BlockIOLimit{
		{Major: major, Minor: minor, IOLimits: driver.IOLimits{WriteBps: 2 << 20}},
	}}
	if err := e.d.UpdateLimits(bg, s.ID, l); err != nil {
		t.Fatal(err)
	}
	check("update", map[string]string{"wbps": strconv.Itoa(2 << 20)})
	if err := e.d.UpdateLimits(bg, s.ID, driver.Limits{DiskPriority: -1}); err != nil {
		t.Fatal(err)
	}
	check("limits removed", map[string]string{})
	bad := [][2]int64{{4095, 1048575}}
	if part[0] >= 0 {
		bad = append(bad, part)
	} else {
		t.Log("the kernel shows no partition of the loop device: a partition's refusal is not tested")
	}
	for _, n := range bad {
		bad := driver.Limits{DiskPriority: -1, BlockIO: []driver.BlockIOLimit{{Major: n[0], Minor: n[1], IOLimits: driver.IOLimits{ReadBps: 1}}}}
		err := e.d.UpdateLimits(bg, s.ID, bad)
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("update with device %d:%d = %v, want invalid argument", n[0], n[1], err)
		}
		t.Logf("error: %v", err)
	}
	check("refused update", map[string]string{})
}

// TestMountsArePrivate: a source on a shared host mount (as "/" is on a
// systemd host) is mounted private, whether runc binds it at start or the
// driver attaches it: a mount the container makes under it stays inside.
func TestMountsArePrivate(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	src := e.poolDir("shared")
	for _, sub := range []string{"started", "hot"} {
		if err := os.Mkdir(filepath.Join(src, sub), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount(src, src, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unmountAll(src); err != nil {
			t.Error(err)
		}
	})
	if err := unix.Mount("", src, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	for _, userns := range []bool{false, true} {
		s, _ := e.storageSpec("overlay", userns, "sleep", "1000")
		s.Mounts = []driver.Mount{{Source: src, Destination: "/started"}}
		e.start(s)
		if err := e.d.AttachMount(bg, s.ID, driver.Mount{Source: src, Destination: "/hot"}); err != nil {
			t.Fatal(err)
		}
		inside(t, e, s.ID, "mount -t tmpfs none /started/started && mount -t tmpfs none /hot/hot && touch /hot/hot/in-tmpfs")
		if mps, err := mountPoints(src + "/"); err != nil || len(mps) != 0 {
			t.Errorf("userns=%v: mounts made inside the container show on the host: %v %v", userns, mps, err)
		}
		if _, err := os.Stat(filepath.Join(src, "hot/in-tmpfs")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("userns=%v: a file in the container's tmpfs is on the host: %v", userns, err)
		}
	}
}

// btrfsFS makes a btrfs filesystem on a loop device of the test's and
// mounts it; it is unmounted and detached when the test ends.
func btrfsFS(t *testing.T, e *testEnv) string {
	t.Helper()
	if _, err := exec.LookPath("mkfs.btrfs"); err != nil {
		t.Skip("needs mkfs.btrfs (btrfs-progs)")
	}
	img := filepath.Join(t.TempDir(), "btrfs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 128<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.btrfs", "-q", img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.btrfs: %v %s", err, out)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).Output()
	if err != nil {
		t.Skipf("no loop device: %v", err)
	}
	dev := strings.TrimSpace(string(out))
	mnt := e.poolDir("btrfs")
	if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
		exec.Command("losetup", "-d", dev).Run()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
		}
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("detach %s: %v %s", dev, err, out)
		}
	})
	return mnt
}

func subvolume(t *testing.T, p string) string {
	t.Helper()
	if out, err := exec.Command("btrfs", "subvolume", "create", p).CombinedOutput(); err != nil {
		t.Fatalf("btrfs subvolume create: %v %s", err, out)
	}
	return p
}

// TestBtrfs: a btrfs pool's shapes: the root a bind of a subvolume holding
// the id-shifted tree, a shared volume (owned by host root) id-shifted
// into an unprivileged container at start and by a hot attach; a delete
// leaves the subvolumes.
func TestBtrfs(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	fs := btrfsFS(t, e)
	root := subvolume(t, filepath.Join(fs, "instance"))
	copyTree(t, e.rootfs, root, testHostID)
	shared := subvolume(t, filepath.Join(fs, "shared"))
	hostFile(t, filepath.Join(shared, "file"), "on btrfs\n", 0, 0)

	s := driver.Spec{ID: randomID(t), Args: []string{"sleep", "1000"},
		Root:   driver.Root{Mounts: []driver.Mount{{Type: "bind", Source: root}}},
		IDMap:  &driver.IDMap{HostID: testHostID, Size: testIDSize},
		Mounts: []driver.Mount{{Source: shared, Destination: "/shared", Shift: true}},
	}
	e.start(s)
	if err := e.d.AttachMount(bg, s.ID, driver.Mount{Source: shared, Destination: "/hot", Shift: true, ReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	got := inside(t, e, s.ID, "stat -c %u:%g / /shared/file /hot/file; cat /hot/file; echo new > /shared/new")
	if want := "0:0\n0:0\n0:0\non btrfs\n"; got != want {
		t.Errorf("inside = %q, want %q", got, want)
	}
	if got := ownerOf(t, filepath.Join(shared, "new")); got != "0:0" {
		t.Errorf("written through the shifted mount: %s on the host, want 0:0", got)
	}
	if err := e.d.Stop(bg, s.ID, 0, 0, true); err != nil {
		t.Fatal(err)
	}
	e.assertGone(s.ID)
	if err := e.d.Delete(bg, s.ID); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(root, "bin/busybox"), filepath.Join(shared, "new")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("Delete reached into a subvolume: %v", err)
		}
	}
}

// BenchmarkStartMounts measures an unprivileged Start on a storage
// overlay root: alone, with one bind runc makes, and with one id-shifted
// mount (runc create, the driver's mount, runc start). The Stop is not
// timed.
func BenchmarkStartMounts(b *testing.B) {
	e := newTestEnv(b)
	src := e.poolDir("src")
	for _, tc := range []struct {
		name   string
		mounts []driver.Mount
	}{
		{"none", nil},
		{"bind", []driver.Mount{{Source: src, Destination: "/mnt"}}},
		{"shifted", []driver.Mount{{Source: src, Destination: "/mnt", Shift: true}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				s, _ := e.storageSpec("overlay", true, "sleep", "1000")
				s.Mounts = tc.mounts
				b.StartTimer()
				if _, err := e.d.Start(bg, s); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := e.d.Stop(bg, s.ID, 0, 0, true); err != nil {
					b.Fatal(err)
				}
				if err := e.d.Delete(bg, s.ID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkAttachDetach measures a hot attach and detach of a directory
// into a running unprivileged container, plain and id-shifted.
func BenchmarkAttachDetach(b *testing.B) {
	e := newTestEnv(b)
	src := e.poolDir("src")
	s, _ := e.storageSpec("overlay", true, "sleep", "1000")
	e.start(s)
	for _, shift := range []bool{false, true} {
		b.Run(fmt.Sprintf("shift=%v", shift), func(b *testing.B) {
			for b.Loop() {
				if err := e.d.AttachMount(bg, s.ID, driver.Mount{Source: src, Destination: "/mnt/hot", Shift: shift}); err != nil {
					b.Fatal(err)
				}
				if err := e.d.DetachMount(bg, s.ID, "/mnt/hot"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
