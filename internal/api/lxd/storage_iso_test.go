package lxd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage"
)

// ImportISO reads the image whole and keeps it as an ISO volume; what
// has no "CD001" at byte 32769 is refused, as the manager refuses it.
func (f *fakeStorage) ImportISO(_ context.Context, req storage.ImportISORequest) error {
	b, err := io.ReadAll(req.Image)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.pool(req.Pool); err != nil {
		return err
	}
	if len(b) < 32774 || string(b[32769:32774]) != "CD001" {
		return errdefs.Invalid("not an ISO image")
	}
	if _, ok := f.vols[req.Pool+"/custom/"+req.Name]; ok {
		return errdefs.Conflict("storage volume custom/%s already exists on pool %q", req.Name, req.Pool)
	}
	f.vols[req.Pool+"/custom/"+req.Name] = storage.Volume{Pool: req.Pool, Type: "custom", Name: req.Name,
		ContentType: "iso", Config: map[string]string{"size": strconv.Itoa(len(b))}}
	return nil
}

// TestStorageISOImport: LXD's ISO import (a raw POST with X-LXD-type: iso)
// answers an operation, done, naming the volume; bad requests are the
// client's errors with nothing made.
func TestStorageISOImport(t *testing.T) {
	ts, srv := newServer(t, &fakeDriver{running: map[string]int{}})
	iso := make([]byte, 40000)
	copy(iso[32769:], "CD001")
	isoHeader := func(name string) map[string]string {
		h := map[string]string{"Content-Type": "application/octet-stream", "X-LXD-type": "iso"}
		if name != "" {
			h["X-LXD-name"] = name
		}
		return h
	}
	tests := []struct {
		name, path string
		body       []byte
		header     map[string]string
		status     int
		errHas     string
	}{
		{"import", "/1.0/storage-pools/default/volumes/custom", iso, isoHeader("cd"), 202, ""},
		{"import without type in path", "/1.0/storage-pools/default/volumes", iso, isoHeader("cd"), 202, ""},
		{"not an ISO", "/1.0/storage-pools/default/volumes/custom", make([]byte, 40000), isoHeader("cd"), 400, "not an ISO"},
		{"no name", "/1.0/storage-pools/default/volumes/custom", iso, isoHeader(""), 400, "X-LXD-name"},
		{"name with slash", "/1.0/storage-pools/default/volumes/custom", iso, isoHeader("a/b"), 400, "slashes"},
		{"not custom", "/1.0/storage-pools/default/volumes/image", iso, isoHeader("cd"), 400, "custom"},
		{"name taken", "/1.0/storage-pools/default/volumes/custom", iso, isoHeader("data"), 409, "already exists"},
		{"no pool", "/1.0/storage-pools/ghost/volumes/custom", iso, isoHeader("cd"), 404, "ghost"},
		{"JSON content_type iso", "/1.0/storage-pools/default/volumes/custom", []byte(`{"name":"cd","content_type":"iso"}`), nil, 400, "imported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeStorage()
			srv.Storage = f
			resp, env := call(t, ts, "POST", tt.path, string(tt.body), tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tt.status, env)
			}
			_, made := f.vols["default/custom/cd"]
			if tt.status >= 400 {
				if !strings.Contains(env.Error, tt.errHas) {
					t.Fatalf("error %q, want %q", env.Error, tt.errHas)
				}
				if made {
					t.Fatal("a refused import made the volume")
				}
				return
			}
			if env.Type != api.AsyncResponse || !made {
				t.Fatalf("envelope %+v, made %v", env, made)
			}
			_, done := call(t, ts, "GET", env.Operation+"/wait?timeout=10", "", nil)
			var op api.Operation
			if err := json.Unmarshal(done.Metadata, &op); err != nil || op.StatusCode != api.Success {
				t.Fatalf("operation %+v, %v", op, err)
			}
			if got := op.Resources["storage_volumes"]; len(got) != 1 || got[0] != "/1.0/storage-pools/default/volumes/custom/cd" {
				t.Errorf("resources %v", op.Resources)
			}
			_, env = call(t, ts, "GET", "/1.0/storage-pools/default/volumes/custom/cd", "", nil)
			var v api.StorageVolume
			if err := json.Unmarshal(env.Metadata, &v); err != nil || v.ContentType != "iso" || v.Config["size"] != "40000" {
				t.Errorf("volume %+v, %v", v, err)
			}
		})
	}
	// Through the SDK: the operation waited for, the volume listed.
	t.Run("sdk", func(t *testing.T) {
		f := newFakeStorage()
		srv.Storage = f
		dir, err := os.MkdirTemp("", "hiso") // short: socket paths are limited
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		ln, err := net.Listen("unix", filepath.Join(dir, "s"))
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: srv.Handler()}
		go hs.Serve(ln)
		t.Cleanup(func() { hs.Close() })
		c, err := client.Connect(filepath.Join(dir, "s"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		op, err := c.CreateStoragePoolVolumeFromISO(context.Background(), "default", "cd", bytes.NewReader(iso))
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		v, _, err := c.GetStoragePoolVolume(context.Background(), "default", "custom", "cd")
		if err != nil || v.ContentType != api.StorageContentTypeISO {
			t.Fatalf("%+v %v", v, err)
		}
		_, err = c.CreateStoragePoolVolumeFromISO(context.Background(), "default", "bad", bytes.NewReader(make([]byte, 100)))
		if err == nil || !strings.Contains(err.Error(), "not an ISO") {
			t.Fatalf("bad image: %v", err)
		}
	})
}
