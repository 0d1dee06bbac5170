package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

func sha(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func TestImportFormats(t *testing.T) {
	tarball := basicRootfs(t)
	for _, kind := range []string{"none", "gzip", "xz", "zstd", "bzip2"} {
		t.Run(kind, func(t *testing.T) {
			s, db, em, dir := newTestService(t)
			data := compress(t, kind, tarball)
			img, err := s.Import(context.Background(), bytes.NewReader(data), ImportMeta{
				OS: "Debian", Release: "bookworm", Description: "Debian 12", Filename: "rootfs.tar",
				Properties: map[string]string{"variant": "default"},
			})
			if err != nil {
				t.Fatal(err)
			}
			fp := sha(data)
			if img.Fingerprint != fp || img.Size != int64(len(data)) {
				t.Fatalf("fingerprint %s size %d, want %s %d", img.Fingerprint, img.Size, fp, len(data))
			}
			wantArch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
			if wantArch != "" && img.Architecture != wantArch {
				t.Errorf("architecture %q, want %q", img.Architecture, wantArch)
			}
			want := map[string]string{"os": "Debian", "release": "bookworm", "description": "Debian 12", "architecture": img.Architecture, "variant": "default",
				"serial": img.CreatedAt.UTC().Format("20060102_15:04")}
			if diff := cmp.Diff(want, img.Properties); diff != "" {
				t.Errorf("properties (-want +got):\n%s", diff)
			}
			if img.Type != "container" || img.Filename != "rootfs.tar" || img.UploadedAt.IsZero() || img.Project != "default" {
				t.Errorf("image %+v", img)
			}
			if rec := db.images[fp]; rec.Source != "file" || rec.Size != int64(len(data)) {
				t.Errorf("record %+v", rec)
			}

			blob, err := os.ReadFile(filepath.Join(dir, "blobs/sha256", fp))
			if err != nil || !bytes.Equal(blob, data) {
				t.Errorf("blob differs from the upload: %v", err)
			}
			root, err := s.RootFS(context.Background(), fp)
			if err != nil || root != filepath.Join(dir, "rootfs", fp) {
				t.Fatalf("RootFS: %q, %v", root, err)
			}
			if b, err := os.ReadFile(filepath.Join(root, "etc/hostname")); err != nil || string(b) != "hangar\n" {
				t.Errorf("etc/hostname: %q, %v", b, err)
			}
			if target, _ := os.Readlink(filepath.Join(root, "bin/bash")); target != "sh" {
				t.Errorf("bin/bash -> %q", target)
			}
			if diff := cmp.Diff([]string{"blobs/sha256/" + fp, "rootfs/" + fp}, storeEntries(t, dir)); diff != "" {
				t.Errorf("store (-want +got):\n%s", diff)
			}
			wantEvents := []emitted{{"image-created", "/1.0/images/" + fp, map[string]any{"type": "container"}}}
			if diff := cmp.Diff(wantEvents, em.take()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			got, err := s.Get(context.Background(), fp[:8])
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(img, got); diff != "" {
				t.Errorf("Get differs from Import (-import +get):\n%s", diff)
			}
		})
	}
}

func TestImportAliasAndResolve(t *testing.T) {
	s, _, em, _ := newTestService(t)
	ctx := context.Background()
	img, err := s.Import(ctx, bytes.NewReader(basicRootfs(t)), ImportMeta{Alias: "debian/12"})
	assertKind(t, err, errdefs.ErrInvalidArgument) // '/' is not allowed in alias names.
	img, err = s.Import(ctx, bytes.NewReader(basicRootfs(t)), ImportMeta{Alias: "debian-12", Architecture: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	fp := img.Fingerprint
	if diff := cmp.Diff([]api.ImageAlias{{Name: "debian-12"}}, img.Aliases); diff != "" {
		t.Errorf("aliases (-want +got):\n%s", diff)
	}
	if img.Architecture != "x86_64" {
		t.Errorf("architecture %q, want amd64 normalised to x86_64", img.Architecture)
	}
	wantEvents := []emitted{
		{"image-created", "/1.0/images/" + fp, map[string]any{"type": "container"}},
		{"image-alias-created", "/1.0/images/aliases/debian-12", map[string]any{"target": fp}},
	}
	if diff := cmp.Diff(wantEvents, em.take()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	for _, tc := range []struct {
		in      string
		want    string
		wantErr error
	}{
		{"debian-12", fp, nil},
		{fp, fp, nil},
		{fp[:12], fp, nil},
		{strings.ToUpper(fp[:12]), fp, nil},
		{"nope", "", errdefs.ErrNotFound},
		{"", "", errdefs.ErrNotFound},
		{fp + "0", "", errdefs.ErrNotFound},
	} {
		got, err := s.Resolve(ctx, tc.in)
		if tc.wantErr != nil {
			assertKind(t, err, tc.wantErr)
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	_, err = s.Resolve(ctx, "nope")
	if err.Error() != `image "nope" not found` {
		t.Errorf("Resolve error %q", err)
	}
}

func TestImportDuplicate(t *testing.T) {
	s, db, em, dir := newTestService(t)
	ctx := context.Background()
	data := compress(t, "gzip", basicRootfs(t))
	img, err := s.Import(ctx, bytes.NewReader(data), ImportMeta{})
	if err != nil {
		t.Fatal(err)
	}
	em.take()
	for _, meta := range []ImportMeta{{}, {Alias: "new-alias"}} {
		_, err := s.Import(ctx, bytes.NewReader(data), meta)
		assertKind(t, err, errdefs.ErrConflict)
		if err.Error() != "image already exists" {
			t.Errorf("error %q", err)
		}
	}
	if diff := cmp.Diff([]string{"blobs/sha256/" + img.Fingerprint, "rootfs/" + img.Fingerprint}, storeEntries(t, dir)); diff != "" {
		t.Errorf("store (-want +got):\n%s", diff)
	}
	if n, a := db.counts(); n != 1 || a != 0 {
		t.Errorf("%d images, %d aliases", n, a)
	}
	if ev := em.take(); len(ev) != 0 {
		t.Errorf("events %+v", ev)
	}
	// The same tree compressed differently is another image.
	if _, err := s.Import(ctx, bytes.NewReader(compress(t, "zstd", basicRootfs(t))), ImportMeta{}); err != nil {
		t.Fatal(err)
	}
}

func TestImportInvalid(t *testing.T) {
	tarball := basicRootfs(t)
	gz := compress(t, "gzip", tarball)
	badCRC := bytes.Clone(gz)
	badCRC[len(badCRC)-6] ^= 0xff // The CRC-32 in the trailer.
	corruptBody := bytes.Clone(gz)
	for i := 20; i < len(corruptBody)-10; i++ {
		corruptBody[i] = byte(i * 7)
	}
	random := make([]byte, 4096)
	rand.NewChaCha8([32]byte{1}).Read(random)
	xzData := compress(t, "xz", tarball)
	big := buildTar(t, reg("f", strings.Repeat("content", 10000), 0o644))

	tests := []struct {
		name string
		data []byte
	}{
		{"empty upload", nil},
		{"corrupt gzip body", corruptBody},
		{"gzip with a bad checksum", badCRC},
		{"truncated gzip", gz[:len(gz)/2]},
		{"gzip header only", gz[:10]},
		{"random bytes", random},
		{"text", []byte("hello, I am not an image\n")},
		{"truncated tar", big[:len(big)/2]},
		{"truncated xz", xzData[:len(xzData)-20]},
		{"gzip of random bytes", compress(t, "gzip", random)},
		{"empty tar", buildTar(t)},
		{"path escape", buildTar(t, reg("etc/ok", "fine", 0o644), reg("../../etc/x", "evil", 0o644))},
		{"absolute hardlink outside", compress(t, "zstd", buildTar(t, reg("a", "a", 0o644), hardlinkEntry("pw", "/etc/passwd")))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, db, em, dir := newTestService(t)
			_, err := s.Import(context.Background(), bytes.NewReader(tc.data), ImportMeta{Alias: "a"})
			assertKind(t, err, errdefs.ErrInvalidArgument)
			t.Logf("Import: %v", err)
			if got := storeEntries(t, dir); len(got) != 0 {
				t.Errorf("left on disk: %v", got)
			}
			if n, a := db.counts(); n != 0 || a != 0 {
				t.Errorf("left in the DB: %d images, %d aliases", n, a)
			}
			if ev := em.take(); len(ev) != 0 {
				t.Errorf("events %+v", ev)
			}
		})
	}
}

func TestImportMetaValidation(t *testing.T) {
	s, db, _, dir := newTestService(t)
	ctx := context.Background()
	db.aliases[aliasKey("default", "taken")] = AliasRecord{Project: "default", Name: "taken", Target: strings.Repeat("0", 64)}
	for _, tc := range []struct {
		meta ImportMeta
		kind error
	}{
		{ImportMeta{Architecture: "z80"}, errdefs.ErrInvalidArgument},
		{ImportMeta{Alias: "has space"}, errdefs.ErrInvalidArgument},
		{ImportMeta{Alias: "tab\t"}, errdefs.ErrInvalidArgument},
		{ImportMeta{Alias: strings.Repeat("a", 256)}, errdefs.ErrInvalidArgument},
		{ImportMeta{Alias: ".."}, errdefs.ErrInvalidArgument},
		{ImportMeta{Alias: "taken"}, errdefs.ErrConflict},
	} {
		r := &countingReader{r: bytes.NewReader(basicRootfs(t))}
		_, err := s.Import(ctx, r, tc.meta)
		assertKind(t, err, tc.kind)
		if r.n != 0 {
			t.Errorf("%+v: read %d bytes of the upload before refusing", tc.meta, r.n)
		}
	}
	if got := storeEntries(t, dir); len(got) != 0 {
		t.Errorf("left on disk: %v", got)
	}
	// Valid names.
	for _, name := range []string{"a", "debian-12", "ubuntu:22.04", "é", strings.Repeat("a", 255)} {
		if err := validAliasName(name); err != nil {
			t.Errorf("validAliasName(%q): %v", name, err)
		}
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func TestNormalizeArchitecture(t *testing.T) {
	for in, want := range map[string]string{
		"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64",
		"armhf": "armv7l", "i386": "i686", "ppc64el": "ppc64le", "riscv64": "riscv64", "s390x": "s390x",
	} {
		if got, err := normalizeArchitecture(in); err != nil || got != want {
			t.Errorf("normalizeArchitecture(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := normalizeArchitecture("X86_64"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("case-changed name accepted: %v", err)
	}
	if got, err := normalizeArchitecture(""); err != nil || got == "" {
		t.Errorf("host architecture: %q, %v", got, err)
	}
}

// TestImportRollback: a failure after the files are in place leaves nothing.
func TestImportRollback(t *testing.T) {
	for _, method := range []string{"CreateImage", "CreateAlias"} {
		t.Run(method, func(t *testing.T) {
			s, db, em, dir := newTestService(t)
			boom := errors.New("database is gone")
			db.setFail(method, boom)
			_, err := s.Import(context.Background(), bytes.NewReader(basicRootfs(t)), ImportMeta{Alias: "a"})
			if !errors.Is(err, boom) {
				t.Fatalf("error %v", err)
			}
			if got := storeEntries(t, dir); len(got) != 0 {
				t.Errorf("left on disk: %v", got)
			}
			if n, a := db.counts(); n != 0 || a != 0 {
				t.Errorf("left in the DB: %d images, %d aliases", n, a)
			}
			if ev := em.take(); len(ev) != 0 {
				t.Errorf("events %+v", ev)
			}
		})
	}
}

// failingReader gives some bytes, then an error: a client that went away.
type failingReader struct {
	data []byte
	err  error
}

func (f *failingReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, f.err
	}
	n := copy(p, f.data)
	f.data = f.data[n:]
	return n, nil
}

func TestImportUploadErrors(t *testing.T) {
	s, _, _, dir := newTestService(t)
	big := compress(t, "gzip", buildTar(t, reg("f", strings.Repeat("data", 100000), 0o644)))

	// A read error is reported as such, not as a corrupt archive.
	reset := errors.New("connection reset")
	_, err := s.Import(context.Background(), &failingReader{data: big[:len(big)/2], err: reset}, ImportMeta{})
	if !errors.Is(err, reset) || errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("read error: %v", err)
	}
	// Cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = s.Import(ctx, bytes.NewReader(big), ImportMeta{})
	assertKind(t, err, errdefs.ErrCancelled)
	if got := storeEntries(t, dir); len(got) != 0 {
		t.Errorf("left on disk: %v", got)
	}
}

func TestUpdateListMarkUsed(t *testing.T) {
	s, db, em, _ := newTestService(t)
	ctx := context.Background()
	a, err := s.Import(ctx, bytes.NewReader(basicRootfs(t)), ImportMeta{OS: "A"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Import(ctx, bytes.NewReader(compress(t, "gzip", basicRootfs(t))), ImportMeta{OS: "B", Public: true})
	if err != nil {
		t.Fatal(err)
	}
	em.take()

	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	put := api.ImagePut{AutoUpdate: true, Public: true, ExpiresAt: expires, Properties: map[string]string{"os": "Changed"}}
	if err := s.Update(ctx, a.Fingerprint, put); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, a.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	if !got.AutoUpdate || !got.Public || !got.ExpiresAt.Equal(expires) || !cmp.Equal(got.Properties, put.Properties) {
		t.Errorf("after update: %+v", got.ImagePut)
	}
	if diff := cmp.Diff([]emitted{{"image-updated", "/1.0/images/" + a.Fingerprint, nil}}, em.take()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	assertKind(t, s.Update(ctx, "ffff", put), errdefs.ErrNotFound)

	now := time.Date(2025, 5, 5, 5, 5, 5, 0, time.UTC)
	s.now = func() time.Time { return now }
	if err := s.MarkUsed(ctx, b.Fingerprint[:10]); err != nil {
		t.Fatal(err)
	}
	if !db.images[b.Fingerprint].LastUsedAt.Equal(now) {
		t.Errorf("last used %v", db.images[b.Fingerprint].LastUsedAt)
	}

	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Fingerprint > list[1].Fingerprint {
		t.Fatalf("list %+v", list)
	}
	assertKind(t, s.MarkUsed(ctx, "not-hex"), errdefs.ErrNotFound)
	_, err = s.Get(ctx, "zz")
	assertKind(t, err, errdefs.ErrNotFound)
}

func TestAliases(t *testing.T) {
	s, _, em, _ := newTestService(t)
	ctx := context.Background()
	a, err := s.Import(ctx, bytes.NewReader(basicRootfs(t)), ImportMeta{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Import(ctx, bytes.NewReader(compress(t, "xz", basicRootfs(t))), ImportMeta{})
	if err != nil {
		t.Fatal(err)
	}
	em.take()

	post := api.ImageAliasesPost{ImageAliasesEntry: api.ImageAliasesEntry{
		Name: "stable", ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: a.Fingerprint[:6], Description: "the stable one"},
	}}
	if err := s.CreateAlias(ctx, post); err != nil {
		t.Fatal(err)
	}
	assertKind(t, s.CreateAlias(ctx, post), errdefs.ErrConflict)
	bad := post
	bad.Name = "x y"
	assertKind(t, s.CreateAlias(ctx, bad), errdefs.ErrInvalidArgument)
	bad = post
	bad.Name, bad.Target = "other", "ffffff"
	assertKind(t, s.CreateAlias(ctx, bad), errdefs.ErrNotFound)
	bad.Target = ""
	assertKind(t, s.CreateAlias(ctx, bad), errdefs.ErrInvalidArgument)

	got, err := s.GetAlias(ctx, "stable")
	if err != nil {
		t.Fatal(err)
	}
	want := api.ImageAliasesEntry{Name: "stable", Type: "container", ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: a.Fingerprint, Description: "the stable one"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alias (-want +got):\n%s", diff)
	}
	if err := s.UpdateAlias(ctx, "stable", api.ImageAliasesEntryPut{Target: b.Fingerprint, Description: "moved"}); err != nil {
		t.Fatal(err)
	}
	assertKind(t, s.UpdateAlias(ctx, "missing", api.ImageAliasesEntryPut{Target: b.Fingerprint}), errdefs.ErrNotFound)
	if fp, _ := s.Resolve(ctx, "stable"); fp != b.Fingerprint {
		t.Errorf("stable resolves to %s after update", fp)
	}
	if err := s.CreateAlias(ctx, api.ImageAliasesPost{ImageAliasesEntry: api.ImageAliasesEntry{Name: "other", ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: a.Fingerprint}}}); err != nil {
		t.Fatal(err)
	}
	assertKind(t, s.RenameAlias(ctx, "stable", "other"), errdefs.ErrConflict)
	assertKind(t, s.RenameAlias(ctx, "stable", "a/b"), errdefs.ErrInvalidArgument)
	assertKind(t, s.RenameAlias(ctx, "missing", "new"), errdefs.ErrNotFound)
	if err := s.RenameAlias(ctx, "stable", "current"); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListAliases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "current" || list[1].Name != "other" {
		t.Errorf("aliases %+v", list)
	}
	img, _ := s.Get(ctx, b.Fingerprint)
	if diff := cmp.Diff([]api.ImageAlias{{Name: "current", Description: "moved"}}, img.Aliases); diff != "" {
		t.Errorf("image aliases (-want +got):\n%s", diff)
	}
	if err := s.DeleteAlias(ctx, "current"); err != nil {
		t.Fatal(err)
	}
	assertKind(t, s.DeleteAlias(ctx, "current"), errdefs.ErrNotFound)
	_, err = s.GetAlias(ctx, "current")
	assertKind(t, err, errdefs.ErrNotFound)

	wantEvents := []emitted{
		{"image-alias-created", "/1.0/images/aliases/stable", map[string]any{"target": a.Fingerprint}},
		{"image-alias-updated", "/1.0/images/aliases/stable", map[string]any{"target": b.Fingerprint}},
		{"image-alias-created", "/1.0/images/aliases/other", map[string]any{"target": a.Fingerprint}},
		{"image-alias-renamed", "/1.0/images/aliases/current", map[string]any{"old_name": "stable"}},
		{"image-alias-deleted", "/1.0/images/aliases/current", nil},
	}
	if diff := cmp.Diff(wantEvents, em.take()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestDelete(t *testing.T) {
	s, db, em, dir := newTestService(t)
	ctx := context.Background()
	img, err := s.Import(ctx, bytes.NewReader(basicRootfs(t)), ImportMeta{Alias: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Import(ctx, bytes.NewReader(compress(t, "gzip", basicRootfs(t))), ImportMeta{Alias: "theirs"})
	if err != nil {
		t.Fatal(err)
	}
	fp := img.Fingerprint
	// Shifted trees that versions before storage pools cached beside the
	// image's own go with it.
	for _, old := range []string{fp + "@1000000-65536", fp + "@2000000-65536"} {
		if err := os.MkdirAll(filepath.Join(dir, "rootfs", old, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	em.take()

	err = s.Delete(ctx, fp, []string{"c1", "c2"})
	assertKind(t, err, errdefs.ErrConflict)
	if err.Error() != "image is used by instances: c1, c2" {
		t.Errorf("error %q", err)
	}
	if len(storeEntries(t, dir)) != 6 {
		t.Errorf("store after refused delete: %v", storeEntries(t, dir))
	}

	if err := s.Delete(ctx, fp[:10], nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"blobs/sha256/" + other.Fingerprint, "rootfs/" + other.Fingerprint}
	if diff := cmp.Diff(want, storeEntries(t, dir)); diff != "" {
		t.Errorf("store (-want +got):\n%s", diff)
	}
	if _, ok := db.images[fp]; ok {
		t.Error("record left")
	}
	if _, ok := db.aliases[aliasKey("default", "mine")]; ok {
		t.Error("alias left")
	}
	if _, ok := db.aliases[aliasKey("default", "theirs")]; !ok {
		t.Error("another image's alias deleted")
	}
	if diff := cmp.Diff([]emitted{{"image-deleted", "/1.0/images/" + fp, nil}}, em.take()); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	assertKind(t, s.Delete(ctx, fp, nil), errdefs.ErrNotFound)
	_, err = s.RootFS(ctx, fp)
	assertKind(t, err, errdefs.ErrNotFound)

	// The same bytes can be imported again.
	if _, err := s.Import(ctx, bytes.NewReader(basicRootfs(t)), ImportMeta{}); err != nil {
		t.Fatal(err)
	}
}

// TestUnpackTreeShifted: a pool's tree for an id map has every owner
// shifted (setuid bits kept, symlinks included), and a map that cannot
// hold the image's ids is refused.
func TestUnpackTreeShifted(t *testing.T) {
	s, _, _, dir := newTestService(t)
	ctx := context.Background()
	user := reg("home/user/.profile", "x", 0o644)
	user.Uid, user.Gid = 1000, 1000
	data := buildTar(t, dirEntry("./", 0o755), reg("usr/bin/passwd", "p", 0o4755), user, symlinkEntry("bin", "usr/bin"))
	img, err := s.Import(ctx, bytes.NewReader(compress(t, "zstd", data)), ImportMeta{})
	if err != nil {
		t.Fatal(err)
	}
	fp := img.Fingerprint
	before := storeEntries(t, dir)

	tree, err := unpackShifted(t, s, fp[:12], &driver.IDMap{HostID: 1000000, Size: 1000000000})
	if err != nil {
		t.Fatal(err)
	}
	for p, ids := range map[string][2]uint32{
		"":                   {1000000, 1000000},
		"usr":                {1000000, 1000000},
		"usr/bin/passwd":     {1000000, 1000000},
		"home/user/.profile": {1001000, 1001000},
		"bin":                {1000000, 1000000},
	} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(tree, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != ids[0] || st.Gid != ids[1] {
			t.Errorf("%q owned by %d:%d, want %d:%d", p, st.Uid, st.Gid, ids[0], ids[1])
		}
		if p == "usr/bin/passwd" && st.Mode&0o7777 != 0o4755 {
			t.Errorf("passwd mode %o", st.Mode&0o7777)
		}
	}
	// The store's unshifted tree is untouched, and nothing is cached.
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "rootfs", fp, "home/user/.profile"), &st); err != nil || st.Uid != 1000 {
		t.Errorf("unshifted tree owned by %d (%v)", st.Uid, err)
	}
	if diff := cmp.Diff(before, storeEntries(t, dir)); diff != "" {
		t.Errorf("store (-before +after):\n%s", diff)
	}

	for name, tc := range map[string]struct {
		fp   string
		m    *driver.IDMap
		kind error
	}{
		"ids beyond the map": {fp, &driver.IDMap{HostID: 500000, Size: 1000}, errdefs.ErrInvalidArgument},
		"empty map":          {fp, &driver.IDMap{HostID: 1, Size: 0}, errdefs.ErrInvalidArgument},
		"unknown image":      {strings.Repeat("0", 64), &driver.IDMap{HostID: 1000000, Size: 65536}, errdefs.ErrNotFound},
		"not a fingerprint":  {"../x", nil, errdefs.ErrNotFound},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := unpackShifted(t, s, tc.fp, tc.m)
			assertKind(t, err, tc.kind)
		})
	}
	if diff := cmp.Diff(before, storeEntries(t, dir)); diff != "" {
		t.Errorf("store after refusals (-before +after):\n%s", diff)
	}
}

// TestRootFSRebuild: a missing unshifted tree is unpacked again from the
// blob; concurrent callers share one rebuild, so none fails on the rename
// and nothing is left but the tree.
func TestRootFSRebuild(t *testing.T) {
	s, _, _, dir := newTestService(t)
	ctx := context.Background()
	img, err := s.Import(ctx, bytes.NewReader(compress(t, "zstd", basicRootfs(t))), ImportMeta{})
	if err != nil {
		t.Fatal(err)
	}
	fp := img.Fingerprint
	want := filepath.Join(dir, "rootfs", fp)
	before := storeEntries(t, dir)
	if err := os.RemoveAll(want); err != nil {
		t.Fatal(err)
	}

	const callers = 16
	var wg sync.WaitGroup
	paths := make([]string, callers)
	errs := make([]error, callers)
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			paths[i], errs[i] = s.RootFS(ctx, fp)
		})
	}
	close(start)
	wg.Wait()
	for i := range callers {
		if errs[i] != nil || paths[i] != want {
			t.Fatalf("caller %d: %q, %v", i, paths[i], errs[i])
		}
	}
	if b, err := os.ReadFile(filepath.Join(want, "etc/hostname")); err != nil || string(b) != "hangar\n" {
		t.Errorf("rebuilt etc/hostname: %q, %v", b, err)
	}
	if diff := cmp.Diff(before, storeEntries(t, dir)); diff != "" {
		t.Errorf("store (-before +after):\n%s", diff)
	}
}

// TestRootFSCancelledCaller: a caller that gives up on a rebuild gets
// either the tree or a cancellation, never a half tree; the next call
// works.
func TestRootFSCancelledCaller(t *testing.T) {
	s, _, _, dir := newTestService(t)
	img, err := s.Import(context.Background(), bytes.NewReader(basicRootfs(t)), ImportMeta{})
	if err != nil {
		t.Fatal(err)
	}
	before := storeEntries(t, dir)
	if err := os.RemoveAll(filepath.Join(dir, "rootfs", img.Fingerprint)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either it was quick enough or the rebuild stopped with its only
	// caller, cleaning up before RootFS returned.
	if _, err := s.RootFS(ctx, img.Fingerprint); err != nil {
		assertKind(t, err, errdefs.ErrCancelled)
		for _, e := range storeEntries(t, dir) {
			if strings.Contains(e, ".tmp-") {
				t.Errorf("left %s", e)
			}
		}
	}
	if _, err := s.RootFS(context.Background(), img.Fingerprint); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, storeEntries(t, dir)); diff != "" {
		t.Errorf("store (-before +after):\n%s", diff)
	}
}

func TestNewRemovesLeftovers(t *testing.T) {
	_, db, _, dir := newTestService(t)
	for _, p := range []string{"blobs/sha256/.tmp-upload-1", "rootfs/.tmp-import-1/etc", "rootfs/.trash-1/x"} {
		if err := os.MkdirAll(filepath.Join(dir, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := New(dir, db, nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := storeEntries(t, dir); len(got) != 0 {
		t.Errorf("left: %v", got)
	}
	for _, d := range []string{"blobs", "rootfs"} {
		fi, err := os.Stat(filepath.Join(dir, d))
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v", d, fi.Mode(), err)
		}
	}
}

// TestImportReplacesOrphans: files without a record (a crash between rename
// and record) do not block a new import of the same bytes.
func TestImportReplacesOrphans(t *testing.T) {
	s, db, _, dir := newTestService(t)
	ctx := context.Background()
	data := basicRootfs(t)
	img, err := s.Import(ctx, bytes.NewReader(data), ImportMeta{})
	if err != nil {
		t.Fatal(err)
	}
	delete(db.images, img.Fingerprint)
	// A shifted tree as versions before storage pools cached them.
	os.MkdirAll(filepath.Join(dir, "rootfs", img.Fingerprint+"@1-2"), 0o755)
	if _, err := s.Import(ctx, bytes.NewReader(data), ImportMeta{}); err != nil {
		t.Fatal(err)
	}
	if got := storeEntries(t, dir); len(got) != 2 {
		t.Errorf("store: %v", got)
	}
}
