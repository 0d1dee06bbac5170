package qemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hangar-dev/hangar/internal/cloexec"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// A VM's TPM (Spec.TPM) is a TPM 2.0 emulated by swtpm, QEMU's
// tpm-emulator backend on swtpm's control socket, under a tpm-crb
// frontend. swtpm starts before QEMU, in its own session (a daemon
// killed with -9 leaves it, as it leaves QEMU), with --terminate: it ends
// when QEMU's connection does, however QEMU ends. The driver also ends it
// when it sees QEMU end, and when a start fails, so none outlives its VM.
// Its state (the TPM's NVRAM: keys, PCR policy) is in tpm-KEY/ in the
// instance's directory (or TPM.StateDir), kept across starts like the
// firmware variables and removed with the VM. A standby or checkpoint
// saves the TPM's volatile state with the VM's (QEMU migrates it through
// swtpm's control channel).

const (
	fileTPMSock = "tpm.sock"
	fileTPMPid  = "tpm.pid"
	fileTPMLog  = "tpm.log"
)

// tpmStateDir is where a TPM's state is kept.
func tpmStateDir(dir string, t driver.TPM) string {
	if t.StateDir != "" {
		return t.StateDir
	}
	return filepath.Join(dir, "tpm-"+diskKey(t.Name))
}

// tpmArgs is QEMU's side of the TPM: the emulator backend on swtpm's
// control socket and the CRB interface (TPM 2.0's, on q35 and microvm).
func tpmArgs(dir string) []string {
	return []string{
		"-chardev", "socket,id=tpmchr,path=" + filepath.Join(dir, fileTPMSock),
		"-tpmdev", "emulator,id=tpm0,chardev=tpmchr",
		"-device", "tpm-crb,tpmdev=tpm0",
	}
}

// swtpmArgs is swtpm's command line for a VM's TPM.
func swtpmArgs(dir, state string) []string {
	return []string{
		"socket", "--tpm2",
		"--tpmstate", "dir=" + state + ",mode=0600",
		"--ctrl", "type=unixio,path=" + filepath.Join(dir, fileTPMSock),
		"--pid", "file=" + filepath.Join(dir, fileTPMPid),
		"--log", "file=" + filepath.Join(dir, fileTPMLog) + ",level=1",
		"--terminate",
	}
}

// startTPM runs swtpm for a VM and returns once its control socket is
// there; stop ends it (for a start that fails later).
func (d *Driver) startTPM(ctx context.Context, dir string, t driver.TPM) (stop func(), err error) {
	bin, err := tool(d.cfg.SWTPM, "swtpm")
	if err != nil {
		return nil, errdefs.Invalid("tpm device %s: swtpm is not installed (apt-get install swtpm swtpm-tools): %v", t.Name, err)
	}
	// One left by a daemon killed mid-start would hold the state.
	stopTPM(dir)
	state := tpmStateDir(dir, t)
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, fmt.Errorf("tpm state: %w", err)
	}
	sock := filepath.Join(dir, fileTPMSock)
	_ = os.Remove(sock)
	// Its output goes to its log file, not a pipe: it outlives the
	// daemon, and a write to a pipe nobody reads any more would kill it.
	logPath := filepath.Join(dir, fileTPMLog)
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command(bin, swtpmArgs(dir, state)...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Stdout, cmd.Stderr = logf, logf
	// As for QEMU: no descriptor of the daemon's may stay open in it.
	if err := cloexec.From(3); err != nil {
		return nil, fmt.Errorf("start swtpm: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start swtpm: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		_ = os.Remove(sock)
		_ = os.Remove(filepath.Join(dir, fileTPMPid))
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return stop, nil
		}
		select {
		case <-exited:
			stop()
			return nil, fmt.Errorf("swtpm ended: %s", logTail(logPath, 500))
		case <-deadline:
			stop()
			return nil, errors.New("swtpm did not make its socket in 10s")
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
}

// stopTPM ends the swtpm of a VM's directory, if one runs (its pidfile
// names a swtpm serving that directory's socket).
func stopTPM(dir string) {
	pidf := filepath.Join(dir, fileTPMPid)
	b, err := os.ReadFile(pidf)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err == nil && pid > 0 {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if bytes.Contains(cmdline, []byte("swtpm")) && bytes.Contains(cmdline, []byte(filepath.Join(dir, fileTPMSock))) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			for range 100 {
				if syscall.Kill(pid, 0) != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	_ = os.Remove(pidf)
	_ = os.Remove(filepath.Join(dir, fileTPMSock))
}
