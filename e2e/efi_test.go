package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// requireEFI skips, saying why, when the host cannot boot a disk image
// with UEFI firmware.
func requireEFI(t *testing.T) {
	t.Helper()
	requireE2E(t)
	for _, p := range []string{"qemu-system-x86_64", "qemu-img"} {
		if lookPath(p) == "" {
			t.Skipf("%s is not installed (scripts/deps.sh installs it)", p)
		}
	}
	for _, f := range []string{"OVMF_CODE_4M.fd", "OVMF_VARS_4M.fd", "OVMF_CODE_4M.secboot.fd", "OVMF_VARS_4M.ms.fd"} {
		if _, err := os.Stat(filepath.Join("/usr/share/OVMF", f)); err != nil {
			t.Skipf("no UEFI firmware (%v): apt-get install ovmf", err)
		}
	}
}

// rawRequest sends one request to the daemon's socket and returns the
// status code and the decoded LXD envelope's error.
func (d *daemon) rawRequest(method, path, contentType string, body io.Reader) (int, string) {
	d.t.Helper()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	req, err := http.NewRequest(method, "http://hangar"+path, body)
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := hc.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var env struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&env)
	return resp.StatusCode, env.Error
}

// TestEFIVM imports an empty qcow2 disk as a virtual-machine image and
// boots it with UEFI firmware. With no OS on the disk the firmware falls
// back to its built-in shell, which tells Secure Boot apart: enforced, the
// unsigned shell is refused ("Security Violation"); off, it runs.
func TestEFIVM(t *testing.T) {
	requireEFI(t)
	d := startDaemon(t, "")
	tmp := t.TempDir()
	disk := filepath.Join(tmp, "empty.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", disk, "64M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	d.must("image", "import", disk, "--alias", "efi")
	var img api.Image
	for _, i := range d.images() {
		if len(i.Aliases) == 1 && i.Aliases[0].Name == "efi" {
			img = i
		}
	}
	if img.Type != api.InstanceTypeVM {
		t.Fatalf("imported disk: type %q, want %q", img.Type, api.InstanceTypeVM)
	}

	t.Run("bad input", func(t *testing.T) {
		d := d.on(t)
		store := d.imageStoreEntries()
		// Claims to be qcow2 by its magic, and is not.
		fake := append([]byte("QFI\xfb"), bytes.Repeat([]byte("not a disk "), 1000)...)
		code, msg := d.rawRequest("POST", "/1.0/images", "application/octet-stream", bytes.NewReader(fake))
		if code != http.StatusBadRequest || !strings.Contains(msg, "not a disk image") {
			t.Fatalf("import of a fake disk: %d %q, want 400 saying \"not a disk image\"", code, msg)
		}
		fakePath := filepath.Join(t.TempDir(), "fake.qcow2")
		if err := os.WriteFile(fakePath, fake, 0o600); err != nil {
			t.Fatal(err)
		}
		d.mustFail([]string{"image", "import", fakePath, "--alias", "fake"}, "not a disk image")
		if after := d.imageStoreEntries(); !slices.Equal(after, store) {
			t.Fatalf("refused imports left files: %v, before %v", after, store)
		}
		if n := len(d.images()); n != 1 {
			t.Fatalf("%d images after refused imports, want 1", n)
		}

		// A disk is no container.
		code, msg = d.rawRequest("POST", "/1.0/instances", "application/json",
			strings.NewReader(`{"name":"c1","source":{"type":"image","alias":"efi"}}`))
		if code != http.StatusBadRequest || !strings.Contains(msg, "virtual-machine") {
			t.Fatalf("a disk image as a container: %d %q, want 400", code, msg)
		}
		d.mustFail([]string{"launch", "efi", "c2"}, "virtual-machine image", "--vm")
		d.mustFail([]string{"launch", "efi", "bad", "--vm", "-c", "security.secureboot=perhaps"}, "security.secureboot")
		if names := d.instanceNames(); len(names) != 0 {
			t.Fatalf("bad launches left instances: %v", names)
		}
	})

	t.Run("LXD split image through lxc", func(t *testing.T) {
		if lookPath("lxc") == "" {
			t.Skip("the lxc client is not installed (apt-get install lxd-client)")
		}
		d := d.on(t)
		meta := filepath.Join(t.TempDir(), "meta.tar.gz")
		writeTarGz(t, meta, func(tw *tar.Writer) {
			addFile(t, tw, "metadata.yaml", fmt.Sprintf(lxdTestMetadata, runtime.GOARCH))
		})
		rootfsImg := filepath.Join(t.TempDir(), "rootfs.img")
		if out, err := exec.Command("qemu-img", "convert", "-O", "qcow2", disk, rootfsImg).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img convert: %v: %s", err, out)
		}
		fp := d.lxcImport(meta, rootfsImg, "--alias", "splitvm")
		var found bool
		for _, i := range d.images() {
			if i.Fingerprint == fp {
				found = true
				if i.Type != api.InstanceTypeVM {
					t.Fatalf("split VM image: type %q", i.Type)
				}
			}
		}
		if !found {
			t.Fatalf("image %s not listed", fp)
		}
		d.must("image", "delete", "splitvm")
	})

	// Secure Boot is on by default, as in LXD.
	d.must("launch", "efi", "v1", "--vm", "-c", "limits.memory=256MiB", "-c", "limits.cpu=1")
	if in := d.instance("v1"); in.Type != api.InstanceTypeVM || in.Status != "Running" {
		t.Fatalf("v1: type %q status %q", in.Type, in.Status)
	}
	waitFor(t, "the firmware refusing the unsigned shell under Secure Boot", 2*time.Minute, func() bool {
		return strings.Contains(d.must("console", "v1", "--show-log"), "Security Violation")
	})
	d.mustFail([]string{"exec", "v1", "--", "true"}, "guest agent")
	d.must("stop", "v1", "--force")
	if st := d.instance("v1").Status; st != "Stopped" {
		t.Fatalf("after stop --force: %s", st)
	}

	d.must("config", "set", "v1", "security.secureboot=false")
	d.must("start", "v1")
	waitFor(t, "the UEFI shell without Secure Boot", 2*time.Minute, func() bool {
		return strings.Contains(d.must("console", "v1", "--show-log"), "Shell>")
	})
	// The serial console is attachable: the firmware's shell answers what
	// is typed on it.
	in, inW := io.Pipe()
	var out syncBuffer
	con, err := d.client().AttachConsole(context.Background(), "v1", api.InstanceConsolePost{}, in, &out)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(inW, "echo efi-console-ok\r")
	waitFor(t, "the UEFI shell's answer on the console", time.Minute, func() bool {
		// The shell echoes key by key with cursor moves; the command's
		// output is the whole word on its own line.
		return strings.Contains(out.String(), "efi-console-ok\r\n")
	})
	inW.Close()
	if err := con.Detach(context.Background()); err != nil {
		t.Errorf("detach: %v", err)
	}
	// QEMU outlives the daemon; the restarted daemon reconnects to QMP.
	pid := d.pid("v1")
	d.kill9()
	if !processAlive(pid) {
		t.Fatal("QEMU died with the daemon")
	}
	d.start()
	if in := d.instance("v1"); in.Status != "Running" || d.pid("v1") != pid {
		t.Fatalf("after reconnect: %s, pid %d (was %d)", in.Status, d.pid("v1"), pid)
	}
	// Standby and restore: the firmware's state travels with the VM.
	d.must("stop", "--stateful", "v1")
	if st := d.instance("v1").Status; st != "Stopped" {
		t.Fatalf("after standby: %s", st)
	}
	d.must("start", "v1")
	if st := d.instance("v1").Status; st != "Running" {
		t.Fatalf("after restore: %s", st)
	}

	// The shell ignores the ACPI power button: a graceful stop ends in a
	// kill after its timeout (and the driver's grace period).
	d.must("stop", "v1", "--timeout", "1")
	if st := d.instance("v1").Status; st != "Stopped" {
		t.Fatalf("after stop: %s", st)
	}

	d.must("delete", "v1")
	if ents, _ := filepath.Glob(filepath.Join(d.dir, "vms", "h*")); len(ents) != 0 {
		t.Fatalf("instance files left after delete: %v", ents)
	}
	d.must("image", "delete", "efi")
	if e := d.imageStoreEntries(); len(e) != 0 {
		t.Fatalf("image store after delete: %v", e)
	}
}
