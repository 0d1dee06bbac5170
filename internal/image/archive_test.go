package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// tarDir archives a directory as `tar -C dir .` would.
func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = rel
		if d.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			tw.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImportArchives(t *testing.T) {
	ctx := context.Background()
	img := buildImage(t, hostArch(), v1.Config{Cmd: []string{"/bin/sh"}},
		layerOf(t, dirEntry("./", 0o755), reg("etc/os-release", "ID=test\n", 0o644), reg("gone", "x", 0o644)),
		layerOf(t, reg(".wh.gone", "", 0o644), reg("added", "y", 0o644)))
	digest, _ := img.Digest()

	layoutDir := t.TempDir()
	lp, err := layout.Write(layoutDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	var docker bytes.Buffer
	tag, _ := name.NewTag("example.com/test/app:1")
	if err := tarball.Write(tag, img, &docker); err != nil {
		t.Fatal(err)
	}
	foreign := buildImage(t, otherArch(), v1.Config{}, layerOf(t, reg("x", "x", 0o644)))
	var foreignDocker bytes.Buffer
	if err := tarball.Write(tag, foreign, &foreignDocker); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		data   []byte
		wantFP string // "" for the docker archive: its manifest is built here
		kind   error
	}{
		{"oci archive", tarDir(t, layoutDir), digest.Hex, nil},
		{"oci archive gzipped", compress(t, "gzip", tarDir(t, layoutDir)), digest.Hex, nil},
		{"docker archive", docker.Bytes(), "", nil},
		{"docker archive of another architecture", foreignDocker.Bytes(), "", errdefs.ErrInvalidArgument},
		{"corrupt archive", compress(t, "gzip", tarDir(t, layoutDir))[:300], "", errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db, _, dir := newTestService(t)
			got, err := s.Import(ctx, bytes.NewReader(tc.data), ImportMeta{Alias: "app"})
			if tc.kind != nil {
				assertKind(t, err, tc.kind)
				if left := storeEntries(t, dir); len(left) != 0 || len(db.images) != 0 {
					t.Errorf("failed import left %v", left)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantFP != "" && got.Fingerprint != tc.wantFP {
				t.Errorf("fingerprint %s, want the manifest digest %s", got.Fingerprint, tc.wantFP)
			}
			if rec := db.images[got.Fingerprint]; rec.Format != formatOCI || rec.Source != sourceArchive {
				t.Errorf("record %+v", rec)
			}
			root, err := s.RootFS(ctx, got.Fingerprint)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := os.ReadFile(filepath.Join(root, "added")); err != nil || string(b) != "y" {
				t.Errorf("added: %q %v", b, err)
			}
			if _, err := os.Lstat(filepath.Join(root, "gone")); err == nil {
				t.Error("whiteout not applied")
			}
			rc, err := s.RuntimeConfig(ctx, got.Fingerprint)
			if err != nil || len(rc.Cmd) != 1 || rc.Cmd[0] != "/bin/sh" {
				t.Errorf("runtime config %+v, %v", rc, err)
			}
			// Nothing of the upload is kept beside the image's own blobs.
			for _, e := range storeEntries(t, dir) {
				if filepath.Base(e)[0] == '.' {
					t.Errorf("left over: %s", e)
				}
			}
		})
	}
}
