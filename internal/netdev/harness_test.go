package netdev

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testEnv is one test's world: a network namespace playing the host (so
// nothing touches the machine's own network) and a directory for the
// namespaces of its "containers".
type testEnv struct {
	t    testing.TB
	dir  string
	path string // the host namespace's path
	host *Host
}

// newEnv makes a test's host namespace and removes it, and every
// namespace made with env.netns, at the end.
func newEnv(t testing.TB) *testEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes network namespaces, links and mounts")
	}
	dir := t.TempDir()
	// CreateNetNS makes dir a mount point; undone before TempDir's removal
	// (cleanups run last registered first).
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	e := &testEnv{t: t, dir: dir, path: filepath.Join(dir, "host")}
	if err := CreateNetNS(e.path); err != nil {
		t.Fatalf("create the test's host namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := DeleteNetNS(e.path); err != nil {
			t.Errorf("delete the test's host namespace: %v", err)
		}
	})
	h, err := OpenNetNS(e.path)
	if err != nil {
		t.Fatalf("open the test's host namespace: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	e.host = h
	return e
}

// netns makes a container's namespace called name, deleted at the end.
func (e *testEnv) netns(name string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := CreateNetNS(p); err != nil {
		e.t.Fatalf("create namespace %s: %v", name, err)
	}
	e.t.Cleanup(func() {
		if err := DeleteNetNS(p); err != nil {
			e.t.Errorf("delete namespace %s: %v", name, err)
		}
	})
	return p
}

// bridge makes the bridge hb0 with 10.99.0.1/24 and fd99::1/64.
func (e *testEnv) bridge() {
	e.t.Helper()
	err := e.host.EnsureBridge(Bridge{Name: "hb0", Hwaddr: "00:16:3e:00:00:01",
		Addresses: []netip.Prefix{pfx("10.99.0.1/24"), pfx("fd99::1/64")}})
	if err != nil {
		e.t.Fatalf("bridge: %v", err)
	}
}

// links returns the names of the links of the host namespace, sorted.
func (e *testEnv) links() []string {
	e.t.Helper()
	return linkNames(e.t, e.path)
}

func linkNames(t testing.TB, path string) []string {
	t.Helper()
	ifs, err := InterfacesInNetNS(path)
	if err != nil {
		t.Fatalf("interfaces of %s: %v", path, err)
	}
	var names []string
	for n := range ifs {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// inNS runs fn on a thread inside the namespace on path, thrown away after.
func inNS(t testing.TB, path string, fn func()) {
	t.Helper()
	if err := InNetNS(path, func() error { fn(); return nil }); err != nil {
		t.Fatal(err)
	}
}

// connect checks TCP from the namespace on from to a server listening on
// addr inside the namespace on to: the server sends a greeting that the
// client must read back.
func connect(t testing.TB, from, to, addr string) error {
	t.Helper()
	var ln net.Listener
	var err error
	inNS(t, to, func() { ln, err = net.Listen("tcp", addr) })
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = c.Write([]byte("hello from " + addr))
	}()
	var c net.Conn
	inNS(t, from, func() { c, err = net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second) })
	if err != nil {
		return err
	}
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(b) != "hello from "+addr {
		return errors.New("read " + string(b))
	}
	return nil
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }
