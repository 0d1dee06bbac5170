package e2e

import (
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// vmConsole runs on TestVM's shared VM, after the daemon was killed with
// SIGKILL and restarted: a console attached through the SDK shows what the
// guest prints on its console and carries input to the guest's serial
// port, the real lxc attaches too, and the log (kept by QEMU) has it all.
// The workload's stdin is not the console, so input is read by a process
// started with exec.
func vmConsole(t *testing.T, d *daemon) {
	c := d.client()
	ctx := context.Background()
	in, inW := io.Pipe()
	defer inW.Close()
	var out syncBuffer
	con, err := c.AttachConsole(ctx, "v1", api.InstanceConsolePost{}, in, &out)
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	d.must("exec", "v1", "--", "sh", "-c", "echo vm-console-out > /dev/console")
	waitFor(t, "the guest's line on the attached console", 30*time.Second, func() bool {
		return strings.Contains(out.String(), "vm-console-out")
	})
	if strings.Contains(out.String(), "vm-entrypoint") {
		t.Errorf("attached console replayed old output: %q", out.String())
	}

	// A guest process reads a line from the serial port; the tty holds
	// input typed before it opens the port, so the order does not matter.
	reader := exec.Command(filepath.Join(binDir, "hangar"), "--socket", d.socket, "exec", "v1", "--", "sh", "-c", "read l </dev/ttyS0; echo got:$l")
	var got syncBuffer
	reader.Stdout, reader.Stderr = &got, &got
	if err := reader.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(inW, "typed-into-vm\r")
	waited := make(chan error, 1)
	go func() { waited <- reader.Wait() }()
	select {
	case err := <-waited:
		if err != nil || got.String() != "got:typed-into-vm\n" {
			t.Errorf("guest read %q (%v)", got.String(), err)
		}
	case <-time.After(30 * time.Second):
		reader.Process.Kill()
		t.Errorf("console input never reached the guest; it read %q", got.String())
	}
	inW.Close()
	if err := con.Detach(ctx); err != nil {
		t.Errorf("detach: %v", err)
	}

	// lxc console wants a terminal: it runs on a pseudo-terminal, and
	// detaches with Ctrl-a q.
	master, slave, err := openPTY()
	if err != nil {
		t.Fatalf("open a pty: %v", err)
	}
	defer master.Close()
	lctx, cancel := context.WithTimeout(ctx, lxcTimeout)
	defer cancel()
	lxc := d.lxcCmd(lctx, "console", "v1")
	lxc.Stdin, lxc.Stdout, lxc.Stderr = slave, slave, slave
	lxc.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = lxc.Start()
	slave.Close()
	if err != nil {
		t.Fatal(err)
	}
	var lxcOut syncBuffer
	go func() { _, _ = io.Copy(&lxcOut, master) }()
	defer func() {
		if t.Failed() {
			t.Logf("lxc console output: %q", lxcOut.String())
		}
	}()
	waitFor(t, "the guest's line on lxc console", 30*time.Second, func() bool {
		d.must("exec", "v1", "--", "sh", "-c", "echo vm-lxc-console > /dev/console")
		return strings.Contains(lxcOut.String(), "vm-lxc-console")
	})
	// lxc looks at the first byte of each read only (a raw terminal
	// gives one key at a time), so the two keys go apart.
	io.WriteString(master, "\x01")
	time.Sleep(200 * time.Millisecond)
	io.WriteString(master, "q")
	if err := lxc.Wait(); err != nil {
		t.Errorf("lxc console after Ctrl-a q: %v", err)
	}

	if log := d.must("console", "v1", "--show-log"); !strings.Contains(log, "vm-console-out") || !strings.Contains(log, "vm-lxc-console") {
		t.Errorf("console log lacks the attached session's output:\n%s", log)
	}
}
