package e2e

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestOCILaunch launches straight from a registry reference: a real
// registry (go-containerregistry's) on loopback in this process serves an
// image whose base layer is the busybox root filesystem and whose top
// layer adds an entrypoint script and a user. The instance must run the
// entrypoint with the image's env, workdir and user, and a second launch
// must reuse the unpacked tree.
func TestOCILaunch(t *testing.T) {
	d := startDaemon(t, "")
	ref, img := serveAppImage(t, d.netns, "test/app:1",
		"#!/bin/sh\necho \"oci-entrypoint args=$* GREETING=$GREETING EXTRA=$EXTRA uid=$(id -u) gid=$(id -g) cwd=$(pwd)\"\nexec sleep 2147483647\n")
	host, _, _ := strings.Cut(ref, "/")
	digest, _ := img.Digest()

	out := d.must("launch", host+"/test/app:1", "c1", "--insecure", "-c", "environment.EXTRA=from-config")
	if !strings.Contains(out, "Starting c1") {
		t.Errorf("launch output: %q", out)
	}
	want := "oci-entrypoint args=first-arg GREETING=hello-from-image EXTRA=from-config uid=1000 gid=1000 cwd=/app"
	var console string
	waitFor(t, "the entrypoint's line in the console log", 15*time.Second, func() bool {
		console = d.must("console", "c1", "--show-log")
		return strings.Contains(console, want)
	})

	// The image is stored by its manifest digest; the second launch needs
	// no pull and no unpack.
	if out := d.must("image", "list", "--format", "csv"); !strings.Contains(out, digest.Hex[:12]) {
		t.Errorf("image list lacks %s: %s", digest.Hex[:12], out)
	}
	d.must("launch", host+"/test/app:1", "c2", "--insecure", "-c", `oci.cmd=["second"]`)
	waitFor(t, "c2's entrypoint line", 15*time.Second, func() bool {
		return strings.Contains(d.must("console", "c2", "--show-log"), "args=second GREETING=hello-from-image")
	})
	if n := strings.Count(d.logText(), "image cached on pool"); n != 1 {
		t.Errorf("%d image volumes made for two launches of one image, want 1 (the shifted tree on pool default)", n)
	}

	// Bad input: a clear error and nothing stored.
	d.mustFail([]string{"launch", host + "/test/none:1", "c3", "--insecure"}, "not found")
	d.mustFail([]string{"image", "pull", "192.0.2.1:5000/test/x:1", "--insecure"}, "loopback")
	if out := d.must("image", "list", "--format", "csv"); strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Errorf("failed pulls stored images: %s", out)
	}
}

// serveAppImage starts a registry in this process, on loopback in the
// network namespace netns (the daemon's; closed with the test), and pushes
// to it, as repo, an OCI image: the busybox tree as
// its base layer, then a layer with script as /app/run.sh, the entrypoint
// (cmd "first-arg"), run as user app (1000:1000) in /app with GREETING in
// its env. It returns the image's reference and the image.
func serveAppImage(t *testing.T, netns, repo, script string) (string, v1.Image) {
	t.Helper()
	l, lerr := listenIn(netns, "127.0.0.1:0")
	if lerr != nil {
		t.Fatal(lerr)
	}
	srv := httptest.NewUnstartedServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	base, err := tarball.LayerFromFile(imageTarball, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	top := tarLayer(t, map[string]string{
		"app/run.sh": script,
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n",
		"etc/group":  "root:x:0:\napp:x:1000:\n",
	})
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	if img, err = mutate.AppendLayers(img, base, top); err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{
		Entrypoint: []string{"/app/run.sh"},
		Cmd:        []string{"first-arg"},
		Env:        []string{"PATH=/bin:/sbin:/usr/bin", "GREETING=hello-from-image"},
		WorkingDir: "/app",
		User:       "app",
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "http://") + "/" + repo
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, remote.WithTransport(transportIn(netns))); err != nil {
		t.Fatal(err)
	}
	return ref, img
}

// tarLayer builds a gzipped layer of executable files.
func tarLayer(t *testing.T, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		mode := int64(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	return l
}
