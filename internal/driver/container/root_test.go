//lint:file-ignore SA1019 tests of the legacy root (Spec.RootFS), kept until the core fills Root (issue 12)

package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// writeAt creates name under the root fd with content.
func writeAt(t *testing.T, root *os.File, name, content string) {
	t.Helper()
	fd, err := unix.Openat(int(root.Fd()), name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatalf("create %s through the root: %v", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

func readAt(root *os.File, name string) (string, error) {
	fd, err := unix.Openat(int(root.Fd()), name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	b := make([]byte, 256)
	n, err := f.Read(b)
	return string(b[:n]), err
}

func TestOpenRootStoppedThenRunning(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	s := e.spec(true, "/bin/sleep", "1000")

	// Never started: the layer is made, mounted for us alone, and kept.
	root, err := e.d.OpenRoot(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := readAt(root, "etc/passwd"); err != nil || got != "root:x:0:0:root:/root:/bin/sh\n" {
		t.Fatalf("image through the root: %q %v", got, err)
	}
	writeAt(t, root, "root/before", "pushed while stopped")
	if mps, _ := mountPoints(e.d.instanceDir(s.ID)); len(mps) != 0 {
		t.Fatalf("a private root shows in the mount table: %v", mps)
	}
	root.Close()
	upper := filepath.Join(e.d.instanceDir(s.ID), "upper")
	if b, err := os.ReadFile(filepath.Join(upper, "root/before")); err != nil || string(b) != "pushed while stopped" {
		t.Fatalf("written to the layer: %q %v", b, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(upper, &st); err != nil || st.Uid != testHostID {
		t.Fatalf("upper owned by %d (%v), want the container's root %d", st.Uid, err, testHostID)
	}
	if _, err := os.Stat(filepath.Join(e.shifted, "root/before")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("written to the image: %v", err)
	}

	// Running: the live root, seen by the container at once.
	pid := e.start(s)
	root, err = e.d.OpenRoot(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, root, "root/live", "pushed while running")
	inside := filepath.Join("/proc", strconv.Itoa(pid), "root", "root")
	if b, err := os.ReadFile(filepath.Join(inside, "live")); err != nil || string(b) != "pushed while running" {
		t.Fatalf("seen in the container: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(inside, "before")); err != nil || string(b) != "pushed while stopped" {
		t.Fatalf("earlier push seen in the container: %q %v", b, err)
	}
	// The root is the one the container's processes have, with the mounts
	// of its mount namespace (here its /proc) under it.
	var rootSt, pidSt unix.Stat_t
	if err := unix.Fstat(int(root.Fd()), &rootSt); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Join("/proc", strconv.Itoa(pid), "root"), &pidSt); err != nil {
		t.Fatal(err)
	}
	if rootSt.Dev != pidSt.Dev || rootSt.Ino != pidSt.Ino {
		t.Errorf("running root is not PID 1's root")
	}
	root.Close()
	if err := e.d.Stop(ctx, s.ID, 0, 0, true); err != nil {
		t.Fatal(err)
	}
	e.assertGone(s.ID)
}

// A root opened while the container runs does not hold up its stop: the
// clone is detached from the live mount.
func TestOpenRootDoesNotBlockStop(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	s := e.spec(false, "/bin/sleep", "1000")
	e.start(s)
	root, err := e.d.OpenRoot(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := e.d.Stop(ctx, s.ID, 0, 0, true); err != nil {
		t.Fatal(err)
	}
	e.assertGone(s.ID)
}

func TestOpenRootWithoutImage(t *testing.T) {
	e := newTestEnv(t)
	s := e.spec(false)
	s.RootFS = ""
	root, err := e.d.OpenRoot(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, root, "hello", "layer only")
	root.Close()
	if b, err := os.ReadFile(filepath.Join(e.d.instanceDir(s.ID), "upper", "hello")); err != nil || string(b) != "layer only" {
		t.Fatalf("layer: %q %v", b, err)
	}
	if err := e.d.Delete(context.Background(), s.ID); err != nil {
		t.Fatal(err)
	}
}
