package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/client"
)

// lxc runs the real lxc client against this daemon (lxc_test.go: lxcCmd),
// bounded by lxcTimeout.
func (d *daemon) lxc(args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	return d.lxcStdin(nil, args...)
}

func (d *daemon) mustLXC(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.lxc(args...)
	if code != 0 {
		d.t.Fatalf("lxc %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func requireLXC(t *testing.T) {
	t.Helper()
	requireE2E(t)
	if lookPath("lxc") == "" {
		t.Skip("the lxc client is not installed (apt-get install lxd-client)")
	}
}

const lxdTestMetadata = `architecture: %s
creation_date: 1709296245
properties:
  os: busybox
  release: "1.36"
  variant: test
  serial: "20240301"
  description: Busybox LXD test image
templates: {}
`

// lxdImageFiles are the test's LXD images, built from the harness's busybox
// root filesystem: a unified tarball and a split pair (plus a squashfs
// rootfs when mksquashfs is installed).
type lxdImageFiles struct {
	unified, meta, rootfs, squashfs string
}

func writeLXDImages(t *testing.T, dir string) lxdImageFiles {
	t.Helper()
	f := lxdImageFiles{
		unified: filepath.Join(dir, "busybox-lxd.tar.gz"),
		meta:    filepath.Join(dir, "meta.tar.gz"),
		rootfs:  imageTarball, // A split image's rootfs is a plain rootfs tarball.
	}
	metadata := fmt.Sprintf(lxdTestMetadata, runtime.GOARCH)
	writeTarGz(t, f.meta, func(tw *tar.Writer) {
		addFile(t, tw, "metadata.yaml", metadata)
	})
	writeTarGz(t, f.unified, func(tw *tar.Writer) {
		addFile(t, tw, "metadata.yaml", metadata) // First, as LXD writes it.
		copyUnder(t, tw, imageTarball, "rootfs/")
	})
	if lookPath("mksquashfs") != "" {
		tree := filepath.Join(dir, "tree")
		if err := os.MkdirAll(tree, 0o755); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("tar", "-xzf", imageTarball, "-C", tree).CombinedOutput(); err != nil {
			t.Fatalf("tar: %v: %s", err, out)
		}
		f.squashfs = filepath.Join(dir, "rootfs.squashfs")
		if out, err := exec.Command("mksquashfs", tree, f.squashfs, "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
			t.Fatalf("mksquashfs: %v: %s", err, out)
		}
	} else {
		t.Log("squashfs rootfs not tested: mksquashfs is not installed (apt-get install squashfs-tools)")
	}
	return f
}

func writeTarGz(t *testing.T, path string, fill func(*tar.Writer)) {
	t.Helper()
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	fill(tw)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
}

func addFile(t *testing.T, tw *tar.Writer, name, content string) {
	t.Helper()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(1709296245, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, content); err != nil {
		t.Fatal(err)
	}
}

// copyUnder copies the entries of a gzipped tarball under prefix.
func copyUnder(t *testing.T, tw *tar.Writer, tarball, prefix string) {
	t.Helper()
	in, err := os.Open(tarball)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	gz, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: prefix, Mode: 0o755, ModTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		hdr.Name = prefix + strings.TrimPrefix(hdr.Name, "./")
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = prefix + strings.TrimPrefix(hdr.Linkname, "./")
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
}

func sha256File(t *testing.T, paths ...string) string {
	t.Helper()
	h := sha256.New()
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(h, f); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	return hex.EncodeToString(h.Sum(nil))
}

var importedRE = regexp.MustCompile(`Image imported with fingerprint: ([0-9a-f]{64})`)

func (d *daemon) lxcImport(files ...string) string {
	d.t.Helper()
	out := d.mustLXC(append([]string{"image", "import"}, files...)...)
	m := importedRE.FindStringSubmatch(out)
	if m == nil {
		d.t.Fatalf("lxc image import %v: no fingerprint in %q", files, out)
	}
	return m[1]
}

// imageStoreEntries lists everything under the image store's blob and tree
// directories, work in progress included.
func (d *daemon) imageStoreEntries() []string {
	d.t.Helper()
	var out []string
	for _, sub := range []string{"images/blobs/sha256", "images/rootfs"} {
		entries, err := os.ReadDir(filepath.Join(d.dir, sub))
		if err != nil {
			d.t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, sub+"/"+e.Name())
		}
	}
	return out
}

// TestLXDImages round-trips LXD unified and split images through the real
// lxc client: import, list, info, launch, export, delete, import again.
func TestLXDImages(t *testing.T) {
	requireLXC(t)
	d := startDaemon(t, "")
	files := writeLXDImages(t, t.TempDir())
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]

	type img struct {
		alias string
		files []string
		fp    string
	}
	images := []*img{
		{alias: "uni", files: []string{files.unified}},
		{alias: "split", files: []string{files.meta, files.rootfs}},
	}
	if files.squashfs != "" {
		images = append(images, &img{alias: "sq", files: []string{files.meta, files.squashfs}})
	}
	for _, im := range images {
		im.fp = d.lxcImport(append(im.files, "--alias", im.alias)...)
		// LXD's fingerprint: the file's SHA-256, or metadata's then rootfs's.
		if want := sha256File(t, im.files...); im.fp != want {
			t.Errorf("%s: fingerprint %s, want %s", im.alias, im.fp, want)
		}
	}

	list := d.mustLXC("image", "list", "--format", "csv", "-c", "lfdasp")
	for _, im := range images {
		want := fmt.Sprintf("%s,%s,Busybox LXD test image,%s,", im.alias, im.fp[:12], arch)
		if !strings.Contains(list, want) {
			t.Errorf("lxc image list lacks %q:\n%s", want, list)
		}
	}
	for _, im := range images {
		info := d.mustLXC("image", "info", im.alias)
		for _, want := range []string{"Fingerprint: " + im.fp, "Architecture: " + arch, "    os: busybox", "    release: 1.36",
			"    variant: test", "    serial: 20240301", "Created: 2024/03/01"} {
			if !strings.Contains(info, want) {
				t.Errorf("lxc image info %s lacks %q:\n%s", im.alias, want, info)
			}
		}
	}

	// Instances run from each.
	for _, im := range images {
		name := "c-" + im.alias
		d.mustLXC("launch", im.alias, name)
		if out := d.mustLXC("list", name, "--format", "csv", "-c", "ns"); strings.TrimSpace(out) != name+",RUNNING" {
			t.Errorf("lxc list %s: %q", name, out)
		}
	}

	// An image in use is not deleted: 409, naming the instance.
	_, errOut, code := d.lxc("image", "delete", "uni")
	if code == 0 || !strings.Contains(errOut, "c-uni") {
		t.Errorf("lxc image delete of an image in use: exit %d, %q", code, errOut)
	}
	c := d.client()
	ctx := context.Background()
	_, err := c.DeleteImage(ctx, images[0].fp)
	if client.StatusCodeOf(err) != 409 || !strings.Contains(fmt.Sprint(err), "c-uni") {
		t.Errorf("SDK delete of an image in use: %v (status %d), want 409 naming c-uni", err, client.StatusCodeOf(err))
	}

	// Export gives the files back, byte for byte, named as LXD names them.
	exported := map[string][]string{}
	for _, im := range images {
		dir := t.TempDir()
		d.mustLXC("image", "export", im.alias, dir+"/")
		entries, _ := os.ReadDir(dir)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		var want []string
		switch im.alias {
		case "uni":
			want = []string{im.fp + ".tar.gz"}
		case "split":
			want = []string{im.fp + ".tar.gz", "meta-" + im.fp + ".tar.gz"}
		case "sq":
			want = []string{im.fp + ".squashfs", "meta-" + im.fp + ".tar.gz"}
		}
		if strings.Join(names, " ") != strings.Join(want, " ") {
			t.Fatalf("lxc image export %s: %v, want %v", im.alias, names, want)
		}
		var paths []string
		for _, n := range []string{want[len(want)-1], want[0]} { // metadata first
			paths = append(paths, filepath.Join(dir, n))
		}
		if len(want) == 1 {
			paths = paths[:1]
		}
		for i, p := range paths {
			orig := im.files[i]
			if !bytes.Equal([]byte(readFile(t, p)), []byte(readFile(t, orig))) {
				t.Errorf("%s: exported %s differs from %s", im.alias, p, orig)
			}
		}
		exported[im.alias] = paths
	}

	// Delete everything, then import the exports again: same fingerprints.
	for _, im := range images {
		d.mustLXC("delete", "--force", "c-"+im.alias)
		d.mustLXC("image", "delete", im.alias)
	}
	if got := d.imageStoreEntries(); len(got) != 0 {
		t.Errorf("image store after deleting every image: %v", got)
	}
	for _, im := range images {
		if fp := d.lxcImport(append(exported[im.alias], "--alias", im.alias)...); fp != im.fp {
			t.Errorf("%s: re-imported export has fingerprint %s, want %s", im.alias, fp, im.fp)
		}
	}

	// hangar's own CLI: split import and export.
	d.mustLXC("image", "delete", "split")
	out := d.must("image", "import", files.meta, files.rootfs, "--alias", "split2")
	if !strings.Contains(out, images[1].fp) {
		t.Errorf("hangar image import (split): %q, want fingerprint %s", out, images[1].fp)
	}
	dir := t.TempDir()
	d.must("image", "export", "split2", filepath.Join(dir, "x"))
	if got := sha256File(t, filepath.Join(dir, "x"), filepath.Join(dir, "x.root")); got != images[1].fp {
		t.Errorf("hangar image export split2 FILE: fingerprint %s, want %s", got, images[1].fp)
	}
	d.must("image", "export", "uni", dir)
	if got := sha256File(t, filepath.Join(dir, images[0].fp+".tar.gz")); got != images[0].fp {
		t.Errorf("hangar image export uni DIR: fingerprint %s", got)
	}
}

// TestLXDImageBadInput: each bad upload is a clear 4xx error and leaves
// nothing at all in the image store.
func TestLXDImageBadInput(t *testing.T) {
	requireLXC(t)
	d := startDaemon(t, "")
	dir := t.TempDir()
	good := writeLXDImages(t, dir)
	metadata := fmt.Sprintf(lxdTestMetadata, runtime.GOARCH)

	corrupt := filepath.Join(dir, "corrupt.tar.gz")
	data := []byte(readFile(t, good.unified))
	for i := 100; i < len(data)-20; i += 7 {
		data[i] ^= 0x5a
	}
	if err := os.WriteFile(corrupt, data, 0o644); err != nil {
		t.Fatal(err)
	}
	noMeta := filepath.Join(dir, "nometa.tar.gz")
	writeTarGz(t, noMeta, func(tw *tar.Writer) {
		copyUnder(t, tw, imageTarball, "rootfs/")
		addFile(t, tw, "templates/hostname.tpl", "x")
	})
	badArch := filepath.Join(dir, "badarch.tar.gz")
	writeTarGz(t, badArch, func(tw *tar.Writer) {
		addFile(t, tw, "metadata.yaml", strings.Replace(metadata, "architecture: "+runtime.GOARCH, "architecture: pdp11", 1))
		copyUnder(t, tw, imageTarball, "rootfs/")
	})
	escape := filepath.Join(dir, "escape.tar.gz")
	writeTarGz(t, escape, func(tw *tar.Writer) {
		addFile(t, tw, "metadata.yaml", metadata)
		copyUnder(t, tw, imageTarball, "rootfs/")
		addFile(t, tw, "rootfs/../../../../tmp/hangar-escaped", "x")
	})
	splitNoMeta := filepath.Join(dir, "meta-empty.tar.gz")
	writeTarGz(t, splitNoMeta, func(tw *tar.Writer) { addFile(t, tw, "templates/x.tpl", "x") })

	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{"corrupt tarball", []string{corrupt}, "corrupt"},
		{"rootfs/ but no metadata.yaml", []string{noMeta}, "no metadata.yaml"},
		{"unknown architecture", []string{badArch}, `unknown architecture "pdp11"`},
		{"path-escaping entry", []string{escape}, "escapes the root"},
		{"split metadata without metadata.yaml", []string{splitNoMeta, good.rootfs}, "no metadata.yaml"},
	}
	c := d.client()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := d.lxc(append([]string{"image", "import"}, append(tc.files, "--alias", "bad")...)...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("lxc image import: exit %d, stderr %q, want %q", code, errOut, tc.want)
			}
			// Through the SDK: the HTTP status is a 4xx.
			f, err := os.Open(tc.files[0])
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if len(tc.files) == 2 {
				r, err := os.Open(tc.files[1])
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				_, err = c.CreateImageFromFiles(context.Background(), f, "meta", r, "rootfs", client.ImageImportArgs{})
				checkBadImport(t, err, tc.want)
			} else {
				_, err = c.CreateImageFromFile(context.Background(), f, client.ImageImportArgs{})
				checkBadImport(t, err, tc.want)
			}
			if got := d.imageStoreEntries(); len(got) != 0 {
				t.Errorf("left in the image store: %v", got)
			}
			if imgs := d.images(); len(imgs) != 0 {
				t.Errorf("images recorded: %+v", imgs)
			}
		})
	}
	if _, err := os.Lstat("/tmp/hangar-escaped"); err == nil {
		t.Error("a path-escaping entry was written outside the image")
	}
}

func checkBadImport(t *testing.T, err error, want string) {
	t.Helper()
	if code := client.StatusCodeOf(err); code < 400 || code > 499 || !strings.Contains(fmt.Sprint(err), want) {
		t.Errorf("SDK import: %v (status %d), want a 4xx containing %q", err, code, want)
	}
}

// TestServerConfigCacheExpiry: images.remote_cache_expiry is validated and
// kept across restarts.
func TestServerConfigCacheExpiry(t *testing.T) {
	requireLXC(t)
	d := startDaemon(t, "")
	if got := strings.TrimSpace(d.mustLXC("config", "get", "images.remote_cache_expiry")); got != "" {
		t.Errorf("unset key: %q", got)
	}
	d.mustLXC("config", "set", "images.remote_cache_expiry", "3")
	for _, bad := range []string{"-1", "ten"} {
		if _, errOut, code := d.lxc("config", "set", "--", "images.remote_cache_expiry", bad); code == 0 || !strings.Contains(errOut, "images.remote_cache_expiry") {
			t.Errorf("set %q: exit %d, %q", bad, code, errOut)
		}
	}
	if _, errOut, code := d.lxc("config", "set", "core.nonsense", "1"); code == 0 || !strings.Contains(errOut, "core.nonsense") {
		t.Errorf("unknown key: exit %d, %q", code, errOut)
	}
	d.cleanup()
	d.start()
	if got := strings.TrimSpace(d.mustLXC("config", "get", "images.remote_cache_expiry")); got != "3" {
		t.Errorf("after restart: %q, want 3", got)
	}
	c := d.client()
	if err := c.UpdateServerConfig(context.Background(), map[string]string{"images.remote_cache_expiry": ""}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(d.mustLXC("config", "get", "images.remote_cache_expiry")); got != "" {
		t.Errorf("after unsetting: %q", got)
	}
}
