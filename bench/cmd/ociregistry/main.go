// Command ociregistry serves go-containerregistry's in-memory OCI registry
// on a loopback address and pushes one benchmark image into it: LAYERS
// gzipped layers of files with random (incompressible) content, SIZE bytes
// in all, as bench/pull.sh needs. It prints "ready HOST:PORT REF" once the
// image is in, and serves until killed.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	size := flag.Int64("size", 100<<20, "total bytes of file content")
	layers := flag.Int("layers", 5, "number of layers")
	files := flag.Int("files", 200, "files per layer")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		log.Fatalf("refusing to serve on %s: loopback only", ip)
	}
	go func() {
		log.Fatal(http.Serve(ln, registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	}()
	host := ln.Addr().String()

	rng := rand.New(rand.NewPCG(1, 2))
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	per := *size / int64(*layers) / int64(*files)
	for l := 0; l < *layers; l++ {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("layer%d/", l), Mode: 0o755})
		data := make([]byte, per)
		for f := 0; f < *files; f++ {
			for i := range data {
				data[i] = byte(rng.Uint32())
			}
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("layer%d/f%04d", l, f), Mode: 0o644, Size: per})
			tw.Write(data)
		}
		tw.Close()
		b := buf.Bytes()
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			log.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			log.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		log.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config = v1.Config{Cmd: []string{"/bin/sh"}}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		log.Fatal(err)
	}
	ref := host + "/bench/img:1"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		log.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("ready %s %s\n", host, ref)
	os.Stdout.Sync()
	select {}
}
