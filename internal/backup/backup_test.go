package backup

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func testConfig(name, typ string, snaps ...string) *Config {
	created := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	c := &Config{
		Instance: &Instance{
			Name: name, Type: typ, Architecture: "x86_64", Description: "web",
			Config:          map[string]string{"limits.cpu": "2", "volatile.uuid": "u-1"},
			Devices:         map[string]map[string]string{"eth0": {"type": "nic", "network": "hangarbr0"}},
			ExpandedDevices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}},
			Profiles:        []string{"default"}, Ephemeral: false, Stateful: false, CreatedAt: created,
		},
		Pool:   &Pool{Name: "default", Driver: "dir", Config: map[string]string{"source": "/var/lib/hangar/pools/default"}},
		Volume: &Volume{Name: name, Type: typ, ContentType: "filesystem", Config: map[string]string{}},
	}
	for i, s := range snaps {
		c.Snapshots = append(c.Snapshots, &Snapshot{
			Name: s, Architecture: "x86_64", Config: map[string]string{"limits.cpu": "1"},
			Devices: map[string]map[string]string{}, Profiles: []string{"default"},
			CreatedAt: created.Add(time.Duration(i) * time.Hour), ExpiresAt: created.Add(48 * time.Hour), Stateful: i == 1,
		})
	}
	return c
}

// writeBackup exports src (and each snapshot tree) the way the storage
// layer will: index, snapshots oldest first, then the instance.
func writeBackup(t *testing.T, compression string, src string, snaps []string, m IDMap) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, compression)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("c1", TypeContainer, snaps...)
	MarkUnshifted(cfg)
	idx := &Index{Name: "c1", Backend: "dir", Pool: "default", Type: TypeContainer, Snapshots: snaps, Config: cfg}
	if err := w.WriteIndex(idx); err != nil {
		t.Fatal(err)
	}
	yml, err := MarshalConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		if err := w.AddTree(SnapshotDir(TypeContainer, s), src, TreeOptions{IDMap: m}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.AddTree(VolumeDir(TypeContainer), src, TreeOptions{IDMap: m}); err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile(VolumeDir(TypeContainer)+"/"+ConfigFile, 0o644, yml); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		compression string
		shifted     bool
	}{
		{CompressionGzip, false},
		{CompressionGzip, true},
		{CompressionZstd, true},
		{CompressionXz, false},
		{CompressionLzma, false},
		{CompressionNone, true},
	}
	for _, tt := range tests {
		name := tt.compression
		if tt.shifted {
			name += "-shifted"
		}
		t.Run(name, func(t *testing.T) {
			src, dst := t.TempDir(), t.TempDir()
			var srcMap, dstMap IDMap
			var base uint32
			delta := int64(0)
			if tt.shifted {
				base = srcBase
				srcMap, dstMap = SingleRange(srcBase, mapSize), SingleRange(dstBase, mapSize)
				delta = dstBase - srcBase
			}
			buildTree(t, src, base)
			data := writeBackup(t, tt.compression, src, []string{"snap0", "snap1"}, srcMap)

			// The archive holds container ids and unshifted capabilities.
			checkArchiveIDs(t, data)

			r, err := restore(data, dst, ExtractOptions{HostMap: dstMap})
			if err != nil {
				t.Fatal(err)
			}
			if r.Compression != tt.compression {
				t.Errorf("detected %q, want %q", r.Compression, tt.compression)
			}
			if got := r.Index.Snapshots; !cmp.Equal(got, []string{"snap0", "snap1"}) {
				t.Errorf("snapshots %v", got)
			}
			xattr := func(rel, name, v string) string {
				if !tt.shifted {
					return v
				}
				switch name {
				case "security.capability":
					return string(capV3(dstBase))
				case "system.posix_acl_access":
					return string(aclValue(dstBase+1000, dstBase+42))
				}
				return v
			}
			for _, part := range []string{"instance", "snap-snap0", "snap-snap1"} {
				// backup.yaml is only in the instance's volume.
				os.Remove(filepath.Join(dst, part, ConfigFile))
				compareTrees(t, src, filepath.Join(dst, part), delta, true, xattr)
			}
		})
	}
}

// checkArchiveIDs reads the raw tar: every owner is a container id, and
// the capability is revision 2 (root id 0 inside the container).
func checkArchiveIDs(t *testing.T, data []byte) {
	t.Helper()
	d, release, _, err := decompress(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	tr := tar.NewReader(d)
	sawCap := false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid >= mapSize || hdr.Gid >= mapSize {
			t.Errorf("%s: owner %d:%d is not a container id", hdr.Name, hdr.Uid, hdr.Gid)
		}
		if v, ok := hdr.PAXRecords["SCHILY.xattr.security.capability"]; ok {
			sawCap = true
			if v != string(capV2()) {
				t.Errorf("%s: capability %x, want revision 2", hdr.Name, v)
			}
		}
	}
	if !sawCap {
		t.Error("no capability in the archive")
	}
}

func TestWriterRefuses(t *testing.T) {
	for _, algo := range []string{"bzip2", "brotli", "gzip -9"} {
		if _, err := NewWriter(io.Discard, algo); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("compression %q: %v, want invalid", algo, err)
		}
	}
	w, err := NewWriter(io.Discard, "none")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddFile("backup/container/backup.yaml", 0o644, nil); err == nil {
		t.Error("a file before the index was accepted")
	}
	w, _ = NewWriter(io.Discard, "none")
	if err := w.WriteIndex(&Index{Name: "bad name", Backend: "dir"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad index: %v", err)
	}
	w, _ = NewWriter(io.Discard, "none")
	if err := w.WriteIndex(&Index{Name: "c1", Backend: "dir"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"etc/passwd", "backup/../x", "backup/container/", "/backup/x"} {
		w, _ := NewWriter(io.Discard, "none")
		w.WriteIndex(&Index{Name: "c1", Backend: "dir"})
		if err := w.AddFile(name, 0o644, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("name %q: %v, want invalid", name, err)
		}
	}
	if err := w.AddStream("backup/virtual-machine.img", 10, strings.NewReader("short")); err == nil {
		t.Error("a short stream was accepted")
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed write succeeded")
	}
}

func TestConfigRoundTrip(t *testing.T) {
	c := testConfig("c1", TypeContainer, "snap0", "snap1")
	idx := &Index{Name: "c1", Backend: "btrfs", Pool: "default", Type: TypeContainer, Snapshots: []string{"snap0", "snap1"}, Optimized: true, OptimizedHeader: true, Config: c}
	b, err := MarshalIndex(idx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseIndex(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(idx, got); diff != "" {
		t.Errorf("index round trip (-want +got):\n%s", diff)
	}
	// LXD indexes volume_snapshots by snapshot position.
	if n := len(got.Config.VolumeSnapshots); n != 2 || got.Config.VolumeSnapshots[1].Name != "snap1" ||
		got.Config.VolumeSnapshots[0].ExpiresAt == nil {
		t.Errorf("volume snapshots not filled: %+v", got.Config.VolumeSnapshots)
	}
	cb, err := MarshalConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	gc, err := ParseConfig(cb)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, gc); diff != "" {
		t.Errorf("config round trip (-want +got):\n%s", diff)
	}
}

func TestIndexValidation(t *testing.T) {
	ok := func() *Index {
		return &Index{Name: "c1", Backend: "dir", Pool: "default", Type: TypeContainer, Snapshots: []string{"snap0"}}
	}
	tests := []struct {
		name   string
		change func(*Index)
		errHas string
	}{
		{"valid", func(*Index) {}, ""},
		{"empty type is a container", func(i *Index) { i.Type = "" }, ""},
		{"unknown type", func(i *Index) { i.Type = "lxc" }, "unknown instance type"},
		{"no name", func(i *Index) { i.Name = "" }, "invalid instance name"},
		{"path name", func(i *Index) { i.Name = "../c1" }, "invalid instance name"},
		{"digit first", func(i *Index) { i.Name = "1c" }, "digit"},
		{"too long", func(i *Index) { i.Name = strings.Repeat("a", 64) }, "1-63"},
		{"snapshot with slash", func(i *Index) { i.Snapshots = []string{"a/b"} }, "invalid snapshot name"},
		{"snapshot dot-dot", func(i *Index) { i.Snapshots = []string{".."} }, "invalid snapshot name"},
		{"snapshot twice", func(i *Index) { i.Snapshots = []string{"s", "s"} }, "twice"},
		{"no backend", func(i *Index) { i.Backend = "" }, "no storage backend"},
		{"unknown backend", func(i *Index) { i.Backend = "nfs" }, "unknown storage backend"},
		{"bad pool", func(i *Index) { i.Pool = "../p" }, "invalid pool name"},
		{"header without optimized", func(i *Index) { i.OptimizedHeader = true }, "optimized header"},
		{"config of another", func(i *Index) { i.Config = testConfig("c2", TypeContainer, "snap0") }, "its config"},
		{"config type differs", func(i *Index) { i.Config = testConfig("c1", TypeVM, "snap0") }, "its config"},
		{"config snapshots differ", func(i *Index) { i.Config = testConfig("c1", TypeContainer, "other") }, "snapshot 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := ok()
			tt.change(i)
			err := i.Validate()
			if tt.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("%v, want invalid containing %q", err, tt.errHas)
			}
		})
	}
}

func TestParseLXDIDMap(t *testing.T) {
	m, err := ParseLXDIDMap(`[{"Isuid":true,"Isgid":false,"Hostid":1000000,"Nsid":0,"Maprange":1000000000},{"Isuid":false,"Isgid":true,"Hostid":1000000,"Nsid":0,"Maprange":1000000000}]`)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := m.toInside(1000033, true); !ok || c != 33 {
		t.Errorf("uid 1000033 → %d %v", c, ok)
	}
	if _, ok := m.toInside(5, false); ok {
		t.Error("gid 5 mapped")
	}
	for _, s := range []string{"", "[]"} {
		if m, err := ParseLXDIDMap(s); err != nil || m != nil {
			t.Errorf("%q: %v %v", s, m, err)
		}
	}
	for _, s := range []string{"{", `[{"Isuid":true,"Hostid":-1,"Maprange":5}]`, `[{"Hostid":1,"Maprange":5}]`} {
		if _, err := ParseLXDIDMap(s); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: %v, want invalid", s, err)
		}
	}
}

func TestOptimizedNames(t *testing.T) {
	tests := []struct {
		typ, snap, sub string
		want           string
	}{
		{TypeContainer, "", "/", "backup/container.bin"},
		{TypeContainer, "", "/var/lib/docker", "backup/container_var-lib-docker.bin"},
		{TypeContainer, "snap_0", "", "backup/snapshots/snap_0.bin"},
		{TypeContainer, "snap_0", "/a-b/c", "backup/snapshots/snap_0_a--b-c.bin"},
		{TypeVM, "", "/", "backup/virtual-machine.bin"},
		{TypeVM, "s1", "/", "backup/virtual-machine-snapshots/s1.bin"},
	}
	for _, tt := range tests {
		got := OptimizedName(tt.typ, tt.snap, tt.sub)
		if got != tt.want {
			t.Errorf("OptimizedName(%q, %q, %q) = %q, want %q", tt.typ, tt.snap, tt.sub, got, tt.want)
		}
		r := &Reader{Index: &Index{Type: tt.typ, Optimized: true, Snapshots: []string{"snap", "snap_0", "s1"}}}
		p, ok := r.locate(got)
		wantSub := tt.sub
		if wantSub == "" {
			wantSub = "/"
		}
		if !ok || p.Kind != PartOptimized || p.Snapshot != tt.snap || p.Subvolume != wantSub {
			t.Errorf("locate(%q) = %+v %v", got, p, ok)
		}
	}
}

func TestCopyDiskSparse(t *testing.T) {
	data := make([]byte, 16<<20)
	copy(data[5<<20:], "disk data")
	// A run of data longer than one write, ending off a block boundary.
	for i := range 3*(64<<10) + 4097 { // sparsefile writes 64 KiB at a time
		data[9<<20+i] = byte(i%251 + 1)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "disk.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := CopyDisk(f, bytes.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("%d %v", n, err)
	}
	got, _ := os.ReadFile(f.Name())
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 > 2<<20 {
		t.Errorf("disk not sparse: %d blocks", st.Blocks)
	}
}
