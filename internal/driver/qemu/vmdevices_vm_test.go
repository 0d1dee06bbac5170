package qemu

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
)

// TestVMDevicesQMP boots a VM by firmware (no OS: Start returns once QMP
// answers) with a CD-ROM, read-only disks on every bus, two VNC displays
// and a TPM, and reads them back from QEMU over QMP; then saves it to
// standby and restores it, TPM included.
func TestVMDevicesQMP(t *testing.T) {
	needQEMU(t)
	for _, p := range []string{"swtpm", "xorriso"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s not installed (scripts/deps.sh installs it)", p)
		}
	}
	if _, err := firmwareFor(DefaultFirmwareDir, false); err != nil {
		t.Skipf("no UEFI firmware: %v", err)
	}
	tmp := t.TempDir()
	mk := func(name string, size int) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root := filepath.Join(tmp, "root.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", root, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	iso := filepath.Join(tmp, "cd.iso")
	if out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-o", iso, mk("hello.txt", 6)).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v: %s", err, out)
	}
	d, err := New(Config{Dir: filepath.Join(tmp, "vms"), CgroupParent: "/hangar-vm-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	ctx := context.Background()
	spec := driver.Spec{
		ID: "dev1", Root: driver.Root{Disk: &driver.Disk{Name: "root", Path: root, Format: "qcow2"}, Firmware: true},
		Limits: driver.Limits{CPUCount: 1, MemoryBytes: MinMemory},
		Disks: []driver.Disk{
			{Name: "cd", Path: iso, Format: "raw", CDROM: true, BootPriority: 1},
			{Name: "usb", Path: mk("usb.raw", 1<<20), Format: "raw", Bus: busUSB, ReadOnly: true},
			{Name: "blk", Path: mk("blk.raw", 1<<20), Format: "raw", ReadOnly: true},
			{Name: "scsi", Path: mk("scsi.raw", 1<<20), Format: "raw", Bus: busVirtioSCSI, ReadOnly: true},
			{Name: "nvme", Path: mk("nvme.raw", 1<<20), Format: "raw", Bus: busNVMe, ReadOnly: true},
		},
		Displays: []driver.Display{{Name: "a", Protocol: "vnc", Width: 800, Height: 600}, {Name: "b", Protocol: "vnc", Password: "pw"},
			{Name: "s", Protocol: "spice", Password: "a spice ticket"}},
		TPM: &driver.TPM{Name: "tpm"},
	}
	dir := filepath.Join(tmp, "vms", "dev1")
	t.Run("port in use", func(t *testing.T) {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		bad := spec
		bad.Displays = []driver.Display{{Name: "a", Protocol: "vnc", Port: l.Addr().(*net.TCPAddr).Port}}
		_, err = d.Start(ctx, bad)
		if err == nil || !strings.Contains(err.Error(), "in use") {
			t.Fatalf("start on a port in use: %v, want an error saying so", err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Fatalf("a failed first start left %s (%v)", dir, err)
		}
		if d.get("dev1") != nil {
			t.Fatal("a failed start left the VM tracked")
		}
	})
	if _, err := d.Start(ctx, spec); err != nil {
		t.Fatalf("start: %v", err)
	}
	defer d.Stop(ctx, "dev1", syscall.SIGTERM, 0, true)
	qmp := func(cmd string, out any) {
		t.Helper()
		_, mon, err := d.runningVM("dev1")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := mon.run(cmd, nil)
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: %v: %s", cmd, err, raw)
		}
	}
	check := func(t *testing.T) {
		var blocks []struct {
			QDev      string `json:"qdev"`
			Removable bool   `json:"removable"`
			Inserted  *struct {
				RO   bool   `json:"ro"`
				File string `json:"file"`
			} `json:"inserted"`
		}
		qmp("query-block", &blocks)
		ro := map[string]bool{}
		for _, b := range blocks {
			for _, n := range []string{"cd", "usb", "blk", "scsi", "nvme", "root"} {
				if b.QDev == "disk-"+n || strings.Contains(b.QDev, "/disk-"+n+"/") {
					if b.Inserted == nil {
						t.Errorf("%s: no medium: %+v", n, b)
						continue
					}
					ro[n] = b.Inserted.RO
					if n == "cd" && (!b.Removable || b.Inserted.File != iso) {
						t.Errorf("CD-ROM: removable %v, file %q, want a removable drive holding %s", b.Removable, b.Inserted.File, iso)
					}
				}
			}
		}
		want := map[string]bool{"cd": true, "usb": true, "blk": true, "scsi": true, "nvme": true, "root": false}
		for n, w := range want {
			if n == "nvme" && len(spec.Disks) < 5 {
				continue
			}
			if got, ok := ro[n]; !ok || got != w {
				t.Errorf("disk %s: in query-block %v, ro %v, want ro %v (%+v)", n, ok, got, w, blocks)
			}
		}
		var vnc []struct {
			ID      string `json:"id"`
			Auth    string `json:"auth"`
			Service string `json:"service"`
			Host    string `json:"host"`
		}
		qmp("query-vnc-servers", &vnc)
		auth := map[string]string{}
		for _, s := range vnc {
			auth[s.ID] = s.Auth
		}
		if auth["vnc-a"] != "none" || auth["vnc-b"] != "vnc" {
			t.Errorf("VNC servers %+v, want vnc-a without auth and vnc-b with VNC auth", vnc)
		}
		var spice struct {
			Enabled bool   `json:"enabled"`
			Host    string `json:"host"`
			Auth    string `json:"auth"`
		}
		qmp("query-spice", &spice)
		if !spice.Enabled || spice.Host != "127.0.0.1" || spice.Auth != "spice" {
			t.Errorf("SPICE %+v, want enabled on 127.0.0.1 with a ticket", spice)
		}
		var tpms []struct {
			ID    string `json:"id"`
			Model string `json:"model"`
		}
		qmp("query-tpm", &tpms)
		if len(tpms) != 1 || tpms[0].Model != "tpm-crb" {
			t.Errorf("TPMs %+v, want one tpm-crb", tpms)
		}
		if _, err := os.Stat(filepath.Join(dir, fileTPMPid)); err != nil {
			t.Errorf("no swtpm pidfile: %v", err)
		}
	}
	t.Run("booted", check)
	// QEMU cannot save an NVMe controller: the standby runs without.
	if err := d.Stop(ctx, "dev1", syscall.SIGTERM, 0, true); err != nil {
		t.Fatal(err)
	}
	waitGone(t, dir)
	spec.Disks = spec.Disks[:4]
	if _, err := d.Start(ctx, spec); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Run("standby and restore", func(t *testing.T) {
		if err := d.Standby(ctx, "dev1", driver.Compression{}); err != nil {
			t.Fatalf("standby: %v", err)
		}
		waitGone(t, dir)
		if _, err := d.Start(ctx, spec); err != nil {
			t.Fatalf("restore: %v", err)
		}
		check(t)
	})
	if err := d.Stop(ctx, "dev1", syscall.SIGTERM, 0, true); err != nil {
		t.Fatal(err)
	}
	waitGone(t, dir)
	if m, _ := filepath.Glob(filepath.Join(dir, "tpm-tpm", "*")); len(m) == 0 {
		t.Error("the TPM's state is not kept")
	}
}

// waitGone waits for the swtpm of a VM directory to end.
func waitGone(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := os.Stat(filepath.Join(dir, fileTPMPid))
		if os.IsNotExist(err) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("swtpm still there after the VM ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
