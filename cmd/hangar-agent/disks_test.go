package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// fakeSysfs writes files under a temporary /sys/class/block.
func fakeSysfs(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestScanDisks(t *testing.T) {
	sys := fakeSysfs(t, map[string]string{
		"vda/serial":            "root\n",
		"vda1/partition":        "1\n",
		"vdb/serial":            "",             // no serial: not linked
		"vdc/serial":            "bad/serial\n", // cannot be a link name
		"sda/device/vendor":     "QEMU    \n",   // SCSI pads vendor and model with blanks
		"sda/device/model":      "QEMU HARDDISK   \n",
		"sda/device/vpd_pg80":   "\x00\x80\x00\x04data",
		"sdb/device/vpd_pg80":   "\x00\x80\x00\x09", // length past the end
		"nvme0n1/device/serial": "fast                \n",
		"nvme0n1/device/model":  "QEMU NVMe Ctrl                          \n",
		"loop0/size":            "0\n",
	})
	got := scanDisks(sys)
	want := []diskInfo{
		{name: "nvme0n1", bus: "nvme", serial: "fast", link: "nvme-QEMU_NVMe_Ctrl_fast"},
		{name: "sda", bus: "virtio-scsi", serial: "data", link: "scsi-0QEMU_QEMU_HARDDISK_data"},
		{name: "vda", bus: "virtio-blk", serial: "root", link: "virtio-root"},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("disks\n%+v\nwant\n%+v", got, want)
	}
	if got := scanDisks(filepath.Join(sys, "missing")); got != nil {
		t.Fatalf("disks of a missing sysfs: %+v", got)
	}
}

// TestParseExt4Super reads the superblock of images mkfs.ext4 makes, with
// and without 64-bit block numbers.
func TestParseExt4Super(t *testing.T) {
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		t.Skip("mkfs.ext4 not installed (e2fsprogs)")
	}
	for _, tc := range []struct {
		name    string
		opts    []string
		size    int64
		bs      int64
		is64bit bool
	}{
		{"64bit, 4 KiB blocks", []string{"-b", "4096", "-O", "64bit"}, 64 << 20, 4096, true},
		{"32-bit, 1 KiB blocks", []string{"-b", "1024", "-O", "^64bit"}, 32 << 20, 1024, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "fs.ext4")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, tc.size); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"-q", "-F", "-t", "ext4"}, tc.opts...)
			if out, err := exec.Command(mkfs, append(args, img)...).CombinedOutput(); err != nil {
				t.Fatalf("mkfs: %v: %s", err, out)
			}
			f, err := os.Open(img)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			sb := make([]byte, 1024)
			if _, err := f.ReadAt(sb, 1024); err != nil {
				t.Fatal(err)
			}
			s, err := parseExt4Super(sb)
			if err != nil {
				t.Fatal(err)
			}
			if s.blockSize != tc.bs || s.is64bit != tc.is64bit || s.blocks != uint64(tc.size/tc.bs) {
				t.Fatalf("superblock %+v, want %d blocks of %d, 64bit %v", s, tc.size/tc.bs, tc.bs, tc.is64bit)
			}
		})
	}
	if _, err := parseExt4Super(make([]byte, 1024)); err == nil {
		t.Fatal("zeros parsed as ext4")
	}
	if _, err := parseExt4Super(nil); err == nil {
		t.Fatal("nothing parsed as ext4")
	}
}
