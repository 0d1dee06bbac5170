package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/client"
)

const maxUnpackedKey = "images.max_unpacked_size"

// gzipBomb writes a gzip (about 1 MiB) of a tar holding one file of 1 GiB
// of zeros. It is made of gzip members, which gunzip reads as one stream:
// the tar header, then one member of 1 MiB of zeros written 1024 times
// (compressed once: compressing 1 GiB costs minutes under the race
// detector), then the tar's end.
func gzipBomb(t *testing.T, dir string) string {
	t.Helper()
	const size = 1 << 30
	member := func(data []byte) []byte {
		var b bytes.Buffer
		gz := gzip.NewWriter(&b)
		gz.Write(data)
		gz.Close()
		return b.Bytes()
	}
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Size: size, Mode: 0o644, ModTime: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tw.Flush()
	path := filepath.Join(dir, "bomb.tar.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	w.Write(member(hdr.Bytes()))
	zeros := member(make([]byte, 1<<20))
	for range size >> 20 {
		w.Write(zeros)
	}
	w.Write(member(make([]byte, 1024))) // end of archive
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if st, err := f.Stat(); err != nil || st.Size() > 2<<20 {
		t.Fatalf("gzip bomb: %v, %v", st, err)
	}
	return path
}

// sparseBomb writes, with GNU tar, a tar of a sparse file declaring 1 TiB
// (10 KiB of archive), or returns "" without GNU tar.
func sparseBomb(t *testing.T, dir string) string {
	t.Helper()
	if lookPath("tar") == "" {
		t.Log("sparse bomb not tested: GNU tar is not installed")
		return ""
	}
	src := filepath.Join(dir, "sparse")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "huge"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(src, "huge"), 1<<40); err != nil {
		t.Skipf("the test filesystem holds no 1 TiB sparse file: %v", err)
	}
	path := filepath.Join(dir, "sparse.tar")
	if out, err := exec.Command("tar", "--sparse", "-cf", path, "-C", src, "huge").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	if st, err := os.Stat(path); err != nil || st.Size() > 64<<10 {
		t.Fatalf("sparse bomb: %v, %v", st, err)
	}
	return path
}

// imageLeftovers lists what the image store directories hold.
func imageLeftovers(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"images/blobs/sha256", "images/rootfs"} {
		entries, err := os.ReadDir(filepath.Join(dataDir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			out = append(out, sub+"/"+e.Name())
		}
	}
	return out
}

// TestImageBombs: with images.max_unpacked_size set low, a gzip bomb and a
// sparse-file bomb are refused with a 400 saying "image expands beyond N",
// through the CLI and the SDK, and leave nothing; a real image still fits
// a sane cap. The key is validated like the others.
func TestImageBombs(t *testing.T) {
	d := startDaemon(t, "")
	c := d.client()
	ctx := context.Background()

	for _, bad := range []string{"1KiB", "ten", "-5GiB", "1.5GiB", "9EiB"} {
		err := c.UpdateServerConfig(ctx, map[string]string{maxUnpackedKey: bad})
		if client.StatusCodeOf(err) != 400 || !strings.Contains(fmt.Sprint(err), maxUnpackedKey) {
			t.Errorf("set %s=%s: %v (status %d), want a 400 naming the key", maxUnpackedKey, bad, err, client.StatusCodeOf(err))
		}
	}
	if err := c.UpdateServerConfig(ctx, map[string]string{maxUnpackedKey: "1MiB"}); err != nil {
		t.Fatal(err)
	}
	srv, _, err := c.GetServer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Config[maxUnpackedKey]; got != "1MiB" {
		t.Errorf("GET /1.0 config %s = %v", maxUnpackedKey, got)
	}

	dir := t.TempDir()
	bombs := map[string]string{"gzip of 1GiB of zeros": gzipBomb(t, dir)}
	if p := sparseBomb(t, dir); p != "" {
		bombs["GNU sparse tar declaring 1TiB"] = p
	}
	const want = "image expands beyond 1MiB"
	for name, path := range bombs {
		t.Run(name, func(t *testing.T) {
			_, errOut, code := d.hangar("image", "import", path, "--alias", "bomb")
			if code == 0 || !strings.Contains(errOut, want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
				t.Errorf("hangar image import: exit %d, stderr %q, want one line containing %q", code, errOut, want)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			op, err := c.CreateImageFromFile(ctx, f, client.ImageImportArgs{Alias: "bomb"})
			if err == nil {
				err = op.Wait(ctx)
			}
			if client.StatusCodeOf(err) != 400 || !strings.Contains(fmt.Sprint(err), want) {
				t.Errorf("SDK import: %v (status %d), want a 400 containing %q", err, client.StatusCodeOf(err), want)
			}
			if lookPath("lxc") != "" { // LXD's own client reads the answer too
				if _, errOut, code := d.lxc("image", "import", path, "--alias", "bomb"); code == 0 || !strings.Contains(errOut, want) {
					t.Errorf("lxc image import: exit %d, stderr %q, want %q", code, errOut, want)
				}
			}
			if imgs := d.images(); len(imgs) != 0 {
				t.Errorf("images after a refused bomb: %+v", imgs)
			}
			if left := imageLeftovers(t, d.dir); len(left) != 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}

	// A real image fits a sane cap.
	if err := c.UpdateServerConfig(ctx, map[string]string{maxUnpackedKey: "64MiB"}); err != nil {
		t.Fatal(err)
	}
	d.must("image", "import", imageTarball, "--alias", "busybox")
	if strings.Contains(d.logText(), "level=ERROR") {
		t.Errorf("refused bombs were logged as errors:\n%s", d.logText())
	}
}

// TestImageUploadInterrupted: a client that closes its connection halfway
// through POST /1.0/images leaves no image, no temporary file and no error
// in the log, only an info line.
func TestImageUploadInterrupted(t *testing.T) {
	d := startDaemon(t, "")
	full, err := os.ReadFile(imageTarball)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /1.0/images HTTP/1.1\r\nHost: hangar\r\nContent-Type: application/octet-stream\r\nX-Hangar-Alias: cut\r\nContent-Length: %d\r\n\r\n", len(full))
	if _, err := conn.Write(full[:len(full)/2]); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	waitFor(t, "the interrupted upload in the log", 30*time.Second, func() bool {
		return strings.Contains(d.logText(), "image upload interrupted by the client")
	})
	log := d.logText()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "image upload interrupted by the client") && !strings.Contains(line, "level=INFO") {
			t.Errorf("logged not at info: %s", line)
		}
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("logged as an error: %s", line)
		}
	}
	if imgs := d.images(); len(imgs) != 0 {
		t.Errorf("images after an interrupted upload: %+v", imgs)
	}
	if left := imageLeftovers(t, d.dir); len(left) != 0 {
		t.Errorf("left behind: %v", left)
	}
	// The same upload, whole, goes through.
	d.must("image", "import", imageTarball, "--alias", "cut")
}
