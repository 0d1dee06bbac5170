package e2e

import (
	"bytes"
	"crypto/des"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestVMDevices runs one VM booted by firmware (it need not finish
// booting) with two VNC displays (one with a password), a TPM, a CD-ROM
// and a read-only USB disk, and checks each from outside: VNC speaks RFB
// on its recorded port and its password works, swtpm runs while the VM
// does, QEMU has the devices; a daemon killed with -9 finds it all again.
func TestVMDevices(t *testing.T) {
	requireEFI(t)
	for _, p := range []string{"swtpm", "xorriso"} {
		if lookPath(p) == "" {
			t.Skipf("%s is not installed (scripts/deps.sh installs it)", p)
		}
	}
	d := startDaemon(t, "")
	tmp := t.TempDir()
	disk := filepath.Join(tmp, "empty.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", disk, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	d.must("image", "import", disk, "--alias", "efi")
	iso := filepath.Join(tmp, "data.iso")
	if err := os.WriteFile(filepath.Join(tmp, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-o", iso, filepath.Join(tmp, "hello.txt")).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v: %s", err, out)
	}
	usbImg := filepath.Join(tmp, "usb.raw")
	if err := os.WriteFile(usbImg, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("bad input", func(t *testing.T) {
		d := d.on(t)
		d.must("init", "efi", "bad", "--vm")
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"disp", "display", "password=123456789"}, "at most 8"},
			{[]string{"disp", "display", "protocol=rdp"}, "protocol"},
			{[]string{"disp", "display", "port=80"}, "port"},
			{[]string{"disp", "display", "port=5000"}, "5900"},
			{[]string{"disp", "display", "width=100000", "height=600"}, "width"},
			{[]string{"disp", "display", "colour=red"}, "invalid key"},
			{[]string{"t", "tpm", "bogus=1"}, "invalid key"},
			{[]string{"cd", "disk", "source=" + iso, "path=/mnt"}, "CD-ROM"},
			{[]string{"u", "disk", "source=" + usbImg, "io.bus=firewire"}, "io.bus"},
		} {
			d.mustFail(append([]string{"config", "device", "add", "bad"}, c.args...), c.want)
		}
		d.importImages()
		d.must("init", "busybox", "c1")
		d.mustFail([]string{"config", "device", "add", "c1", "disp", "display"}, "virtual machines only")
		d.mustFail([]string{"config", "device", "add", "c1", "t", "tpm"}, "tpm_vtpm_proxy")
		d.mustFail([]string{"config", "device", "add", "c1", "cd", "disk", "source=" + iso, "path=/mnt"}, "ISO")
		d.must("delete", "c1")
		d.must("delete", "bad")
	})

	d.must("init", "efi", "v1", "--vm")
	d.must("config", "device", "add", "v1", "screen", "display", "width=1024", "height=768")
	d.must("config", "device", "add", "v1", "second", "display", "password=s3cret")
	d.must("config", "device", "add", "v1", "tpm", "tpm")
	d.must("config", "device", "add", "v1", "cd", "disk", "source="+iso, "boot.priority=10")
	d.must("config", "device", "add", "v1", "stick", "disk", "source="+usbImg, "io.bus=usb", "readonly=true")
	d.must("start", "v1")
	pid := d.pid("v1")
	cmdline := procCmdline(t, pid)
	dir := ""
	for i, a := range cmdline {
		if a == "-pidfile" && i+1 < len(cmdline) {
			dir = filepath.Dir(cmdline[i+1])
		}
	}
	ports := func() (int, int) {
		cfg := d.instance("v1").Config
		a, _ := strconv.Atoi(cfg["volatile.screen.port"])
		b, _ := strconv.Atoi(cfg["volatile.second.port"])
		return a, b
	}

	check := func(t *testing.T) {
		p1, p2 := ports()
		if p1 < 5900 || p2 < 5900 || p1 == p2 {
			t.Fatalf("volatile ports %d and %d", p1, p2)
		}
		if types := rfbSecurityTypes(t, d.netns, p1); !bytes.Contains(types, []byte{1}) {
			t.Fatalf("display without password offers %v, want None (1)", types)
		}
		types := rfbSecurityTypes(t, d.netns, p2)
		if !bytes.Contains(types, []byte{2}) || bytes.Contains(types, []byte{1}) {
			t.Fatalf("display with password offers %v, want VNC auth (2) and not None (1)", types)
		}
		if ok := vncAuth(t, d.netns, p2, "s3cret"); !ok {
			t.Fatal("VNC auth with the right password failed")
		}
		if ok := vncAuth(t, d.netns, p2, "wrong"); ok {
			t.Fatal("VNC auth with a wrong password succeeded")
		}
		if swtpmOf(dir) == 0 {
			t.Fatal("no swtpm runs for the VM")
		}
	}
	t.Run("devices", func(t *testing.T) {
		d := d.on(t)
		check(t)
		args := strings.Join(procCmdline(t, d.pid("v1")), " ")
		for _, want := range []string{"scsi-cd", "usb-storage", "qemu-xhci", "tpm-crb", "virtio-vga", "xres=1024", "virtio-gpu-pci", "password=on"} {
			if !strings.Contains(args, want) {
				t.Errorf("QEMU's command line lacks %q: %s", want, args)
			}
		}
		if strings.Contains(args, "s3cret") {
			t.Fatal("the VNC password is on QEMU's command line")
		}
		// The CD-ROM boots first (boot.priority), then the root.
		if !strings.Contains(args, "scsi-cd,bus=scsi0.0,channel=0,scsi-id=0,lun=0,id=disk-cd,drive=d-cd,serial=cd,bootindex=0") {
			t.Errorf("CD-ROM not first in boot order: %s", args)
		}
	})

	// Not a subtest: the restarted daemon belongs to the whole test.
	p1, p2 := ports()
	d.kill9()
	if !processAlive(pid) {
		t.Fatal("QEMU died with the daemon")
	}
	d.start()
	t.Run("after kill -9", func(t *testing.T) {
		d := d.on(t)
		if got := d.pid("v1"); got != pid {
			t.Fatalf("pid %d after restart, want %d", got, pid)
		}
		if a, b := ports(); a != p1 || b != p2 {
			t.Fatalf("ports %d %d after restart, want %d %d", a, b, p1, p2)
		}
		check(t)
	})

	t.Run("stop", func(t *testing.T) {
		d := d.on(t)
		tpm := swtpmOf(dir)
		d.must("stop", "v1", "--force")
		deadline := time.Now().Add(10 * time.Second)
		for processAlive(tpm) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if processAlive(tpm) {
			t.Fatalf("swtpm %d outlived its VM", tpm)
		}
		if c, err := dialInNetns(d.netns, fmt.Sprintf("127.0.0.1:%d", p1)); err == nil {
			c.Close()
			t.Fatalf("port %d still answers after stop", p1)
		}
		// The TPM's state stays for the next start.
		if m, _ := filepath.Glob(filepath.Join(dir, "tpm-tpm", "*")); len(m) == 0 {
			t.Fatalf("no TPM state kept in %s", dir)
		}
		// A fixed port in use is a clear start error, leaving nothing.
		// In the daemon's network namespace, where QEMU listens.
		var l net.Listener
		err := inNetns(d.netns, func() (err error) {
			l, err = net.Listen("tcp4", "127.0.0.1:0")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		busy := l.Addr().(*net.TCPAddr).Port
		d.must("config", "device", "set", "v1", "screen", "port="+strconv.Itoa(busy))
		d.mustFail([]string{"start", "v1"}, "in use")
		if st := d.instance("v1").Status; st != "Stopped" {
			t.Fatalf("status %s after a failed start", st)
		}
		if swtpmOf(dir) != 0 {
			t.Fatal("a failed start left swtpm running")
		}
		d.must("delete", "v1")
	})
}

func procCmdline(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// swtpmOf is the pid of the swtpm serving the VM directory dir, 0 when
// none runs.
func swtpmOf(dir string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if bytes.Contains(b, []byte("swtpm")) && bytes.Contains(b, []byte(filepath.Join(dir, "tpm.sock"))) {
			return pid
		}
	}
	return 0
}

// rfbHello connects to a VNC server, checks its RFB 3.8 banner, answers
// it and returns the security types it offers.
func rfbHello(t *testing.T, netns string, port int) (net.Conn, []byte) {
	t.Helper()
	c, err := dialInNetns(netns, fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("VNC port %d: %v", port, err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	banner := make([]byte, 12)
	if _, err := io.ReadFull(c, banner); err != nil || string(banner) != "RFB 003.008\n" {
		c.Close()
		t.Fatalf("VNC port %d: banner %q, %v", port, banner, err)
	}
	if _, err := c.Write(banner); err != nil {
		t.Fatal(err)
	}
	n := make([]byte, 1)
	if _, err := io.ReadFull(c, n); err != nil || n[0] == 0 {
		c.Close()
		t.Fatalf("VNC port %d: no security types (%v)", port, err)
	}
	types := make([]byte, n[0])
	if _, err := io.ReadFull(c, types); err != nil {
		t.Fatal(err)
	}
	return c, types
}

func rfbSecurityTypes(t *testing.T, netns string, port int) []byte {
	c, types := rfbHello(t, netns, port)
	c.Close()
	return types
}

// vncAuth runs VNC authentication (RFB type 2: the DES of a 16-byte
// challenge keyed with the password, each byte's bits reversed) and says
// whether the server accepted it.
func vncAuth(t *testing.T, netns string, port int, password string) bool {
	t.Helper()
	c, _ := rfbHello(t, netns, port)
	defer c.Close()
	if _, err := c.Write([]byte{2}); err != nil {
		t.Fatal(err)
	}
	challenge := make([]byte, 16)
	if _, err := io.ReadFull(c, challenge); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 8)
	copy(key, password)
	for i, b := range key {
		var r byte
		for j := range 8 {
			if b&(1<<j) != 0 {
				r |= 0x80 >> j
			}
		}
		key[i] = r
	}
	block, err := des.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	resp := make([]byte, 16)
	block.Encrypt(resp[:8], challenge[:8])
	block.Encrypt(resp[8:], challenge[8:])
	if _, err := c.Write(resp); err != nil {
		t.Fatal(err)
	}
	res := make([]byte, 4)
	if _, err := io.ReadFull(c, res); err != nil {
		t.Fatal(err)
	}
	return res[0] == 0 && res[1] == 0 && res[2] == 0 && res[3] == 0
}
