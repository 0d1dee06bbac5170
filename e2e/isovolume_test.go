package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

// TestISOVolume imports an ISO image made by xorriso as a custom ISO
// volume (the hangar CLI; Debian's lxc 5.0.2 has no --type=iso), lists
// it (hangar, and lxc where installed), refuses a bad image leaving
// nothing, refuses what LXD refuses an ISO volume, and attaches it to a
// VM booted by firmware as a read-only CD-ROM first in the boot order,
// checked on QEMU's command line. A container cannot attach it.
func TestISOVolume(t *testing.T) {
	requireEFI(t)
	if lookPath("xorriso") == "" {
		t.Skip("xorriso is not installed (scripts/deps.sh installs it)")
	}
	d := startDaemon(t, "")
	tmp := t.TempDir()
	iso := filepath.Join(tmp, "data.iso")
	if err := os.WriteFile(filepath.Join(tmp, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-o", iso, filepath.Join(tmp, "hello.txt")).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v: %s", err, out)
	}
	st, err := os.Stat(iso)
	if err != nil {
		t.Fatal(err)
	}
	notISO := filepath.Join(tmp, "fake.iso")
	if err := os.WriteFile(notISO, make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	custom := filepath.Join(d.dir, "storage-pools", "default", "custom")
	onDisk := func(t *testing.T) []string {
		t.Helper()
		ents, err := os.ReadDir(custom)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	volume := func(t *testing.T, name string) (api.StorageVolume, bool) {
		t.Helper()
		var vols []api.StorageVolume
		if err := json.Unmarshal([]byte(d.on(t).must("storage", "volume", "list", "default", "--format", "json")), &vols); err != nil {
			t.Fatal(err)
		}
		for _, v := range vols {
			if v.Type == "custom" && v.Name == name {
				return v, true
			}
		}
		return api.StorageVolume{}, false
	}

	t.Run("import", func(t *testing.T) {
		d := d.on(t)
		before := onDisk(t)
		d.mustFail([]string{"storage", "volume", "import", "default", notISO, "bad", "--type=iso"}, "not an ISO image")
		if _, ok := volume(t, "bad"); ok {
			t.Fatal("a refused import left a volume")
		}
		if got := onDisk(t); strings.Join(got, " ") != strings.Join(before, " ") {
			t.Fatalf("a refused import left %v on disk (before %v)", got, before)
		}
		d.mustFailUsage([]string{"storage", "volume", "import", "default", iso, "cd"}, "--type=iso")
		d.must("storage", "volume", "import", "default", iso, "cd", "--type=iso")
		v, ok := volume(t, "cd")
		if !ok || v.ContentType != api.StorageContentTypeISO || v.Config["size"] != strconv.FormatInt(st.Size(), 10) {
			t.Fatalf("volume %+v (listed %v), want content_type iso and size %d", v, ok, st.Size())
		}
		if lookPath("lxc") != "" {
			out, errOut, code := d.lxc("storage", "volume", "show", "default", "cd")
			if code != 0 || !strings.Contains(out, "content_type: iso") {
				t.Errorf("lxc storage volume show: %d %s %s", code, out, errOut)
			}
		}
		d.mustFail([]string{"storage", "volume", "import", "default", iso, "cd", "--type=iso"}, "already exists")
	})

	t.Run("refused", func(t *testing.T) {
		d := d.on(t)
		d.mustFail([]string{"storage", "volume", "resize", "default", "cd", "1GiB"}, "cannot be resized")
		d.mustFail([]string{"storage", "volume", "snapshot", "create", "default", "cd", "s1"}, "ISO volume")
		d.mustFailUsage([]string{"storage", "volume", "create", "default", "empty", "--type=iso"}, "imported")
		d.importImages()
		d.must("init", "busybox", "c1")
		d.mustFail([]string{"config", "device", "add", "c1", "cd", "disk", "pool=default", "source=cd", "path=/mnt"}, "ISO", "virtual machine")
		d.must("delete", "c1")
	})

	disk := filepath.Join(tmp, "empty.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", disk, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	d.must("image", "import", disk, "--alias", "efi")
	d.must("init", "efi", "v1", "--vm")

	t.Run("CD-ROM of a VM", func(t *testing.T) {
		d := d.on(t)
		d.mustFail([]string{"config", "device", "add", "v1", "cd", "disk", "pool=default", "source=cd", "readonly=false"}, "read-only")
		d.must("config", "device", "add", "v1", "cd", "disk", "pool=default", "source=cd", "boot.priority=10")
		if v, _ := volume(t, "cd"); !strings.Contains(strings.Join(v.UsedBy, " "), "/1.0/instances/v1") {
			t.Errorf("used_by %v", v.UsedBy)
		}
		d.mustFail([]string{"storage", "volume", "delete", "default", "cd"}, "in use")
		d.must("start", "v1")
		args := procCmdline(t, d.pid("v1"))
		all := strings.Join(args, " ")
		if !strings.Contains(all, "scsi-cd,bus=scsi0.0,channel=0,scsi-id=0,lun=0,id=disk-cd,drive=d-cd,serial=cd,bootindex=0") {
			t.Errorf("no CD-ROM first in boot order: %s", all)
		}
		// The image's node, and the format node over it, read-only.
		path := filepath.Join(custom, "cd@iso", "root.img")
		found := false
		for i, a := range args {
			if a != "-blockdev" || i+1 >= len(args) || !strings.Contains(args[i+1], path) {
				continue
			}
			var node struct {
				ReadOnly bool `json:"read-only"`
				File     struct {
					Filename string `json:"filename"`
					ReadOnly bool   `json:"read-only"`
				} `json:"file"`
			}
			if err := json.Unmarshal([]byte(args[i+1]), &node); err != nil {
				t.Fatalf("-blockdev %s: %v", args[i+1], err)
			}
			found = node.File.Filename == path && node.ReadOnly && node.File.ReadOnly
		}
		if !found {
			t.Errorf("no read-only -blockdev of %s: %s", path, all)
		}
		d.must("stop", "v1", "--force")
		d.must("config", "device", "remove", "v1", "cd")
		d.must("delete", "v1")
		d.must("storage", "volume", "rename", "default", "cd", "cd2")
		d.must("storage", "volume", "delete", "default", "cd2")
		if _, ok := volume(t, "cd2"); ok {
			t.Fatal("deleted volume still listed")
		}
	})
}
