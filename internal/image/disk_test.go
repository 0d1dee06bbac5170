package image

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func mbrDisk(size int) []byte {
	b := make([]byte, size)
	b[510], b[511] = 0x55, 0xaa
	return b
}

func gptDisk(size int) []byte {
	b := mbrDisk(size) // a protective MBR, then the GPT header
	copy(b[512:], "EFI PART")
	return b
}

func TestDetectDisk(t *testing.T) {
	random := make([]byte, 4096)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range random {
		random[i] = byte(r.IntN(256))
	}
	random[510], random[511] = 0, 0 // random, but not by chance an MBR
	tarball := buildTar(t, reg("etc/hostname", "x\n", 0o644))
	gz := compress(t, "gzip", tarball)
	gzMBR := append([]byte{}, gz...)
	for len(gzMBR) < 520 {
		gzMBR = append(gzMBR, 0)
	}
	gzMBR[510], gzMBR[511] = 0x55, 0xaa // a compressed stream whose byte 510 looks like an MBR
	tarMBR := append([]byte{}, tarball...)
	tarMBR[510], tarMBR[511] = 0x55, 0xaa

	for _, tc := range []struct {
		name string
		head []byte
		want string
	}{
		{"qcow2 header", append([]byte("QFI\xfb\x00\x00\x00\x03"), make([]byte, 600)...), "qcow2"},
		{"qcow2 magic, short", []byte("QFI\xfb"), "qcow2"},
		{"raw MBR", mbrDisk(1024), "raw"},
		{"raw GPT", gptDisk(1024), "raw"},
		{"GPT without MBR signature", func() []byte { b := make([]byte, 1024); copy(b[512:], "EFI PART"); return b }(), "raw"},
		{"random bytes", random, ""},
		{"zeros", make([]byte, 1024), ""},
		{"tarball", tarball, ""},
		{"tarball with 0x55aa at 510", tarMBR, ""},
		{"gzip with 0x55aa at 510", gzMBR, ""},
		{"short", []byte("hello"), ""},
		{"empty", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			head := tc.head
			if len(head) > diskHeadSize {
				head = head[:diskHeadSize]
			}
			if got := detectDisk(head); got != tc.want {
				t.Fatalf("detectDisk = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCheckDiskInfo(t *testing.T) {
	ok := func(format string) diskInfo { return diskInfo{Format: format, VirtualSize: 1 << 20} }
	backing := ok("qcow2")
	backing.BackingFilename = "/etc/shadow"
	dataFile := ok("qcow2")
	dataFile.FormatSpecific.Data.DataFile = "/dev/sda"
	for _, tc := range []struct {
		name    string
		claimed string
		size    int64
		info    diskInfo
		wantErr string
	}{
		{"qcow2", "qcow2", 12345, ok("qcow2"), ""},
		{"raw", "raw", 1 << 20, ok("raw"), ""},
		{"format differs", "qcow2", 1 << 20, ok("raw"), "not a disk image"},
		{"no size", "raw", 0, diskInfo{Format: "raw"}, "not a disk image"},
		{"raw not whole sectors", "raw", 1000, ok("raw"), "512-byte sectors"},
		{"backing file", "qcow2", 1 << 20, backing, "backing file"},
		{"external data file", "qcow2", 1 << 20, dataFile, "data file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkDiskInfo(tc.claimed, tc.size, tc.info)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
			}
			assertKind(t, err, errdefs.ErrInvalidArgument)
		})
	}
}

// TestImportDisk imports real disk images (made by qemu-img) and files
// that only look like disks: the former are stored as they are, typed
// virtual-machine; the latter are refused and nothing is left.
func TestImportDisk(t *testing.T) {
	qemuImg, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skip("qemu-img not installed (scripts/deps.sh installs it)")
	}
	tmp := t.TempDir()
	qcow := filepath.Join(tmp, "disk.qcow2")
	if out, err := exec.Command(qemuImg, "create", "-q", "-f", "qcow2", qcow, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	qcowBytes, err := os.ReadFile(qcow)
	if err != nil {
		t.Fatal(err)
	}
	withBacking := filepath.Join(tmp, "backed.qcow2")
	if out, err := exec.Command(qemuImg, "create", "-q", "-f", "qcow2", "-b", qcow, "-F", "qcow2", withBacking).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	backedBytes, _ := os.ReadFile(withBacking)
	corrupt := append([]byte("QFI\xfb"), bytes.Repeat([]byte{0xff}, 4096)...)

	for _, tc := range []struct {
		name    string
		data    []byte
		format  string
		wantErr string
	}{
		{"qcow2", qcowBytes, formatDiskQcow2, ""},
		{"raw GPT", gptDisk(1 << 20), formatDiskRaw, ""},
		{"raw MBR", mbrDisk(64 << 10), formatDiskRaw, ""},
		{"qcow2 magic, garbage", corrupt, "", "not a disk image"},
		{"raw, not whole sectors", mbrDisk(1000), "", "not a disk image"},
		{"qcow2 with a backing file", backedBytes, "", "backing file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, db, _, dir := newTestService(t)
			img, err := s.Import(context.Background(), bytes.NewReader(tc.data), ImportMeta{Alias: "disk"})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				assertKind(t, err, errdefs.ErrInvalidArgument)
				if imgs, aliases := db.counts(); imgs+aliases != 0 {
					t.Fatalf("%d images and %d aliases recorded after a refused import", imgs, aliases)
				}
				if e := storeEntries(t, dir); len(e) != 0 {
					t.Fatalf("store holds %v after a refused import", e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if img.Type != typeVM {
				t.Fatalf("type %q, want %q", img.Type, typeVM)
			}
			rec, err := db.GetImage(context.Background(), "", img.Fingerprint)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Format != tc.format {
				t.Fatalf("format %q, want %q", rec.Format, tc.format)
			}
			p, format, ok, err := s.Disk(context.Background(), img.Fingerprint)
			if err != nil || !ok || "disk-"+format != tc.format {
				t.Fatalf("Disk = %q %q %v %v", p, format, ok, err)
			}
			if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, tc.data) {
				t.Fatalf("stored disk differs from the upload (%v)", err)
			}
			if e := storeEntries(t, dir); len(e) != 1 {
				t.Fatalf("store holds %v, want the blob alone", e)
			}
			if _, err := s.RootFS(context.Background(), img.Fingerprint); err == nil || !strings.Contains(err.Error(), "virtual-machine") {
				t.Fatalf("RootFS of a disk image: %v", err)
			}
			if err := s.Delete(context.Background(), img.Fingerprint, nil); err != nil {
				t.Fatal(err)
			}
			if e := storeEntries(t, dir); len(e) != 0 {
				t.Fatalf("store holds %v after delete", e)
			}
		})
	}
}

// TestImportLXDSplitVM imports LXD's split virtual-machine image: a
// metadata tarball and rootfs.img, the disk. The disk is stored as the
// split rootfs, with no tree; a fake disk is refused and leaves nothing.
func TestImportLXDSplitVM(t *testing.T) {
	qemuImg, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skip("qemu-img not installed (scripts/deps.sh installs it)")
	}
	qcow := filepath.Join(t.TempDir(), "rootfs.img")
	if out, err := exec.Command(qemuImg, "create", "-q", "-f", "qcow2", qcow, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	disk, err := os.ReadFile(qcow)
	if err != nil {
		t.Fatal(err)
	}
	meta := compress(t, "xz", buildTar(t, reg("metadata.yaml", testMetadata, 0o644)))

	t.Run("qcow2", func(t *testing.T) {
		s, db, _, dir := newTestService(t)
		fp, err := splitImport(s, meta, disk, ImportMeta{Alias: "vm"})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := db.GetImage(context.Background(), "", fp)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Type != typeVM || rec.Format != formatLXDSplitQcow2 || rec.Architecture != "x86_64" {
			t.Fatalf("record type %q format %q architecture %q", rec.Type, rec.Format, rec.Architecture)
		}
		p, format, ok, err := s.Disk(context.Background(), fp)
		if err != nil || !ok || format != "qcow2" || p != s.splitRootfsPath(fp) {
			t.Fatalf("Disk = %q %q %v %v", p, format, ok, err)
		}
		if e := storeEntries(t, dir); len(e) != 2 {
			t.Fatalf("store holds %v, want the metadata and the disk", e)
		}
		ex, err := s.Export(context.Background(), fp)
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		if ex.Rootfs == nil || ex.RootfsName != fp+".img" || ex.RootfsSize != int64(len(disk)) {
			t.Fatalf("export: rootfs %q (%d bytes)", ex.RootfsName, ex.RootfsSize)
		}
	})

	t.Run("fake disk", func(t *testing.T) {
		s, db, _, dir := newTestService(t)
		fake := append([]byte("QFI\xfb"), bytes.Repeat([]byte{0xff}, 4096)...)
		_, err := splitImport(s, meta, fake, ImportMeta{Alias: "vm"})
		if err == nil || !strings.Contains(err.Error(), "not a disk image") {
			t.Fatalf("error %v, want one saying \"not a disk image\"", err)
		}
		assertKind(t, err, errdefs.ErrInvalidArgument)
		if imgs, aliases := db.counts(); imgs+aliases != 0 {
			t.Fatalf("%d images and %d aliases recorded", imgs, aliases)
		}
		if e := storeEntries(t, dir); len(e) != 0 {
			t.Fatalf("store holds %v", e)
		}
	})
}
