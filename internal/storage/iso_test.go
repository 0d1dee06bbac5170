package storage

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/storage/drivers"
)

// isoImage is an image of size bytes with magic as the identifier of
// its descriptor at sector 16: "CD001" makes an ISO 9660 image's start.
func isoImage(size int, magic string) []byte {
	b := make([]byte, size)
	if size > isoMagicAt {
		b[isoMagicAt-1] = 1 // a primary volume descriptor
		copy(b[isoMagicAt:], magic)
	}
	for i := isoHeaderSize; i < size; i++ {
		b[i] = byte(i)
	}
	return b
}

// TestCheckISOHeader: what counts as an ISO image's start.
func TestCheckISOHeader(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		ok   bool
		says string
	}{
		{"ISO 9660", isoImage(64<<10, "CD001"), true, ""},
		{"UDF BEA01", isoImage(64<<10, "BEA01"), true, ""},
		{"UDF NSR03", isoImage(64<<10, "NSR03"), true, ""},
		{"exactly the header", isoImage(isoHeaderSize, "CD001"), true, ""},
		{"empty", nil, false, "0 bytes"},
		{"short of the descriptor", isoImage(32768, "CD001"), false, "32768 bytes"},
		{"zeros", make([]byte, 64<<10), false, "no ISO 9660"},
		{"magic one byte early", func() []byte {
			b := make([]byte, 64<<10)
			copy(b[isoMagicAt-1:], "CD001")
			return b
		}(), false, "no ISO 9660"},
		{"lower case", isoImage(64<<10, "cd001"), false, `"cd001"`},
		{"a qcow2 header", append([]byte("QFI\xfb"), make([]byte, 64<<10)...), false, "not an ISO image"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.data
			if len(h) > isoHeaderSize {
				h = h[:isoHeaderSize]
			}
			err := checkISOHeader(h)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, "check", err, errdefs.ErrInvalidArgument, tc.says)
		})
	}
}

// failingReader gives n bytes of data, then fails, as an upload cut short.
type failingReader struct {
	data []byte
	n    int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n >= len(f.data) {
		return 0, errors.New("connection reset")
	}
	k := copy(p, f.data[f.n:])
	f.n += k
	return k, nil
}

// TestISOVolume: an ISO volume's import, listing and attachment on dir and
// btrfs pools; bad images refused leaving nothing; what LXD refuses ISO
// volumes refused; rename and delete as any custom volume.
func TestISOVolume(t *testing.T) {
	e := newEnv(t)
	pools := []string{"default"}
	if ok, _ := hasBtrfs(); ok {
		e.btrfsPool("b", nil)
		pools = append(pools, "b")
	} else {
		t.Log("no btrfs here: dir pool only")
	}
	img := isoImage(300<<10+123, "CD001") // not a multiple of any block size
	for _, pool := range pools {
		t.Run(pool, func(t *testing.T) {
			e.events.take()
			before := e.onDisk(pool)
			bad := []struct {
				name  string
				vol   string
				image io.Reader
				kind  error
				says  string
			}{
				{"not an ISO", "bad", bytes.NewReader(make([]byte, 40000)), errdefs.ErrInvalidArgument, "not an ISO image"},
				{"empty", "bad", bytes.NewReader(nil), errdefs.ErrInvalidArgument, "0 bytes"},
				{"cut short", "bad", &failingReader{data: img[:100<<10]}, nil, "connection reset"},
				{"cut in its header", "bad", &failingReader{data: img[:1000]}, nil, "connection reset"},
				{"bad name", "a/b", bytes.NewReader(img), errdefs.ErrInvalidArgument, "storage volume name"},
				{"no pool", "bad", bytes.NewReader(img), errdefs.ErrNotFound, "not found"},
			}
			for _, tc := range bad {
				p := pool
				if tc.name == "no pool" {
					p = "ghost"
				}
				err := e.m.ImportISO(e.ctx, ImportISORequest{Pool: p, Name: tc.vol, Image: tc.image})
				if err == nil {
					t.Fatalf("%s: imported", tc.name)
				}
				if tc.kind != nil {
					wantErr(t, tc.name, err, tc.kind, tc.says)
				} else if !strings.Contains(err.Error(), tc.says) {
					t.Errorf("%s: %v", tc.name, err)
				}
				if got := e.onDisk(pool); !slices.Equal(got, before) {
					t.Errorf("%s left %v on disk (before %v)", tc.name, got, before)
				}
				if _, err := e.m.Volume(e.ctx, pool, "custom", tc.vol); !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("%s left a volume: %v", tc.name, err)
				}
			}
			if ev := e.events.take(); len(ev) != 0 {
				t.Errorf("refused imports sent events %v", ev)
			}

			if err := e.m.ImportISO(e.ctx, ImportISORequest{Pool: pool, Name: "cd", Description: "install", Image: bytes.NewReader(img)}); err != nil {
				t.Fatal(err)
			}
			err := e.m.ImportISO(e.ctx, ImportISORequest{Pool: pool, Name: "cd", Image: bytes.NewReader(img)})
			wantErr(t, "import again", err, errdefs.ErrConflict)
			v, err := e.m.Volume(e.ctx, pool, "custom", "cd")
			if err != nil {
				t.Fatal(err)
			}
			if v.ContentType != "iso" || v.Config["size"] != strconv.Itoa(len(img)) || v.Description != "install" {
				t.Errorf("volume %+v", v)
			}
			a, err := e.m.Attach(e.ctx, pool, "cd")
			if err != nil {
				t.Fatal(err)
			}
			if !a.ISO || a.Block || a.Path != filepath.Join(e.path(pool, drivers.TypeCustom, "cd", drivers.ContentISO), drivers.BlockFile) {
				t.Errorf("attachment %+v", a)
			}
			if got, err := os.ReadFile(a.Path); err != nil || !bytes.Equal(got, img) {
				t.Errorf("image on disk differs (%d bytes, %v)", len(got), err)
			}
			if pool == "b" {
				// A read-only subvolume: nothing writes the image.
				if err := os.WriteFile(filepath.Join(filepath.Dir(a.Path), "x"), nil, 0o600); err == nil {
					t.Error("wrote into an ISO volume on btrfs")
				}
			}
			st, err := e.m.VolumeState(e.ctx, pool, "custom", "cd")
			if err != nil || st.Usage.Total != int64(len(img)) {
				t.Errorf("state %+v, %v", st, err)
			}

			// What an ISO volume cannot do.
			refused := []struct {
				name string
				do   func() error
				kind error
				says string
			}{
				{"create empty", func() error {
					return e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: pool, Name: "empty", ContentType: "iso"})
				}, errdefs.ErrInvalidArgument, "imported"},
				{"resize", func() error {
					return e.m.PatchVolume(e.ctx, pool, "custom", "cd", VolumePut{Config: map[string]string{"size": "1GiB"}})
				}, errdefs.ErrInvalidArgument, "cannot be resized"},
				{"shift", func() error {
					return e.m.PatchVolume(e.ctx, pool, "custom", "cd", VolumePut{Config: map[string]string{"security.shifted": "true"}})
				}, errdefs.ErrInvalidArgument, "filesystem volumes only"},
				{"snapshot", func() error {
					return e.m.CreateVolumeSnapshot(e.ctx, pool, "custom", "cd", "s1", SnapshotPut{})
				}, errdefs.ErrInvalidArgument, "ISO volume"},
			}
			for _, tc := range refused {
				wantErr(t, tc.name, tc.do(), tc.kind, tc.says)
			}
			if snaps, err := e.m.VolumeSnapshots(e.ctx, pool, "custom", "cd"); err != nil || len(snaps) != 0 {
				t.Errorf("snapshots %v, %v", snaps, err)
			}
			// A PUT that leaves size out keeps the image's; user keys change.
			if err := e.m.UpdateVolume(e.ctx, pool, "custom", "cd", VolumePut{Description: "d2", Config: map[string]string{"user.os": "debian"}}); err != nil {
				t.Fatal(err)
			}
			v, _ = e.m.Volume(e.ctx, pool, "custom", "cd")
			if v.Config["size"] != strconv.Itoa(len(img)) || v.Config["user.os"] != "debian" || v.Description != "d2" {
				t.Errorf("after PUT %+v", v)
			}

			// In use: not renamed or deleted; then renamed and deleted.
			e.users.set(pool, "cd", "instances/v1")
			wantErr(t, "rename in use", e.m.RenameVolume(e.ctx, pool, "custom", "cd", "cd2"), errdefs.ErrConflict, "in use")
			wantErr(t, "delete in use", e.m.DeleteVolume(e.ctx, pool, "custom", "cd"), errdefs.ErrConflict, "in use")
			e.users.set(pool, "cd")
			if err := e.m.RenameVolume(e.ctx, pool, "custom", "cd", "cd2"); err != nil {
				t.Fatal(err)
			}
			if !exists(e.path(pool, drivers.TypeCustom, "cd2", drivers.ContentISO)) || exists(e.path(pool, drivers.TypeCustom, "cd", drivers.ContentISO)) {
				t.Errorf("after rename: %v", e.onDisk(pool))
			}
			// A filesystem volume may be named like the ISO volume's
			// directory without meeting it.
			if err := e.m.CreateVolume(e.ctx, CreateVolumeRequest{Pool: pool, Name: "cd2.iso"}); err != nil {
				t.Fatal(err)
			}
			// A restart keeps both (reconcile tells them apart on disk).
			e.restart()
			if v, err := e.m.Volume(e.ctx, pool, "custom", "cd2"); err != nil || v.ContentType != "iso" {
				t.Fatalf("after restart: %+v %v", v, err)
			}
			if a, err := e.m.Attach(e.ctx, pool, "cd2"); err != nil || !exists(a.Path) {
				t.Fatalf("after restart: %+v %v", a, err)
			}
			for _, n := range []string{"cd2", "cd2.iso"} {
				if err := e.m.DeleteVolume(e.ctx, pool, "custom", n); err != nil {
					t.Fatal(err)
				}
			}
			if got := e.onDisk(pool); !slices.Equal(got, before) {
				t.Errorf("after delete %v, want %v", got, before)
			}
		})
	}
}

// TestISOVolumeQuota: an image over the project's limits.disk is refused
// once its size is known, leaving nothing.
func TestISOVolumeQuota(t *testing.T) {
	e := newEnv(t)
	e.m.cfg.Quota = fakeQuota{m: e.m, limit: 100 << 10}
	before := e.onDisk("default")
	err := e.m.ImportISO(e.ctx, ImportISORequest{Pool: "default", Name: "big", Image: bytes.NewReader(isoImage(200<<10, "CD001"))})
	wantErr(t, "over quota", err, errdefs.ErrForbidden)
	if got := e.onDisk("default"); !slices.Equal(got, before) {
		t.Errorf("left %v", got)
	}
	if recs := e.records("default"); len(recs) != 0 {
		t.Errorf("left records %v", recs)
	}
	if err := e.m.ImportISO(e.ctx, ImportISORequest{Pool: "default", Name: "small", Image: bytes.NewReader(isoImage(50<<10, "CD001"))}); err != nil {
		t.Fatal(err)
	}
	u, err := e.m.ProjectUsage(e.ctx, project.Default)
	if err != nil || u.Disk != 50<<10 {
		t.Errorf("usage %+v, %v", u, err)
	}
}
