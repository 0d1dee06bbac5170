package drivers

import (
	"errors"
	"strings"
	"testing"
	"unsafe"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestValidatePoolConfig(t *testing.T) {
	tests := []struct {
		name    string
		driver  string
		config  map[string]string
		wantErr string // "" for valid; else a substring of the 400's message
	}{
		{"dir empty", "dir", nil, ""},
		{"dir source", "dir", map[string]string{"source": "/srv/pool"}, ""},
		{"dir user key", "dir", map[string]string{"user.note": "x"}, ""},
		{"dir volume defaults", "dir", map[string]string{"volume.size": "10GiB", "volume.security.shifted": "true"}, ""},
		{"dir unknown key", "dir", map[string]string{"rsync.bwlimit": "1"}, `unknown config key "rsync.bwlimit" for a dir pool`},
		{"dir size is btrfs only", "dir", map[string]string{"size": "1GiB"}, `unknown config key "size"`},
		{"dir relative source", "dir", map[string]string{"source": "srv/pool"}, "not an absolute path"},
		{"dir unclean source", "dir", map[string]string{"source": "/srv/../pool"}, "not a clean path"},
		{"btrfs full", "btrfs", map[string]string{"size": "20GiB", "btrfs.mount_options": "noatime,compress=zstd", "source": "/dev/sdb"}, ""},
		{"btrfs size units", "btrfs", map[string]string{"size": "200MB"}, ""},
		{"btrfs size bad", "btrfs", map[string]string{"size": "20 gigs"}, "size:"},
		{"btrfs size too small", "btrfs", map[string]string{"size": "64MiB"}, "below the 128 MiB"},
		{"btrfs bad mount options", "btrfs", map[string]string{"btrfs.mount_options": "noatime,,x"}, "mount options"},
		{"btrfs unknown volume default", "btrfs", map[string]string{"volume.block.filesystem": "ext4"}, `unknown config key "volume.block.filesystem"`},
		{"btrfs bad volume size", "btrfs", map[string]string{"volume.size": "big"}, "volume.size:"},
		{"shifted and unmapped", "dir", map[string]string{"volume.security.shifted": "true", "volume.security.unmapped": "yes"}, "mutually exclusive"},
		{"bad bool", "dir", map[string]string{"volume.security.shifted": "maybe"}, "not a boolean"},
		{"unknown driver", "ext9", nil, `unknown storage driver "ext9" (known: btrfs, dir; not built here: ceph, cephfs, cephobject, lvm, zfs)`},
		{"ceph", "ceph", nil, "not built in this hangard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePoolConfig(tt.driver, tt.config)
			checkInvalid(t, err, tt.wantErr)
		})
	}
}

func TestValidateVolumeConfig(t *testing.T) {
	fsCustom := Volume{Type: TypeCustom, Name: "v", Content: ContentFilesystem}
	blkCustom := Volume{Type: TypeCustom, Name: "v", Content: ContentBlock}
	ct := Volume{Type: TypeContainer, Name: "c", Content: ContentFilesystem}
	tests := []struct {
		name    string
		vol     Volume
		config  map[string]string
		wantErr string
	}{
		{"size", fsCustom, map[string]string{"size": "2GiB"}, ""},
		{"size bytes", blkCustom, map[string]string{"size": "1048576"}, ""},
		{"size decimal unit", ct, map[string]string{"size": "5GB"}, ""},
		{"size bad", fsCustom, map[string]string{"size": "2 GiB"}, "size:"},
		{"block size zero", blkCustom, map[string]string{"size": "0"}, "above 0"},
		{"shifted", fsCustom, map[string]string{"security.shifted": "true"}, ""},
		{"unmapped", fsCustom, map[string]string{"security.unmapped": "off"}, ""},
		{"shifted bad bool", fsCustom, map[string]string{"security.shifted": "sure"}, "not a boolean"},
		{"shifted on block", blkCustom, map[string]string{"security.shifted": "true"}, "custom filesystem volumes only"},
		{"shifted on container", ct, map[string]string{"security.shifted": "true"}, "custom filesystem volumes only"},
		{"both", fsCustom, map[string]string{"security.shifted": "1", "security.unmapped": "true"}, "mutually exclusive"},
		{"user key", blkCustom, map[string]string{"user.x": "y"}, ""},
		{"unknown", fsCustom, map[string]string{"block.filesystem": "ext4"}, `unknown config key "block.filesystem" for a custom volume`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkInvalid(t, ValidateVolumeConfig("btrfs", tt.vol, tt.config), tt.wantErr)
		})
	}
	checkInvalid(t, ValidateVolumeConfig("lvm", fsCustom, nil), "lvm")
}

func TestVolumeDefaults(t *testing.T) {
	pool := map[string]string{"volume.size": "1GiB", "volume.security.shifted": "true", "source": "/x", "user.a": "b"}
	got := VolumeDefaults(pool, Volume{Type: TypeCustom, Name: "v", Content: ContentFilesystem})
	if len(got) != 2 || got["size"] != "1GiB" || got["security.shifted"] != "true" {
		t.Errorf("custom filesystem defaults = %v", got)
	}
	got = VolumeDefaults(pool, Volume{Type: TypeContainer, Name: "c", Content: ContentFilesystem})
	if len(got) != 1 || got["size"] != "1GiB" {
		t.Errorf("container defaults = %v (security.* applies to custom filesystem volumes only)", got)
	}
}

// TestUnavailable: lvm and zfs are refused with the kernel feature they
// lack, read from this kernel (this machine has neither; a kernel that
// has them gets "not built" instead).
func TestUnavailable(t *testing.T) {
	want := map[string]string{
		"lvm": "needs device-mapper, which this kernel does not have",
		"zfs": "needs the zfs kernel module, which this kernel does not have",
	}
	if hasDeviceMapper() {
		want["lvm"] = `storage driver "lvm" is not built in this hangard`
	}
	if ok, _ := pathExists("/sys/module/zfs"); ok {
		want["zfs"] = `storage driver "zfs" is not built in this hangard`
	}
	for name, msg := range want {
		_, err := Load(name, Pool{Name: "p", Dir: t.TempDir()})
		checkInvalid(t, err, msg)
		checkInvalid(t, ValidatePoolConfig(name, nil), msg)
	}
	if got := Names(); strings.Join(got, ",") != "btrfs,dir" {
		t.Errorf("Names() = %v", got)
	}
}

func TestCheckVolume(t *testing.T) {
	tests := []struct {
		vol     Volume
		wantErr string
	}{
		{Volume{TypeCustom, "v1", ContentFilesystem}, ""},
		{Volume{TypeImage, strings.Repeat("a", 64) + "-1000000-65536", ContentBlock}, ""},
		{Volume{TypeCustom, "../etc", ContentFilesystem}, "not usable as a file name"},
		{Volume{TypeCustom, "a/b", ContentFilesystem}, "not usable as a file name"},
		{Volume{TypeCustom, ".tmp-x", ContentFilesystem}, "not usable as a file name"},
		{Volume{TypeCustom, "", ContentFilesystem}, "not usable as a file name"},
		{Volume{TypeCustom, strings.Repeat("a", 201), ContentFilesystem}, "longer than 200"},
		{Volume{TypeCustom, "x.block", ContentFilesystem}, "marks block volumes"},
		{Volume{TypeCustom, "x.block", ContentBlock}, ""},
		{Volume{"snapshot", "x", ContentFilesystem}, "unknown volume type"},
		{Volume{TypeCustom, "x", "tape"}, "unknown volume content type"},
		{Volume{TypeCustom, "x", ContentISO}, ""},
		{Volume{TypeCustom, "x.iso", ContentFilesystem}, ""},
		{Volume{TypeImage, "x", ContentISO}, "only custom volumes"},
		{Volume{TypeCustom, "p@q_x", ContentISO}, ""},
	}
	for _, tt := range tests {
		checkInvalid(t, checkVolume(tt.vol), tt.wantErr)
	}
}

// TestBtrfsStructSizes: the ioctl argument structs are the kernel's size
// (linux/btrfs.h); a wrong size would make the kernel read past them.
func TestBtrfsStructSizes(t *testing.T) {
	sizes := map[string]uintptr{
		"vol_args":        unsafe.Sizeof(btrfsVolArgs{}),
		"vol_args_v2":     unsafe.Sizeof(btrfsVolArgsV2{}),
		"search_args":     unsafe.Sizeof(btrfsSearchArgs{}),
		"ino_lookup_args": unsafe.Sizeof(btrfsInoLookupArgs{}),
	}
	for name, got := range sizes {
		if got != 4096 {
			t.Errorf("btrfs_ioctl_%s is %d bytes, the kernel's is 4096", name, got)
		}
	}
	if off := unsafe.Offsetof(btrfsVolArgsV2{}.name); off != 56 {
		t.Errorf("vol_args_v2.name at %d, want 56", off)
	}
	if off := unsafe.Offsetof(btrfsSearchArgs{}.buf); off != 104 {
		t.Errorf("search_args.buf at %d, want 104", off)
	}
}

func TestSplitMountOptions(t *testing.T) {
	flags, data := splitMountOptions("noatime,compress=zstd,user_subvol_rm_allowed,nodev,rw")
	if data != "compress=zstd,user_subvol_rm_allowed" {
		t.Errorf("data = %q", data)
	}
	if flags&mountFlags["noatime"].flags == 0 || flags&mountFlags["nodev"].flags == 0 || flags&mountFlags["ro"].flags != 0 {
		t.Errorf("flags = %#x", flags)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/x\011`: "/x\t", `/plain`: "/plain", `/end\04`: `/end\04`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

// checkInvalid: err is nil when want is "", else a 400 whose message
// holds want.
func checkInvalid(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Errorf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Errorf("no error, want one with %q", want)
		return
	}
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("error %q is not a 400 (invalid argument)", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}
