package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

const testMetadata = `architecture: amd64
creation_date: 1709296245
expiry_date: 1711888245
properties:
  os: Alpine
  release: "3.19"
  variant: default
  serial: 20240301_13:00
  description: Alpine 3.19 amd64 (20240301_13:00)
templates:
  /etc/hostname:
    when: [create, copy]
    template: hostname.tpl
`

// lxdRootfs is a root filesystem as an LXD image holds it, under rootfs/.
func lxdRootfs() []tarEntry {
	return []tarEntry{
		dirEntry("rootfs/", 0o755),
		dirEntry("rootfs/etc/", 0o755),
		reg("rootfs/etc/hostname", "lxd\n", 0o644),
		dirEntry("rootfs/bin/", 0o755),
		reg("rootfs/bin/busybox", "#!fake busybox\n", 0o755),
		hardlinkEntry("rootfs/bin/sh", "rootfs/bin/busybox"),
		symlinkEntry("rootfs/bin/ls", "/bin/busybox"),
	}
}

func templatesEntries() []tarEntry {
	return []tarEntry{dirEntry("templates/", 0o755), reg("templates/hostname.tpl", "{{ container.name }}\n", 0o644)}
}

// unifiedImage builds an LXD unified tarball with metadata.yaml first (as
// LXD writes it) or last.
func unifiedImage(t testing.TB, metadata string, metaFirst bool) []byte {
	t.Helper()
	meta := reg("metadata.yaml", metadata, 0o644)
	var entries []tarEntry
	if metaFirst {
		entries = append(entries, meta)
	}
	entries = append(entries, lxdRootfs()...)
	entries = append(entries, templatesEntries()...)
	if !metaFirst {
		entries = append(entries, meta)
	}
	return buildTar(t, entries...)
}

func TestParseLXDMetadata(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    lxdMetadata
		wantErr string
	}{
		{name: "full", yaml: testMetadata, want: lxdMetadata{
			Architecture: "x86_64",
			CreatedAt:    time.Unix(1709296245, 0).UTC(),
			ExpiresAt:    time.Unix(1711888245, 0).UTC(),
			Properties: map[string]string{"os": "Alpine", "release": "3.19", "variant": "default",
				"serial": "20240301_13:00", "description": "Alpine 3.19 amd64 (20240301_13:00)"},
		}},
		{name: "minimal, LXD name", yaml: "architecture: aarch64\ncreation_date: 1\n", want: lxdMetadata{
			Architecture: "aarch64", CreatedAt: time.Unix(1, 0).UTC(), Properties: map[string]string{},
		}},
		{name: "numbers as property text", yaml: "architecture: x86_64\ncreation_date: 5\nproperties: {serial: 20240301, release: 12}\n", want: lxdMetadata{
			Architecture: "x86_64", CreatedAt: time.Unix(5, 0).UTC(), Properties: map[string]string{"serial": "20240301", "release": "12"},
		}},
		{name: "unknown fields ignored", yaml: "architecture: x86_64\ncreation_date: 5\nfuture: {a: 1}\n", want: lxdMetadata{
			Architecture: "x86_64", CreatedAt: time.Unix(5, 0).UTC(), Properties: map[string]string{},
		}},
		{name: "empty", yaml: "", wantErr: "metadata.yaml is empty"},
		{name: "no architecture", yaml: "creation_date: 5\n", wantErr: "architecture is missing"},
		{name: "unknown architecture", yaml: "architecture: x86_65\ncreation_date: 5\n", wantErr: `unknown architecture "x86_65"`},
		{name: "architecture not a name", yaml: "architecture: [x86_64]\ncreation_date: 5\n", wantErr: "metadata.yaml: yaml: unmarshal errors"},
		{name: "no creation date", yaml: "architecture: x86_64\n", wantErr: "creation_date is missing"},
		{name: "creation date not a number", yaml: "architecture: x86_64\ncreation_date: yesterday\n", wantErr: "metadata.yaml: yaml"},
		{name: "negative expiry", yaml: "architecture: x86_64\ncreation_date: 5\nexpiry_date: -1\n", wantErr: "expiry_date -1"},
		{name: "not YAML", yaml: "architecture: [\n", wantErr: "metadata.yaml: yaml"},
		{name: "property without a name", yaml: "architecture: x86_64\ncreation_date: 5\nproperties: {'': x}\n", wantErr: "empty name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseLXDMetadata([]byte(tc.yaml))
			if tc.wantErr != "" {
				assertKind(t, err, errdefs.ErrInvalidArgument)
				if !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %q, want one line containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestDetectFormat feeds tarballs to the source Import uses, which tells a
// plain root filesystem from an LXD unified image as it unpacks.
func TestDetectFormat(t *testing.T) {
	meta := reg("metadata.yaml", testMetadata, 0o644)
	tests := []struct {
		name       string
		data       []byte
		wantFormat string
		wantErr    error  // a kind, or errUnifiedLate
		wantMsg    string // part of the error
		wantFile   string // a file the tree must hold
	}{
		{name: "plain rootfs", data: basicRootfs(t), wantFormat: formatRootfsTarball, wantFile: "etc/hostname"},
		{name: "plain rootfs with a rootfs directory", data: buildTar(t, reg("etc/hostname", "x", 0o644), reg("rootfs/a", "a", 0o644)),
			wantFormat: formatRootfsTarball, wantFile: "rootfs/a"},
		{name: "plain rootfs with a metadata.yaml file", data: buildTar(t, reg("etc/hostname", "x", 0o644), reg("metadata.yaml", "hello", 0o644)),
			wantFormat: formatRootfsTarball, wantFile: "metadata.yaml"},
		{name: "unified, metadata first", data: unifiedImage(t, testMetadata, true), wantFormat: formatLXDUnified, wantFile: "etc/hostname"},
		{name: "unified, dot-slash names", data: buildTar(t, dirEntry("./", 0o755), reg("./metadata.yaml", testMetadata, 0o644),
			dirEntry("./rootfs/", 0o755), reg("./rootfs/etc/hostname", "x", 0o644)), wantFormat: formatLXDUnified, wantFile: "etc/hostname"},
		{name: "unified, gzip", data: compress(t, "gzip", unifiedImage(t, testMetadata, true)), wantFormat: formatLXDUnified, wantFile: "bin/sh"},
		{name: "unified, metadata last", data: unifiedImage(t, testMetadata, false), wantErr: errUnifiedLate},
		{name: "rootfs/ without metadata.yaml", data: buildTar(t, append(lxdRootfs(), templatesEntries()...)...),
			wantErr: errdefs.ErrInvalidArgument, wantMsg: "no metadata.yaml"},
		{name: "metadata only", data: buildTar(t, append([]tarEntry{meta}, templatesEntries()...)...),
			wantErr: errdefs.ErrInvalidArgument, wantMsg: "no rootfs/"},
		{name: "bad metadata", data: unifiedImage(t, "architecture: sparc\ncreation_date: 5\n", true),
			wantErr: errdefs.ErrInvalidArgument, wantMsg: `unknown architecture "sparc"`},
		{name: "metadata twice", data: buildTar(t, append([]tarEntry{meta, meta}, lxdRootfs()...)...),
			wantErr: errdefs.ErrInvalidArgument, wantMsg: "twice"},
		{name: "virtual machine", data: buildTar(t, meta, reg("rootfs.img", "disk", 0o644)),
			wantErr: errdefs.ErrInvalidArgument, wantMsg: "virtual-machine"},
		{name: "hardlink out of rootfs", data: buildTar(t, meta, reg("rootfs/a", "a", 0o644), hardlinkEntry("rootfs/b", "metadata.yaml")),
			wantErr: errdefs.ErrInvalidArgument, wantMsg: "outside rootfs/"},
		{name: "path escape in rootfs", data: buildTar(t, meta, reg("rootfs/a", "a", 0o644), reg("rootfs/../../x", "x", 0o644)),
			wantErr: errdefs.ErrInvalidArgument, wantMsg: "escapes"},
		{name: "rootfs not a directory", data: buildTar(t, meta, reg("rootfs", "a", 0o644)),
			wantErr: errdefs.ErrInvalidArgument, wantMsg: "root directory"},
		{name: "empty", data: buildTar(t), wantErr: errdefs.ErrInvalidArgument, wantMsg: "no files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			src := &imageTarball{}
			err := src.extract(context.Background(), bytes.NewReader(tc.data), root, unpackOptions{})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("error %v, want %v containing %q", err, tc.wantErr, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src.format != tc.wantFormat {
				t.Errorf("format %q, want %q", src.format, tc.wantFormat)
			}
			if _, err := os.Lstat(filepath.Join(root, tc.wantFile)); err != nil {
				t.Errorf("tree lacks %s: %v", tc.wantFile, err)
			}
			if src.format == formatLXDUnified {
				for _, p := range []string{"metadata.yaml", "templates", "rootfs"} {
					if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
						t.Errorf("tree holds %s", p)
					}
				}
				if src.meta.Architecture != "x86_64" || src.meta.Properties["os"] != "Alpine" {
					t.Errorf("metadata %+v", src.meta)
				}
			}
		})
	}
}

func TestImportLXDUnified(t *testing.T) {
	for _, metaFirst := range []bool{true, false} {
		name := map[bool]string{true: "metadata first", false: "metadata last"}[metaFirst]
		t.Run(name, func(t *testing.T) {
			s, db, _, dir := newTestService(t)
			ctx := context.Background()
			data := compress(t, "xz", unifiedImage(t, testMetadata, metaFirst))
			img, err := s.Import(ctx, bytes.NewReader(data), ImportMeta{
				Alias: "alpine", Filename: "alpine.tar.xz",
				// The client's properties win over metadata.yaml's; its
				// architecture is only a property.
				Properties: map[string]string{"description": "mine"}, Architecture: "arm64",
			})
			if err != nil {
				t.Fatal(err)
			}
			fp := sha(data)
			if img.Fingerprint != fp || img.Architecture != "x86_64" || img.Size != int64(len(data)) {
				t.Errorf("image %s %s %d", img.Fingerprint, img.Architecture, img.Size)
			}
			if !img.CreatedAt.Equal(time.Unix(1709296245, 0)) || !img.ExpiresAt.Equal(time.Unix(1711888245, 0)) {
				t.Errorf("created %v expires %v", img.CreatedAt, img.ExpiresAt)
			}
			want := map[string]string{"os": "Alpine", "release": "3.19", "variant": "default",
				"serial": "20240301_13:00", "description": "mine", "architecture": "x86_64"}
			if diff := cmp.Diff(want, img.Properties); diff != "" {
				t.Errorf("properties (-want +got):\n%s", diff)
			}
			if rec := db.images[fp]; rec.Format != formatLXDUnified || rec.Cached {
				t.Errorf("record %+v", rec)
			}
			if diff := cmp.Diff([]string{"blobs/sha256/" + fp, "rootfs/" + fp}, storeEntries(t, dir)); diff != "" {
				t.Errorf("store (-want +got):\n%s", diff)
			}
			root, err := s.RootFS(ctx, fp)
			if err != nil {
				t.Fatal(err)
			}
			checkLXDTree(t, root, 0)

			// A shifted tree is unpacked from the stored unified tarball.
			shifted, err := unpackShifted(t, s, fp, &driver.IDMap{HostID: 1000000, Size: 65536})
			if err != nil {
				t.Fatal(err)
			}
			checkLXDTree(t, shifted, 1000000)
		})
	}
}

// checkLXDTree checks a tree unpacked from lxdRootfs, owned by uid.
func checkLXDTree(t *testing.T, root string, uid uint32) {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join(root, "etc/hostname")); err != nil || string(b) != "lxd\n" {
		t.Errorf("etc/hostname: %q, %v", b, err)
	}
	var a, b unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "bin/busybox"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(filepath.Join(root, "bin/sh"), &b); err != nil || a.Ino != b.Ino {
		t.Errorf("bin/sh is not a hardlink of bin/busybox: %v", err)
	}
	if target, _ := os.Readlink(filepath.Join(root, "bin/ls")); target != "/bin/busybox" {
		t.Errorf("bin/ls -> %q", target)
	}
	var st unix.Stat_t
	if err := unix.Lstat(root, &st); err != nil || st.Uid != uid || st.Mode&0o7777 != 0o755 {
		t.Errorf("root owned by %d mode %o, want %d 755 (%v)", st.Uid, st.Mode&0o7777, uid, err)
	}
	for _, p := range []string{"metadata.yaml", "templates", "rootfs"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("tree holds %s", p)
		}
	}
}

// splitImport imports meta and rootfs as a split image.
func splitImport(s *Service, meta, rootfs []byte, im ImportMeta) (string, error) {
	im.Rootfs = func() (io.Reader, error) { return bytes.NewReader(rootfs), nil }
	img, err := s.Import(context.Background(), bytes.NewReader(meta), im)
	return img.Fingerprint, err
}

func splitRootfsTar(t testing.TB) []byte {
	var entries []tarEntry
	for _, e := range lxdRootfs() {
		e.Name = strings.TrimPrefix(e.Name, "rootfs/")
		e.Linkname = strings.TrimPrefix(e.Linkname, "rootfs/")
		if e.Name == "" {
			e.Name = "./"
		}
		entries = append(entries, e)
	}
	return buildTar(t, entries...)
}

func TestImportLXDSplit(t *testing.T) {
	meta := compress(t, "xz", buildTar(t, append([]tarEntry{reg("metadata.yaml", testMetadata, 0o644)}, templatesEntries()...)...))
	rootfsTar := compress(t, "gzip", splitRootfsTar(t))
	rootfsKinds := map[string][]byte{"tarball": rootfsTar}
	if sq := squashfsOf(t); sq != nil {
		rootfsKinds["squashfs"] = sq
	}
	for kind, rootfs := range rootfsKinds {
		t.Run(kind, func(t *testing.T) {
			s, db, em, dir := newTestService(t)
			ctx := context.Background()
			fp, err := splitImport(s, meta, rootfs, ImportMeta{Alias: "split"})
			if err != nil {
				t.Fatal(err)
			}
			if want := sha(append(bytes.Clone(meta), rootfs...)); fp != want {
				t.Fatalf("fingerprint %s, want sha256(metadata || rootfs) %s", fp, want)
			}
			rec := db.images[fp]
			if rec.Format != formatLXDSplit || rec.Architecture != "x86_64" || rec.Size != int64(len(meta)+len(rootfs)) || rec.Properties["os"] != "Alpine" {
				t.Errorf("record %+v", rec)
			}
			if diff := cmp.Diff([]string{"blobs/sha256/" + fp, "blobs/sha256/" + fp + ".rootfs", "rootfs/" + fp}, storeEntries(t, dir)); diff != "" {
				t.Errorf("store (-want +got):\n%s", diff)
			}
			root, _ := s.RootFS(ctx, fp)
			checkLXDTree(t, root, 0)
			shifted, err := unpackShifted(t, s, fp, &driver.IDMap{HostID: 1000000, Size: 65536})
			if err != nil {
				t.Fatal(err)
			}
			checkLXDTree(t, shifted, 1000000)

			// Export gives both files back, named as LXD names them.
			em.take()
			e, err := s.Export(ctx, fp[:12])
			if err != nil {
				t.Fatal(err)
			}
			gotMeta, _ := io.ReadAll(e.Meta)
			gotRootfs, _ := io.ReadAll(e.Rootfs)
			e.Close()
			wantExt := map[string]string{"tarball": ".tar.gz", "squashfs": ".squashfs"}[kind]
			if e.MetaName != "meta-"+fp+".tar.xz" || e.RootfsName != fp+wantExt || !bytes.Equal(gotMeta, meta) || !bytes.Equal(gotRootfs, rootfs) {
				t.Errorf("export %q %q, contents equal: %v %v", e.MetaName, e.RootfsName, bytes.Equal(gotMeta, meta), bytes.Equal(gotRootfs, rootfs))
			}
			if ev := em.take(); len(ev) != 1 || ev[0].Action != EventImageRetrieved {
				t.Errorf("events %+v", ev)
			}

			if err := s.Delete(ctx, fp, nil); err != nil {
				t.Fatal(err)
			}
			if got := storeEntries(t, dir); len(got) != 0 {
				t.Errorf("left after delete: %v", got)
			}
		})
	}
}

// squashfsOf returns the split rootfs as a squashfs image, or nil (and
// logs why) without mksquashfs and unsquashfs.
func squashfsOf(t *testing.T) []byte {
	t.Helper()
	for _, tool := range []string{"mksquashfs", "unsquashfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Logf("squashfs rootfs not tested: %s not installed (apt-get install squashfs-tools)", tool)
			return nil
		}
	}
	src := filepath.Join(t.TempDir(), "tree")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := unpack(context.Background(), bytes.NewReader(splitRootfsTar(t)), src, unpackOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rootfs.squashfs")
	if b, err := exec.Command("mksquashfs", src, out, "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestImportLXDInvalid(t *testing.T) {
	metaTar := buildTar(t, reg("metadata.yaml", testMetadata, 0o644))
	rootfsTar := splitRootfsTar(t)
	unified := compress(t, "gzip", unifiedImage(t, testMetadata, true))
	corrupt := bytes.Clone(unified)
	for i := 40; i < len(corrupt)-10; i++ {
		corrupt[i] = byte(i * 13)
	}
	tests := []struct {
		name   string
		data   []byte
		rootfs []byte // set: a split upload
		fp     string // the fingerprint the client expects
		want   string
	}{
		{name: "corrupt unified", data: corrupt, want: "corrupt"},
		{name: "unified without metadata.yaml", data: buildTar(t, append(lxdRootfs(), templatesEntries()...)...), want: "no metadata.yaml"},
		{name: "unified with a foreign architecture name", data: unifiedImage(t, "architecture: x86_65\ncreation_date: 5\n", true), want: "x86_65"},
		{name: "unified, late bad metadata", data: unifiedImage(t, "architecture: ''\ncreation_date: 5\n", false), want: "architecture is missing"},
		{name: "unified with a path escape", data: buildTar(t, append(append([]tarEntry{reg("metadata.yaml", testMetadata, 0o644)}, lxdRootfs()...),
			reg("rootfs/../../../etc/evil", "x", 0o644))...), want: "escapes"},
		{name: "unified, wrong fingerprint", data: unified, fp: strings.Repeat("a", 64), want: "fingerprint mismatch"},
		{name: "split without metadata.yaml", data: buildTar(t, templatesEntries()...), rootfs: rootfsTar, want: "no metadata.yaml"},
		{name: "split, metadata corrupt", data: corrupt[:100], rootfs: rootfsTar, want: "metadata tarball"},
		{name: "split, bad metadata", data: buildTar(t, reg("metadata.yaml", "architecture: x86_64\n", 0o644)), rootfs: rootfsTar, want: "creation_date"},
		{name: "split, rootfs corrupt", data: metaTar, rootfs: corrupt, want: "rootfs: corrupt"},
		{name: "split, rootfs empty", data: metaTar, rootfs: []byte{}, want: "no files"},
		{name: "split, rootfs escapes", data: metaTar, rootfs: buildTar(t, reg("a", "a", 0o644), reg("../x", "x", 0o644)), want: "escapes"},
		{name: "split, squashfs magic but garbage", data: metaTar, rootfs: []byte("hsqs and then nothing of use"), want: "squashfs"},
		{name: "split, wrong fingerprint", data: metaTar, rootfs: rootfsTar, fp: strings.Repeat("b", 64), want: "fingerprint mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, db, em, dir := newTestService(t)
			im := ImportMeta{Alias: "x", Fingerprint: tc.fp}
			var err error
			if tc.rootfs != nil {
				_, err = splitImport(s, tc.data, tc.rootfs, im)
			} else {
				_, err = s.Import(context.Background(), bytes.NewReader(tc.data), im)
			}
			assertKind(t, err, errdefs.ErrInvalidArgument)
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
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

func TestExportNames(t *testing.T) {
	for _, tc := range []struct {
		kind, ext string
	}{{"none", ".tar"}, {"gzip", ".tar.gz"}, {"xz", ".tar.xz"}, {"zstd", ".tar.zst"}} {
		t.Run(tc.kind, func(t *testing.T) {
			s, _, _, _ := newTestService(t)
			data := compress(t, tc.kind, basicRootfs(t))
			img, err := s.Import(context.Background(), bytes.NewReader(data), ImportMeta{})
			if err != nil {
				t.Fatal(err)
			}
			e, err := s.Export(context.Background(), img.Fingerprint)
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			got, _ := io.ReadAll(e.Meta)
			if e.MetaName != img.Fingerprint+tc.ext || e.Rootfs != nil || e.MetaSize != int64(len(data)) || !bytes.Equal(got, data) {
				t.Errorf("export %q size %d rootfs %v", e.MetaName, e.MetaSize, e.Rootfs)
			}
		})
	}
	s, _, _, _ := newTestService(t)
	_, err := s.Export(context.Background(), "abcdef")
	assertKind(t, err, errdefs.ErrNotFound)
}

func TestPruneCached(t *testing.T) {
	s, db, _, dir := newTestService(t)
	ctx := context.Background()
	now := time.Date(2026, 1, 20, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	type image struct {
		cached             bool
		uploaded, lastUsed time.Duration // before now; lastUsed 0: never used
		users              []string
		deleted            bool
	}
	images := map[string]image{
		"old-unused":       {cached: true, uploaded: 30 * day, lastUsed: 11 * day, deleted: true},
		"old-never-used":   {cached: true, uploaded: 12 * day, deleted: true},
		"old-in-use":       {cached: true, uploaded: 30 * day, lastUsed: 20 * day, users: []string{"c1"}},
		"recently-used":    {cached: true, uploaded: 30 * day, lastUsed: 9 * day},
		"recently-fetched": {cached: true, uploaded: 2 * day},
		"not-cached":       {uploaded: 300 * day, lastUsed: 300 * day},
	}
	fps := map[string]string{}
	users := map[string][]string{}
	for name, im := range images {
		s.now = func() time.Time { return now.Add(-im.uploaded) }
		img, err := s.Import(ctx, bytes.NewReader(buildTar(t, reg(name, name, 0o644))), ImportMeta{Alias: name})
		if err != nil {
			t.Fatal(err)
		}
		fps[name] = img.Fingerprint
		users[img.Fingerprint] = im.users
		rec := db.images[img.Fingerprint]
		rec.Cached = im.cached
		if im.lastUsed > 0 {
			rec.LastUsedAt = now.Add(-im.lastUsed)
		}
		db.images[img.Fingerprint] = rec
	}
	s.now = func() time.Time { return now }
	inUse := func(fp string) []string { return users[fp] }

	if got, err := s.PruneCached(ctx, 0, inUse); err != nil || len(got) != 0 {
		t.Fatalf("expiry 0 pruned %v, %v", got, err)
	}
	deleted, err := s.PruneCached(ctx, 10*day, inUse)
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for name, im := range images {
		if im.deleted {
			want = append(want, fps[name])
		}
		_, kept := db.images[fps[name]]
		if kept == im.deleted {
			t.Errorf("%s: kept %v", name, kept)
		}
		_, err := os.Stat(filepath.Join(dir, "blobs/sha256", fps[name]))
		if (err == nil) == im.deleted {
			t.Errorf("%s: blob present %v", name, err == nil)
		}
	}
	got = append(got, deleted...)
	slices.Sort(want)
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	if _, err := db.GetAlias(ctx, "default", "old-unused"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("alias of a pruned image: %v", err)
	}
}
