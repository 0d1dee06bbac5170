package qemu

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// A VM booted by firmware (driver.Spec.Root.Firmware: its root disk is a
// cloud image's copy, qcow2 or raw) runs on a q35 machine with UEFI
// firmware (OVMF) and the image's own boot loader and kernel: no -kernel,
// no initramfs, no guest agent.
// The firmware is two flash devices: the code, shared read-only by every
// VM, and the variable store (NVRAM: boot entries, Secure Boot keys),
// copied per instance from a template on first start and kept, as a
// physical machine keeps its NVRAM. Secure Boot needs the firmware build
// that enforces it (SMM-protected variables, hence -machine smm=on and a
// secure pflash) and a template with Microsoft's keys enrolled, so that
// distribution shims verify.

// DefaultFirmwareDir is where Debian's ovmf package puts OVMF.
const DefaultFirmwareDir = "/usr/share/OVMF"

// firmware is the pair of flash images a disk VM boots with.
type firmware struct {
	Code   string // read-only, shared
	Vars   string // template of the instance's NVRAM
	NVRAM  string // the instance's copy, a file name in its directory
	Secure bool
}

// firmwareFor picks OVMF's files for Secure Boot on or off. Secure Boot
// asked of firmware that cannot do it is an error, never a silent
// downgrade.
func firmwareFor(dir string, secure bool) (firmware, error) {
	fw := firmware{Code: "OVMF_CODE_4M.fd", Vars: "OVMF_VARS_4M.fd", NVRAM: "nvram.fd"}
	if secure {
		fw = firmware{Code: "OVMF_CODE_4M.secboot.fd", Vars: "OVMF_VARS_4M.ms.fd", NVRAM: "nvram-secboot.fd", Secure: true}
	}
	fw.Code, fw.Vars = filepath.Join(dir, fw.Code), filepath.Join(dir, fw.Vars)
	for _, p := range []string{fw.Code, fw.Vars} {
		if strings.ContainsAny(p, ", ") {
			return fw, errdefs.Invalid("firmware path %q contains a comma or a space", p)
		}
		if _, err := os.Stat(p); err != nil {
			if secure {
				return fw, errdefs.Invalid("security.secureboot: this host's UEFI firmware has no Secure Boot build (%s): install ovmf, or set security.secureboot=false", p)
			}
			return fw, errdefs.Invalid("a disk image boots with UEFI firmware, and %s is missing: install ovmf: run `bash scripts/quickstart.sh` from a Hangar checkout, the README's first command", p)
		}
	}
	return fw, nil
}

func (d *Driver) firmwareDir() string {
	if d.cfg.FirmwareDir != "" {
		return d.cfg.FirmwareDir
	}
	return DefaultFirmwareDir
}

// copyFile copies src to a new file dst (synced): a firmware variable
// store's template to the instance's NVRAM.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		os.Remove(dst)
		return err
	}
	return out.Close()
}

// efiArgs is the command line of a VM booted by UEFI firmware from its
// disk, without its NICs, disks and shares (the root disk has
// bootindex=0). Unlike a kernel-booted VM it may reboot (no -no-reboot): a guest
// that installs updates or changes boot entries resets, as hardware does.
func (d *Driver) efiArgs(dir string, fw firmware, cpus int, mem int64, incoming string) []string {
	accel, cpu := "tcg,thread=multi,tb-size=64", "max"
	if d.kvm {
		accel, cpu = "kvm", "host"
	}
	machine := "q35"
	if fw.Secure {
		// Secure Boot variables live in SMM-protected flash, out of the
		// guest OS's reach.
		machine = "q35,smm=on"
	}
	args := []string{
		"-name", "hangar-" + filepath.Base(dir),
		"-machine", machine, "-accel", accel, "-cpu", cpu,
		"-smp", strconv.Itoa(cpus), "-m", strconv.FormatInt(mem>>20, 10) + "M",
		"-nodefaults", "-no-user-config", "-display", "none",
		"-global", "ICH9-LPC.disable_s3=1",
	}
	if fw.Secure {
		args = append(args, "-global", "driver=cfi.pflash01,property=secure,value=on")
	}
	args = append(args,
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+fw.Code,
		"-drive", "if=pflash,format=raw,unit=1,file="+filepath.Join(dir, fw.NVRAM),
		"-chardev", consoleChardev(dir),
		"-serial", "chardev:console",
		"-device", "virtio-rng-pci",
		"-qmp", "unix:"+filepath.Join(dir, fileQMP)+",server=on,wait=off",
		"-pidfile", filepath.Join(dir, filePid),
	)
	if incoming != "" {
		args = append(args, "-incoming", incoming)
	}
	return args
}
