package image

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

const testCap = 1 << 20 // 1MiB, the least images.max_unpacked_size

// cappedService is a test service whose images.max_unpacked_size is *limit.
func cappedService(t *testing.T, limit *int64) (*Service, *fakeDB, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to unpack owned files")
	}
	s, db, _, dir := newTestService(t)
	s.SetMaxUnpackedSize(func() int64 { return *limit })
	return s, db, dir
}

// streamedGzip returns a gzip stream made as it is read: gen writes the
// uncompressed bytes, and stops (its writes fail) once the test ends, so a
// bomb of any declared size costs only what the reader takes.
func streamedGzip(t *testing.T, gen func(w io.Writer) error) io.Reader {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		gz, _ := gzip.NewWriterLevel(pw, gzip.BestSpeed)
		err := gen(gz)
		if err == nil {
			err = gz.Close()
		}
		pw.CloseWithError(err)
	}()
	t.Cleanup(func() {
		pr.CloseWithError(errors.New("test over"))
		<-done
	})
	return pr
}

// writeZeros writes n zero bytes.
func writeZeros(w io.Writer, n int64) error {
	buf := make([]byte, 64<<10)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// bigFileTar writes a tar holding one regular file of size zeros.
func bigFileTar(name string, size int64) func(w io.Writer) error {
	return func(w io.Writer) error {
		tw := tar.NewWriter(w)
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: testTime}); err != nil {
			return err
		}
		if err := writeZeros(tw, size); err != nil {
			return err
		}
		return tw.Close()
	}
}

// tarThen writes a tar of entries followed by a file of size zeros.
func tarThen(t *testing.T, entries []tarEntry, name string, size int64) func(w io.Writer) error {
	return func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for _, e := range entries {
			h := e.Header
			h.Size = int64(len(e.Body))
			if err := tw.WriteHeader(&h); err != nil {
				return err
			}
			if _, err := io.WriteString(tw, e.Body); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644}); err != nil {
			return err
		}
		if err := writeZeros(tw, size); err != nil {
			return err
		}
		return tw.Close()
	}
}

// gnuSparseTar builds, by hand (archive/tar writes no sparse files), an
// old-GNU-format tar of one sparse file ('S') of apparent size realSize
// whose data fragments are given by offset; each holds 512 bytes of fill.
func gnuSparseTar(t *testing.T, name string, realSize int64, frags map[int64]byte) []byte {
	t.Helper()
	if len(frags) > 4 {
		t.Fatal("at most 4 fragments fit the header")
	}
	var hdr [512]byte
	copy(hdr[0:100], name)
	octal := func(b []byte, v int64) {
		s := fmt.Sprintf("%0*o", len(b)-1, v)
		if len(s) > len(b)-1 { // base-256, as GNU tar writes large numbers
			for i := len(b) - 1; i > 0; i-- {
				b[i] = byte(v)
				v >>= 8
			}
			b[0] = 0x80
			return
		}
		copy(b, s)
	}
	octal(hdr[100:108], 0o644)
	octal(hdr[108:116], 0)
	octal(hdr[116:124], 0)
	octal(hdr[124:136], int64(512*len(frags))) // bytes stored
	octal(hdr[136:148], testTime.Unix())
	hdr[156] = tar.TypeGNUSparse
	copy(hdr[257:263], "ustar ")
	copy(hdr[263:265], " \x00")
	var offs []int64
	for off := range frags {
		offs = append(offs, off)
	}
	for i := range offs { // ascending, as the format requires
		for j := i + 1; j < len(offs); j++ {
			if offs[j] < offs[i] {
				offs[i], offs[j] = offs[j], offs[i]
			}
		}
	}
	for i, off := range offs {
		octal(hdr[386+24*i:][:12], off)
		octal(hdr[386+24*i+12:][:12], 512)
	}
	octal(hdr[483:495], realSize)
	copy(hdr[148:156], "        ")
	var sum int64
	for _, c := range hdr {
		sum += int64(c)
	}
	copy(hdr[148:156], fmt.Sprintf("%06o\x00 ", sum))
	out := append([]byte(nil), hdr[:]...)
	for _, off := range offs {
		out = append(out, bytes.Repeat([]byte{frags[off]}, 512)...)
	}
	return append(out, make([]byte, 1024)...) // end of archive
}

// checkLeftNothing asserts that a failed import or pull left no file and
// no record.
func checkLeftNothing(t *testing.T, db *fakeDB, dir string) {
	t.Helper()
	if left := storeEntries(t, dir); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if images, aliases := db.counts(); images+aliases > 0 {
		t.Errorf("left %d image and %d alias records", images, aliases)
	}
}

func checkTooLarge(t *testing.T, err error, limit string) {
	t.Helper()
	want := "image expands beyond " + limit
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(fmt.Sprint(err), want) {
		t.Fatalf("error %v, want invalid argument containing %q", err, want)
	}
}

// TestImportBombs: every upload format stops at images.max_unpacked_size
// with "image expands beyond N" and leaves nothing.
func TestImportBombs(t *testing.T) {
	meta := buildTar(t, reg("metadata.yaml", testMetadata, 0o644))
	tests := []struct {
		name   string
		upload func(t *testing.T) io.Reader
		rootfs func(t *testing.T) io.Reader // set: a split image, upload its metadata
	}{
		{name: "gzip of one file declaring 1GiB", upload: func(t *testing.T) io.Reader {
			return streamedGzip(t, bigFileTar("zeros", 1<<30))
		}},
		{name: "gzip of 1GiB in many small files", upload: func(t *testing.T) io.Reader {
			return streamedGzip(t, func(w io.Writer) error {
				tw := tar.NewWriter(w)
				for i := 0; i < 1<<14; i++ {
					if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("f%d", i), Size: 64 << 10, Mode: 0o644}); err != nil {
						return err
					}
					if err := writeZeros(tw, 64<<10); err != nil {
						return err
					}
				}
				return tw.Close()
			})
		}},
		{name: "gzip of a small archive then 1GiB of zeros", upload: func(t *testing.T) io.Reader {
			return streamedGzip(t, func(w io.Writer) error {
				if _, err := w.Write(basicRootfs(t)); err != nil {
					return err
				}
				return writeZeros(w, 1<<30)
			})
		}},
		{name: "uncompressed archive then 1GiB of zeros", upload: func(t *testing.T) io.Reader {
			return io.MultiReader(bytes.NewReader(basicRootfs(t)), io.LimitReader(zeroReader{}, 1<<30))
		}},
		{name: "GNU sparse tar declaring 1TiB", upload: func(t *testing.T) io.Reader {
			return bytes.NewReader(gnuSparseTar(t, "huge", 1<<40, map[int64]byte{1<<40 - 512: 'x'}))
		}},
		{name: "LXD unified image", upload: func(t *testing.T) io.Reader {
			return streamedGzip(t, tarThen(t, []tarEntry{reg("metadata.yaml", testMetadata, 0o644), dirEntry("rootfs/", 0o755)}, "rootfs/zeros", 1<<30))
		}},
		{name: "LXD split image, rootfs tarball", upload: func(t *testing.T) io.Reader { return bytes.NewReader(meta) },
			rootfs: func(t *testing.T) io.Reader { return streamedGzip(t, bigFileTar("zeros", 1<<30)) }},
		{name: "LXD split image, metadata tarball bomb", upload: func(t *testing.T) io.Reader {
			return streamedGzip(t, tarThen(t, []tarEntry{reg("metadata.yaml", testMetadata, 0o644)}, "templates/zeros", 1<<30))
		}, rootfs: func(t *testing.T) io.Reader { return bytes.NewReader(basicRootfs(t)) }},
	}
	if sq := squashfsBomb(t); sq != nil {
		tests = append(tests, struct {
			name   string
			upload func(t *testing.T) io.Reader
			rootfs func(t *testing.T) io.Reader
		}{name: "LXD split image, squashfs declaring 64MiB", upload: func(t *testing.T) io.Reader { return bytes.NewReader(meta) },
			rootfs: func(t *testing.T) io.Reader { return bytes.NewReader(sq) }})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			limit := int64(testCap)
			s, db, dir := cappedService(t, &limit)
			im := ImportMeta{Alias: "bomb"}
			if tc.rootfs != nil {
				im.Rootfs = func() (io.Reader, error) { return tc.rootfs(t), nil }
			}
			_, err := s.Import(context.Background(), tc.upload(t), im)
			checkTooLarge(t, err, "1MiB")
			checkLeftNothing(t, db, dir)
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// squashfsBomb returns a squashfs whose one file declares 64MiB (zeros,
// stored as sparse blocks: the image is a few KiB), or nil without
// squashfs-tools.
func squashfsBomb(t *testing.T) []byte {
	t.Helper()
	for _, tool := range []string{"mksquashfs", "unsquashfs"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Logf("squashfs bomb not tested: %s not installed (apt-get install squashfs-tools)", tool)
			return nil
		}
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "small"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(src, "small"), 64<<20); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "bomb.squashfs")
	if b, err := exec.Command("mksquashfs", src, out, "-noappend", "-no-progress", "-quiet").CombinedOutput(); err != nil {
		t.Fatalf("mksquashfs: %v: %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 64<<10 {
		t.Fatalf("squashfs of %d bytes: not a bomb", len(data))
	}
	return data
}

// TestPullBombs: an OCI image's layers, together, stop at the cap; a
// pull leaves no tree, record or blob.
func TestPullBombs(t *testing.T) {
	random := make([]byte, 2<<20)
	rand.Read(random)
	tests := []struct {
		name   string
		layers func(t *testing.T) []v1.Layer
		// fetched: whether layers are downloaded before the cap stops
		// the pull (compressed sizes alone beyond it: not).
		fetched bool
		// unsized: the manifest as served drops the first layer's size.
		unsized bool
		wantErr string // "": the cap's error
	}{
		{name: "a layer without a size", unsized: true, wantErr: "has no size in its manifest", layers: func(t *testing.T) []v1.Layer {
			return []v1.Layer{layerOf(t, reg("x", "x", 0o644))}
		}},
		{name: "one layer expanding to 4MiB", fetched: true, layers: func(t *testing.T) []v1.Layer {
			return []v1.Layer{layerOf(t, reg("zeros", strings.Repeat("\x00", 4<<20), 0o644))}
		}},
		{name: "three layers of 512KiB each", fetched: true, layers: func(t *testing.T) []v1.Layer {
			var ls []v1.Layer
			for i := range 3 {
				ls = append(ls, layerOf(t, reg(fmt.Sprintf("zeros%d", i), strings.Repeat("\x00", 512<<10), 0o644)))
			}
			return ls
		}},
		{name: "compressed layers beyond the cap", fetched: false, layers: func(t *testing.T) []v1.Layer {
			return []v1.Layer{layerOf(t, reg("random", string(random), 0o644))}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			limit := int64(testCap)
			s, db, dir := cappedService(t, &limit)
			tr := startRegistry(t)
			layers := tc.layers(t)
			img := buildImage(t, hostArch(), v1.Config{Cmd: []string{"/x"}}, layers...)
			tr.push(t, "test/bomb:1", img)
			if tc.unsized {
				tr.pushUnsized(t, "test/bomb:1", img)
			}
			_, err := s.Pull(context.Background(), PullRequest{Server: "http://" + tr.host, Name: "test/bomb:1"}, StoreOptions{Alias: "bomb"})
			if tc.wantErr != "" {
				assertKind(t, err, errdefs.ErrInvalidArgument)
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q, want %q", err, tc.wantErr)
				}
			} else {
				checkTooLarge(t, err, "1MiB")
			}
			checkLeftNothing(t, db, dir)
			if got := tr.blobGets(layerDigest(t, layers[0])); (got > 0) != tc.fetched {
				t.Errorf("first layer fetched %d times, want fetched=%v", got, tc.fetched)
			}
		})
	}
}

// pushUnsized tags, as repoTag, img's manifest with its first layer's size
// dropped (the blobs are pushed already).
func (tr *testRegistry) pushUnsized(t *testing.T, repoTag string, img v1.Image) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	m = m.DeepCopy()
	m.Layers[0].Size = 0
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPut, "http://"+tr.host+"/v2/"+strings.Replace(repoTag, ":", "/manifests/", 1), bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", string(m.MediaType))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("put manifest: %s", resp.Status)
	}
}

// TestShiftedTreeCapped: the cap is read at each unpack, so a pool's
// shifted tree unpacked after the cap was lowered is refused, and leaves
// nothing in the store.
func TestShiftedTreeCapped(t *testing.T) {
	limit := int64(64 << 20)
	s, _, dir := cappedService(t, &limit)
	img, err := s.Import(context.Background(), bytes.NewReader(buildTar(t, reg("two", strings.Repeat("x", 2<<20), 0o644))), ImportMeta{})
	if err != nil {
		t.Fatal(err)
	}
	before := storeEntries(t, dir)
	limit = testCap
	_, err = unpackShifted(t, s, img.Fingerprint, &driver.IDMap{HostID: 1000000, Size: 65536})
	checkTooLarge(t, err, "1MiB")
	if after := storeEntries(t, dir); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("store changed by a refused unpack:\n before %v\n after  %v", before, after)
	}
}

// TestSparseStaysSparse: a sparse entry is written with holes, in GNU
// tar's old format and its PAX format, and reads back as declared.
func TestSparseStaysSparse(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to unpack owned files")
	}
	const size = 64 << 20
	archives := map[string][]byte{
		"old GNU": gnuSparseTar(t, "sparse", size, map[int64]byte{0: 'a', 32 << 20: 'b', size - 512: 'c'}),
	}
	if _, err := exec.LookPath("tar"); err == nil {
		src := t.TempDir()
		f, err := os.Create(filepath.Join(src, "sparse"))
		if err != nil {
			t.Fatal(err)
		}
		for off, c := range map[int64]byte{0: 'a', 32 << 20: 'b', size - 512: 'c'} {
			if _, err := f.WriteAt(bytes.Repeat([]byte{c}, 512), off); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
		out, err := exec.Command("tar", "--sparse", "--format=pax", "-cf", "-", "-C", src, "sparse").Output()
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		archives["GNU PAX"] = out
	} else {
		t.Log("GNU tar's PAX sparse format not tested: tar not installed")
	}
	for name, data := range archives {
		t.Run(name, func(t *testing.T) {
			limit := int64(testCap) // the apparent 64MiB counts: refused
			s, db, dir := cappedService(t, &limit)
			_, err := s.Import(context.Background(), bytes.NewReader(data), ImportMeta{})
			checkTooLarge(t, err, "1MiB")
			checkLeftNothing(t, db, dir)

			limit = 128 << 20
			img, err := s.Import(context.Background(), bytes.NewReader(data), ImportMeta{})
			if err != nil {
				t.Fatal(err)
			}
			root, err := s.RootFS(context.Background(), img.Fingerprint)
			if err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(root, "sparse")
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil {
				t.Fatal(err)
			}
			if st.Size != size {
				t.Errorf("size %d, want %d", st.Size, size)
			}
			if st.Blocks*512 > 1<<20 {
				t.Errorf("%d bytes allocated for 1.5KiB of data: not sparse", st.Blocks*512)
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			for off, want := range map[int64]byte{0: 'a', 511: 'a', 512: 0, 16 << 20: 0, 32 << 20: 'b', size - 513: 0, size - 1: 'c'} {
				b := make([]byte, 1)
				if _, err := f.ReadAt(b, off); err != nil || b[0] != want {
					t.Errorf("byte at %d: %q (%v), want %q", off, b[0], err, want)
				}
			}
		})
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0B", 1000: "1000B", 1 << 20: "1MiB", 10 << 30: "10GiB", 3 << 29: "1536MiB",
		1<<30 + 1: "1.00GiB", 64 << 30: "64GiB", 1 << 40: "1TiB",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestDefaultCap: unset, the cap is the smaller of the ceiling and half
// the free space, and says so.
func TestDefaultCap(t *testing.T) {
	s, _, _, _ := newTestService(t)
	for _, f := range []func() int64{nil, func() int64 { return 0 }} {
		if f != nil {
			s.SetMaxUnpackedSize(f)
		}
		half := func() int64 {
			var st unix.Statfs_t
			if err := unix.Statfs(s.rootfsDir, &st); err != nil {
				t.Fatal(err)
			}
			return min(defaultUnpackedCeiling, int64(st.Bavail)*st.Bsize/2)
		}
		// Free space may move while other work writes: the cap lies
		// between what it was just before and just after.
		before := half()
		c, err := s.newCap()
		if err != nil {
			t.Fatal(err)
		}
		after := half()
		if c.limit < min(before, after) || c.limit > max(before, after) {
			t.Errorf("default cap %d, want the smaller of the ceiling and half the free space (%d..%d)", c.limit, before, after)
		}
		if !strings.Contains(c.exceeded().Error(), "images.max_unpacked_size is not set") {
			t.Errorf("error %q does not say where the cap comes from", c.exceeded())
		}
	}
	s.SetMaxUnpackedSize(func() int64 { return 5 << 20 })
	if c, _ := s.newCap(); c.limit != 5<<20 || !strings.Contains(c.exceeded().Error(), "image expands beyond 5MiB (the server's images.max_unpacked_size)") {
		t.Errorf("set cap: %d, %q", c.limit, c.exceeded())
	}
}
