package image

import (
	"archive/tar"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// appImage is a three-layer image exercising what layers can do: a base,
// a layer with whiteouts, an opaque directory, hardlinks and symlinks, and
// one with ownership, xattrs and (as root) a device node.
func appImage(t testing.TB, arch string) (v1.Image, []v1.Layer) {
	t.Helper()
	base := layerOf(t,
		dirEntry("./", 0o755),
		dirEntry("etc/", 0o755),
		reg("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n", 0o644),
		reg("etc/group", "root:x:0:\nstaff:x:50:\napp:x:1000:\n", 0o644),
		dirEntry("bin/", 0o755),
		reg("bin/sh", "#!fake shell\n", 0o755),
		dirEntry("old/", 0o755),
		reg("old/gone", "lower\n", 0o644),
		reg("old/kept", "lower\n", 0o644),
		dirEntry("opq/", 0o755),
		reg("opq/lower", "lower\n", 0o644),
		dirEntry("opq/sub/", 0o755),
		reg("opq/sub/deep", "lower\n", 0o644),
	)
	mid := layerOf(t,
		reg("old/.wh.gone", "", 0o644),
		dirEntry("opq/", 0o700),
		reg("opq/.wh..wh..opq", "", 0o644),
		reg("opq/upper", "upper\n", 0o644),
		hardlinkEntry("bin/link", "bin/sh"),
		symlinkEntry("bin/sym", "/bin/sh"),
		reg(".wh.nothing-here", "", 0o644),
	)
	top := []tarEntry{
		{Header: tar.Header{Typeflag: tar.TypeReg, Name: "home/app/file", Mode: 0o600, Uid: 1000, Gid: 1000,
			PAXRecords: map[string]string{"SCHILY.xattr.user.note": "hi"}}, Body: "mine\n"},
	}
	if os.Geteuid() == 0 {
		top = append(top, tarEntry{Header: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}})
	}
	last := layerOf(t, top...)
	layers := []v1.Layer{base, mid, last}
	img := buildImage(t, arch, v1.Config{
		Entrypoint: []string{"/bin/sh", "-c"},
		Cmd:        []string{"echo hi"},
		Env:        []string{"PATH=/bin", "GREETING=hello"},
		WorkingDir: "/home/app",
		User:       "app:staff",
		StopSignal: "SIGINT",
		Labels:     map[string]string{"org.example": "yes"},
		ExposedPorts: map[string]struct{}{
			"8080/tcp": {},
		},
	}, layers...)
	return img, layers
}

func hostArch() string { return hostPlatform().Architecture }

func TestPullByTagAndDigest(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to unpack owned files")
	}
	ctx := context.Background()
	tr := startRegistry(t)
	img, _ := appImage(t, hostArch())
	digest := tr.push(t, "test/app:1", img)
	s, db, _, dir := newTestService(t)

	got, err := s.Pull(ctx, PullRequest{Server: "http://" + tr.host, Name: "test/app:1"}, StoreOptions{Alias: "app"})
	if err != nil {
		t.Fatal(err)
	}
	fp := digest.Hex
	if got.Image.Fingerprint != fp {
		t.Fatalf("fingerprint %s, want the manifest digest %s", got.Image.Fingerprint, fp)
	}
	if rec := db.images[fp]; rec.Format != formatOCI || rec.Source != sourceRegistry || rec.Properties["oci.reference"] != tr.host+"/test/app:1" {
		t.Errorf("record %+v", rec)
	}
	if len(got.Image.Aliases) != 1 || got.Image.Aliases[0].Name != "app" {
		t.Errorf("aliases %+v", got.Image.Aliases)
	}
	root, err := s.RootFS(ctx, fp)
	if err != nil {
		t.Fatal(err)
	}
	checkAppTree(t, root, 0)

	// By digest: the same image, nothing fetched again.
	before := len(storeEntries(t, dir))
	got2, err := s.Pull(ctx, PullRequest{Server: "http://" + tr.host, Name: "test/app@" + digest.String()}, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got2.Image.Fingerprint != fp || len(storeEntries(t, dir)) != before {
		t.Errorf("pull by digest: %s, store %v", got2.Image.Fingerprint, storeEntries(t, dir))
	}

	rc, err := s.RuntimeConfig(ctx, fp)
	if err != nil {
		t.Fatal(err)
	}
	want := &RuntimeConfig{
		Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}, Env: []string{"PATH=/bin", "GREETING=hello"},
		WorkingDir: "/home/app", User: "app:staff", UID: 1000, GID: 50, StopSignal: "SIGINT",
		ExposedPorts: []string{"8080/tcp"}, Labels: map[string]string{"org.example": "yes"},
	}
	if diff := cmp.Diff(want, rc); diff != "" {
		t.Errorf("runtime config (-want +got):\n%s", diff)
	}

	// A pool's tree for unprivileged instances is unpacked from the
	// stored blobs, shifted, with nothing fetched.
	before = len(storeEntries(t, dir))
	m := &driver.IDMap{HostID: 1000000, Size: 65536}
	shifted, err := unpackShifted(t, s, fp, m)
	if err != nil {
		t.Fatal(err)
	}
	checkAppTree(t, shifted, 1000000)
	if len(storeEntries(t, dir)) != before {
		t.Errorf("store after a shifted unpack: %v", storeEntries(t, dir))
	}
}

// checkAppTree checks appImage's layers applied, ids shifted by shift.
func checkAppTree(t *testing.T, root string, shift uint32) {
	t.Helper()
	for p, want := range map[string]string{"old/kept": "lower\n", "opq/upper": "upper\n", "bin/sh": "#!fake shell\n", "home/app/file": "mine\n"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v", p, b, err)
		}
	}
	for _, p := range []string{"old/gone", "opq/lower", "opq/sub", ".wh.nothing-here", "old/.wh.gone", "opq/.wh..wh..opq", "nothing-here"} {
		if _, err := os.Lstat(filepath.Join(root, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s should not exist: %v", p, err)
		}
	}
	var a, b unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "bin/sh"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(root, "bin/link"), &b); err != nil || a.Ino != b.Ino {
		t.Errorf("bin/link is not a hardlink of bin/sh: %v", err)
	}
	if target, _ := os.Readlink(filepath.Join(root, "bin/sym")); target != "/bin/sh" {
		t.Errorf("bin/sym -> %q", target)
	}
	if err := unix.Lstat(filepath.Join(root, "home/app/file"), &a); err != nil || a.Uid != 1000+shift || a.Gid != 1000+shift || a.Mode&0o777 != 0o600 {
		t.Errorf("home/app/file: uid %d gid %d mode %o, %v", a.Uid, a.Gid, a.Mode&0o777, err)
	}
	if err := unix.Lstat(filepath.Join(root, "opq"), &a); err != nil || a.Mode&0o777 != 0o700 {
		t.Errorf("opq mode %o, %v", a.Mode&0o777, err)
	}
	if v := make([]byte, 16); true {
		n, err := unix.Lgetxattr(filepath.Join(root, "home/app/file"), "user.note", v)
		if err != nil || string(v[:n]) != "hi" {
			t.Errorf("xattr user.note: %q, %v", v[:max(n, 0)], err)
		}
	}
	if err := unix.Lstat(filepath.Join(root, "dev/null"), &a); err != nil || a.Mode&unix.S_IFMT != unix.S_IFCHR || a.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null: mode %o rdev %d, %v", a.Mode, a.Rdev, err)
	}
}

func TestPullDedupAndDelete(t *testing.T) {
	ctx := context.Background()
	tr := startRegistry(t)
	base := layerOf(t, dirEntry("./", 0o755), reg("etc/os-release", "ID=test\n", 0o644))
	one := buildImage(t, hostArch(), v1.Config{Cmd: []string{"/one"}}, base, layerOf(t, reg("one", "1", 0o755)))
	two := buildImage(t, hostArch(), v1.Config{Cmd: []string{"/two"}}, base, layerOf(t, reg("two", "2", 0o755)))
	d1 := tr.push(t, "test/one:1", one)
	d2 := tr.push(t, "test/two:1", two)
	s, db, _, dir := newTestService(t)
	srv := "http://" + tr.host
	if _, err := s.Pull(ctx, PullRequest{Server: srv, Name: "test/one:1"}, StoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pull(ctx, PullRequest{Server: srv, Name: "test/two:1"}, StoreOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := tr.blobGets(layerDigest(t, base)); n != 1 {
		t.Errorf("shared base layer fetched %d times, want 1", n)
	}
	// Manifests, configs, 3 distinct layers; 2 trees.
	if got := len(storeEntries(t, dir)); got != 2+2+3+2 {
		t.Errorf("store: %v", storeEntries(t, dir))
	}
	if err := s.Delete(ctx, d1.Hex, nil); err != nil {
		t.Fatal(err)
	}
	baseHex := strings.TrimPrefix(layerDigest(t, base), "sha256:")
	if _, err := os.Stat(filepath.Join(dir, "blobs/sha256", baseHex)); err != nil {
		t.Errorf("shared base layer removed with the first image: %v", err)
	}
	if err := s.Delete(ctx, d2.Hex, nil); err != nil {
		t.Fatal(err)
	}
	if got := storeEntries(t, dir); len(got) != 0 || len(db.images) != 0 {
		t.Errorf("after deleting both: store %v, records %d", got, len(db.images))
	}
}

func TestPullIndex(t *testing.T) {
	ctx := context.Background()
	tr := startRegistry(t)
	mine := buildImage(t, hostArch(), v1.Config{Cmd: []string{"/mine"}}, layerOf(t, reg("mine", "x", 0o755)))
	other := buildImage(t, otherArch(), v1.Config{Cmd: []string{"/other"}}, layerOf(t, reg("other", "x", 0o755)))
	tr.pushIndex(t, "test/multi:1", map[string]v1.Image{hostArch(): mine, otherArch(): other})
	tr.pushIndex(t, "test/foreign:1", map[string]v1.Image{otherArch(): other, "s390x": other})
	s, db, _, dir := newTestService(t)
	srv := "http://" + tr.host

	got, err := s.Pull(ctx, PullRequest{Server: srv, Name: "test/multi:1"}, StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := mine.Digest()
	if got.Image.Fingerprint != want.Hex {
		t.Errorf("picked %s, want the host's manifest %s", got.Image.Fingerprint, want.Hex)
	}
	before := storeEntries(t, dir)
	_, err = s.Pull(ctx, PullRequest{Server: srv, Name: "test/foreign:1"}, StoreOptions{})
	assertKind(t, err, errdefs.ErrInvalidArgument)
	if !strings.Contains(err.Error(), "linux/"+otherArch()) || !strings.Contains(err.Error(), "linux/s390x") {
		t.Errorf("error does not name the available architectures: %v", err)
	}
	if diff := cmp.Diff(before, storeEntries(t, dir)); diff != "" || len(db.images) != 1 {
		t.Errorf("failed pull stored something (-before +after):\n%s", diff)
	}
}

func TestPullBadInput(t *testing.T) {
	ctx := context.Background()
	tr := startRegistry(t)
	tr.push(t, "test/foreign:1", buildImage(t, otherArch(), v1.Config{}, layerOf(t, reg("x", "x", 0o644))))
	escape := layerOf(t, reg("ok", "x", 0o644), reg("../escape", "x", 0o644))
	tr.push(t, "test/escape:1", buildImage(t, hostArch(), v1.Config{}, escape))
	// A port nothing listens on: a server started and closed.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadHost := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()
	srv := "http://" + tr.host

	for _, tc := range []struct {
		name string
		req  PullRequest
		kind error
		msg  string
	}{
		{"unknown tag", PullRequest{Server: srv, Name: "test/foreign:nope"}, errdefs.ErrNotFound, "not found"},
		{"unknown repository", PullRequest{Server: srv, Name: "test/none:1"}, errdefs.ErrNotFound, "not found"},
		{"wrong architecture", PullRequest{Server: srv, Name: "test/foreign:1"}, errdefs.ErrInvalidArgument, "available: linux/" + otherArch()},
		{"path escape", PullRequest{Server: srv, Name: "test/escape:1"}, errdefs.ErrInvalidArgument, "escapes the root"},
		{"unreachable", PullRequest{Server: "http://" + deadHost, Name: "test/app:1"}, errdefs.ErrInvalidArgument, "unreachable"},
		{"insecure not loopback", PullRequest{Server: "http://192.0.2.1:5000", Name: "test/app:1"}, errdefs.ErrInvalidArgument, "only for loopback"},
		{"plain HTTP without insecure", PullRequest{Server: tr.host, Name: "test/foreign:1"}, errdefs.ErrInvalidArgument, tr.host},
		{"bad reference", PullRequest{Server: srv, Name: "Test/UPPER:1"}, errdefs.ErrInvalidArgument, "invalid image reference"},
		{"bad server", PullRequest{Server: "ftp://x", Name: "a:1"}, errdefs.ErrInvalidArgument, "only http"},
		{"half credentials", PullRequest{Server: srv, Name: "test/foreign:1", Username: "u"}, errdefs.ErrInvalidArgument, "credentials"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db, _, dir := newTestService(t)
			_, err := s.Pull(ctx, tc.req, StoreOptions{})
			assertKind(t, err, tc.kind)
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if got := storeEntries(t, dir); len(got) != 0 || len(db.images) != 0 {
				t.Errorf("failed pull left %v", got)
			}
		})
	}
}

func TestPullDigestMismatch(t *testing.T) {
	ctx := context.Background()
	tr := startRegistry(t)
	good := layerOf(t, dirEntry("./", 0o755), reg("a", "good", 0o644))
	bad := layerOf(t, reg("b", "to be corrupted", 0o644))
	tr.push(t, "test/bad:1", buildImage(t, hostArch(), v1.Config{}, good, bad))
	badDigest := layerDigest(t, bad)
	tr.setBlobHook(func(w http.ResponseWriter, r *http.Request, digest string) bool {
		if digest != badDigest {
			return false
		}
		body := compress(t, "gzip", buildTar(t, reg("b", "evil!", 0o644)))
		w.Write(body)
		return true
	})
	s, db, _, dir := newTestService(t)
	_, err := s.Pull(ctx, PullRequest{Server: "http://" + tr.host, Name: "test/bad:1"}, StoreOptions{})
	assertKind(t, err, errdefs.ErrInvalidArgument)
	if !strings.Contains(err.Error(), "does not match its digest") {
		t.Errorf("error %v", err)
	}
	if got := storeEntries(t, dir); len(got) != 0 || len(db.images) != 0 {
		t.Errorf("failed pull left %v", got)
	}
}

func TestPullCancelLeavesNothing(t *testing.T) {
	tr := startRegistry(t)
	small := layerOf(t, dirEntry("./", 0o755), reg("a", "x", 0o644))
	big := layerOf(t, reg("big", strings.Repeat("z", 1<<20), 0o644))
	tr.push(t, "test/slow:1", buildImage(t, hostArch(), v1.Config{}, small, big))
	bigDigest := layerDigest(t, big)
	started := make(chan struct{})
	var once sync.Once
	tr.setBlobHook(func(w http.ResponseWriter, r *http.Request, digest string) bool {
		if digest != bigDigest {
			return false
		}
		w.Header().Set("Content-Length", "999999")
		w.Write([]byte{0x1f, 0x8b, 0x08})
		w.(http.Flusher).Flush()
		once.Do(func() { close(started) })
		<-r.Context().Done() // Stall until the client gives up.
		return true
	})
	s, db, _, dir := newTestService(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	_, err := s.Pull(ctx, PullRequest{Server: "http://" + tr.host, Name: "test/slow:1"}, StoreOptions{})
	assertKind(t, err, errdefs.ErrCancelled)
	if got := storeEntries(t, dir); len(got) != 0 || len(db.images) != 0 {
		t.Errorf("cancelled pull left %v", got)
	}
}

func TestPullConcurrentShareOneDownload(t *testing.T) {
	ctx := context.Background()
	tr := startRegistry(t)
	l := layerOf(t, dirEntry("./", 0o755), reg("a", strings.Repeat("y", 256<<10), 0o644))
	d := tr.push(t, "test/shared:1", buildImage(t, hostArch(), v1.Config{}, l))
	gate := make(chan struct{})
	tr.setBlobHook(func(w http.ResponseWriter, r *http.Request, digest string) bool {
		if digest == layerDigest(t, l) {
			<-gate
		}
		return false
	})
	s, _, _, _ := newTestService(t)
	const n = 4
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := s.Pull(ctx, PullRequest{Server: "http://" + tr.host, Name: "test/shared:1"}, StoreOptions{})
			errs <- err
		}()
	}
	time.Sleep(200 * time.Millisecond) // Let them all resolve and join.
	close(gate)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := tr.blobGets(layerDigest(t, l)); got != 1 {
		t.Errorf("layer fetched %d times by %d concurrent pulls, want 1", got, n)
	}
	if _, err := s.Get(ctx, d.Hex); err != nil {
		t.Fatal(err)
	}
}

// An image fetched to create an instance is a cached copy; pulling it on
// purpose makes it a kept one, which a cached pull does not undo.
func TestPullCached(t *testing.T) {
	ctx := context.Background()
	tr := startRegistry(t)
	img := buildImage(t, hostArch(), v1.Config{Cmd: []string{"/x"}}, layerOf(t, reg("x", "x", 0o755)))
	d := tr.push(t, "test/cached:1", img)
	s, _, _, _ := newTestService(t)
	req := PullRequest{Server: "http://" + tr.host, Name: "test/cached:1"}
	for _, step := range []struct {
		cached, want bool
	}{{true, true}, {true, true}, {false, false}, {true, false}} {
		if _, err := s.Pull(ctx, req, StoreOptions{Cached: step.cached}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, d.Hex)
		if err != nil {
			t.Fatal(err)
		}
		if got.Cached != step.want {
			t.Fatalf("after a pull with Cached=%v: cached %v, want %v", step.cached, got.Cached, step.want)
		}
	}
}
