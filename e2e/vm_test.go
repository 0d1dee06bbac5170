package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// ociVMImage serves, from a registry on loopback, an OCI image of the
// busybox tree with an entrypoint that prints its env, user and cwd, then
// sleeps. It returns the reference.
func ociVMImage(t *testing.T, netns string) string {
	t.Helper()
	ref, _ := serveAppImage(t, netns, "test/vm:1",
		"#!/bin/sh\necho \"vm-entrypoint args=$* GREETING=$GREETING uid=$(id -u) cwd=$(pwd)\"\nexec sleep 2147483647\n")
	return ref
}

// VMs run under TCG here (no /dev/kvm), so every boot costs seconds: one
// VM is shared by the subtests, which run in order.

var (
	agentOnce sync.Once
	agentErr  error
)

// requireVM skips, saying why, when the host cannot boot VMs, and builds
// the static guest agent beside the test's hangard (where it looks first).
func requireVM(t *testing.T) {
	t.Helper()
	requireE2E(t)
	for _, p := range []string{"qemu-system-x86_64", "qemu-img", "mkfs.ext4"} {
		if lookPath(p) == "" {
			t.Skipf("%s is not installed (scripts/deps.sh installs it)", p)
		}
	}
	if k, _ := filepath.Glob("/boot/vmlinuz-*"); len(k) == 0 {
		t.Skip("no guest kernel in /boot (apt-get install linux-image-amd64)")
	}
	agentOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "hangar-agent"), "github.com/hangar-dev/hangar/cmd/hangar-agent")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			agentErr = err
			t.Logf("build agent: %s", out)
		}
	})
	if agentErr != nil {
		t.Fatalf("build hangar-agent: %v", agentErr)
	}
}

// guestUptime reads the guest's monotonic clock, in seconds.
func guestUptime(d *daemon, name string) float64 {
	d.t.Helper()
	out := d.must("exec", name, "--", "cat", "/proc/uptime")
	f, err := strconv.ParseFloat(strings.Fields(out)[0], 64)
	if err != nil {
		d.t.Fatalf("uptime %q: %v", out, err)
	}
	return f
}

func TestVM(t *testing.T) {
	requireVM(t)
	d := startDaemon(t, "")
	d.importImages()

	t.Run("bad input", func(t *testing.T) {
		d := d.on(t)
		d.mustFail([]string{"launch", "sleeper", "bad1", "-c", "security.secureboot=true"}, "security.secureboot", "virtual-machine")
		d.mustFail([]string{"launch", "sleeper", "bad2", "--vm", "-c", "security.privileged=true"}, "security.privileged", "container")
		d.mustFail([]string{"launch", "sleeper", "bad3", "--vm", "-c", "limits.memory=64MiB"}, "limits.memory", "128 MiB")
		if names := d.instanceNames(); len(names) != 0 {
			t.Fatalf("bad launches left instances: %v", names)
		}
	})

	// The OCI image as a VM: pulled, its tree made a disk, its entrypoint
	// run by the agent with the image's env, user and working directory.
	ref := ociVMImage(t, d.netns)
	start := time.Now()
	// security.secureboot is for disk images: a root-tree VM boots as before.
	d.must("launch", ref, "v1", "--vm", "--insecure", "-c", "limits.memory=256MiB", "-c", "limits.cpu=1", "-c", "security.secureboot=true")
	t.Logf("launch to agent ready: %v", time.Since(start))
	waitFor(t, "the entrypoint's line in the console log", 30*time.Second, func() bool {
		return strings.Contains(d.must("console", "v1", "--show-log"), "vm-entrypoint args=first-arg GREETING=hello-from-image uid=1000 cwd=/app")
	})
	if in := d.instance("v1"); in.Type != api.InstanceTypeVM || in.Status != "Running" {
		t.Fatalf("v1: type %q status %q", in.Type, in.Status)
	}

	t.Run("exec", func(t *testing.T) {
		d := d.on(t)
		if out := d.must("exec", "v1", "--", "uname", "-a"); !strings.HasPrefix(out, "Linux v1 ") {
			t.Fatalf("uname -a: %q", out)
		}
		if out := d.mustLXC("exec", "v1", "--", "sh", "-c", "echo $((6*7))"); out != "42\n" {
			t.Fatalf("lxc exec: %q", out)
		}
		if _, errOut, code := d.hangar("exec", "v1", "--", "sh", "-c", "exit 5"); code != 5 {
			t.Fatalf("exit code %d, want 5 (stderr %q)", code, errOut)
		}
	})

	t.Run("files", func(t *testing.T) {
		d := d.on(t)
		src := filepath.Join(t.TempDir(), "in")
		if err := os.WriteFile(src, []byte("pushed into a VM\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		d.must("file", "push", "--mode", "0640", src, "v1/root/hello")
		if out := d.must("exec", "v1", "--", "stat", "-c", "%a %s", "/root/hello"); out != "640 17\n" {
			t.Fatalf("pushed file: %q", out)
		}
		if out := d.must("file", "pull", "v1/root/hello", "-"); out != "pushed into a VM\n" {
			t.Fatalf("pulled: %q", out)
		}
		d.mustFail([]string{"file", "pull", "v1/nonexistent", "-"}, "nonexistent")
	})

	t.Run("pause stops the guest clock", func(t *testing.T) {
		d := d.on(t)
		before := guestUptime(d, "v1")
		d.must("pause", "v1")
		if st := d.instance("v1").Status; st != "Frozen" {
			t.Fatalf("paused VM is %s", st)
		}
		time.Sleep(3 * time.Second)
		d.must("resume", "v1")
		if st := d.instance("v1").Status; st != "Running" {
			t.Fatalf("resumed VM is %s", st)
		}
		if slept := guestUptime(d, "v1") - before; slept > 2.5 {
			t.Fatalf("the guest clock advanced %.1fs over a 3s pause", slept)
		}
	})

	// Not a subtest: the restarted daemon belongs to the whole test.
	pid := d.pid("v1")
	d.kill9()
	if !processAlive(pid) {
		t.Fatal("QEMU died with the daemon")
	}
	d.start()
	t.Run("reconnect after kill -9", func(t *testing.T) {
		d := d.on(t)
		if got := d.pid("v1"); got != pid {
			t.Fatalf("pid %d after restart, want %d", got, pid)
		}
		d.must("exec", "v1", "--", "true")
		d.must("pause", "v1")
		if st := d.instance("v1").Status; st != "Frozen" {
			t.Fatalf("after reconnect, paused VM is %s", st)
		}
		d.must("resume", "v1")
	})

	t.Run("console", func(t *testing.T) { vmConsole(t, d.on(t)) })

	t.Run("standby and restore", func(t *testing.T) {
		d := d.on(t)
		bg := strings.TrimSpace(d.must("exec", "v1", "--", "sh", "-c", "sleep 100000 </dev/null >/dev/null 2>&1 & echo $!"))
		d.must("stop", "--stateful", "v1")
		if st := d.instance("v1").Status; st != "Stopped" {
			t.Fatalf("after standby: %s", st)
		}
		start := time.Now()
		d.must("start", "v1")
		t.Logf("restore to agent ready: %v", time.Since(start))
		d.must("exec", "v1", "--", "kill", "-0", bg)
	})

	// snapshots.compression: the state is compressed on the way out and
	// streamed back through the decompressor; the guest's processes
	// survive each.
	t.Run("standby compressed", func(t *testing.T) {
		d := d.on(t)
		d.mustFail([]string{"config", "set", "v1", "snapshots.compression=zstd:20"}, "snapshots.compression")
		bg := strings.TrimSpace(d.must("exec", "v1", "--", "sh", "-c", "sleep 100000 </dev/null >/dev/null 2>&1 & echo $!"))
		for _, c := range []string{"zstd", "lz4:3"} {
			d.must("config", "set", "v1", "snapshots.compression="+c)
			d.must("stop", "--stateful", "v1")
			d.must("start", "v1")
			d.must("exec", "v1", "--", "kill", "-0", bg)
		}
		d.must("config", "unset", "v1", "snapshots.compression")
	})

	t.Run("graceful stop", func(t *testing.T) {
		d := d.on(t)
		pid := d.pid("v1")
		d.must("stop", "v1", "--timeout", "20")
		if st := d.instance("v1").Status; st != "Stopped" {
			t.Fatalf("after stop: %s", st)
		}
		if processAlive(pid) {
			t.Fatal("QEMU still runs after stop")
		}
		if log := d.must("console", "v1", "--show-log"); !strings.Contains(log, "vm-entrypoint") {
			t.Fatalf("console log lacks the workload's output:\n%s", log)
		}
	})

	t.Run("init system image, force stop", func(t *testing.T) {
		d := d.on(t)
		// busybox's /sbin/init must be PID 1: the agent hands it over and
		// serves beside it.
		d.must("launch", "busybox", "v2", "--vm", "-c", "limits.memory=256MiB")
		if out := d.must("exec", "v2", "--", "cat", "/proc/1/comm"); out != "init\n" {
			t.Fatalf("PID 1 is %q", out)
		}
		pid := d.pid("v2")
		d.must("stop", "-f", "v2")
		if processAlive(pid) {
			t.Fatal("QEMU still runs after a force stop")
		}
		d.must("delete", "v2")
	})

	t.Run("a guest crash is Error", func(t *testing.T) {
		d := d.on(t)
		d.must("start", "v1")
		// The guest kernel panics; panic=-1 reboot=t resets it and QEMU,
		// run with -no-reboot, ends. The exec never answers: not waited for.
		crash := exec.Command(filepath.Join(binDir, "hangar"), "--socket", d.socket, "exec", "v1", "--", "sh", "-c", "echo c > /proc/sysrq-trigger")
		if err := crash.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = crash.Process.Kill(); _ = crash.Wait() }()
		waitFor(t, "status Error", time.Minute, func() bool { return d.instance("v1").Status == "Error" })
		if log := d.must("console", "v1", "--show-log"); !strings.Contains(log, "the VM crashed") {
			t.Fatalf("console log does not say why:\n%s", log)
		}
		// As with lxc, only a Stopped instance is deleted without --force.
		d.must("delete", "--force", "v1")
	})
}
