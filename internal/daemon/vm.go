package daemon

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/driver/qemu"
)

// newVMDriver builds the QEMU driver. Missing host tools (QEMU, a kernel)
// do not stop the daemon: creating a VM then fails with what is missing.
func newVMDriver(cfg Config, onExit driver.ExitHandler, log *slog.Logger) (*qemu.Driver, error) {
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		log.Warn("QEMU is not installed: virtual machines will fail to start", "hint", firstCommandHint)
	}
	return qemu.New(qemu.Config{
		Dir:          filepath.Join(cfg.DataDir, "vms"),
		Agent:        findAgent(cfg.VMAgent),
		Kernel:       cfg.VMKernel,
		Machine:      cfg.VMMachine,
		FirmwareDir:  cfg.VMFirmware,
		CgroupParent: CgroupParents(cfg.DataDir)[1],
		OnExit:       onExit,
		Logger:       log,
	})
}

// findAgent returns the guest agent: the flag's path, else hangar-agent
// beside this executable, else in PATH; "" when there is none.
func findAgent(flag string) string {
	if flag != "" {
		return flag
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "hangar-agent")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("hangar-agent"); err == nil {
		return p
	}
	return ""
}
