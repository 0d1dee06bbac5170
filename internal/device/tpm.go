package device

import (
	"os"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// tpm devices, as LXD has them: a virtual machine's TPM 2.0 is emulated
// by swtpm (its state kept by the VM's driver beside the VM's firmware
// variables, across restarts); a container's would be a vTPM of the
// kernel's tpm_vtpm_proxy, with path and pathrm its device nodes inside.

var tpmKeys = map[string]keyCheck{
	"type":        nil,
	"path":        absPath,
	"pathrm":      absPath,
	"description": func(string) error { return nil },
}

// vtpmx is the kernel's vTPM proxy control device (module
// tpm_vtpm_proxy), what a container's TPM is made through.
var vtpmx = "/dev/vtpmx"

func validateTPM(n string, d map[string]string, vm bool) error {
	if err := checkKeys(n, d, tpmKeys); err != nil {
		return err
	}
	if vm {
		return nil
	}
	if _, err := os.Stat(vtpmx); err != nil {
		return errdefs.Invalid("device %q: a container's TPM needs the kernel module tpm_vtpm_proxy (%s), which this host's kernel lacks; tpm devices work for virtual machines", n, vtpmx)
	}
	return errdefs.Invalid("device %q: tpm devices of containers are not supported yet; they work for virtual machines", n)
}

// checkTPMs: one TPM per instance (a machine has one TPM interface).
func checkTPMs(devs map[string]map[string]string) error {
	tpms := sortedTypes(devs, "tpm")
	if len(tpms) > 1 {
		return errdefs.Invalid("devices %q and %q: an instance has at most one tpm device", tpms[0], tpms[1])
	}
	return nil
}

// startTPM is a VM's TPM, nil without a tpm device. Its state directory
// is left to the driver (StateDir empty): the VM's own directory, kept
// across starts and removed with the VM.
func startTPM(in Instance, devs map[string]map[string]string) (*driver.TPM, error) {
	tpms := sortedTypes(devs, "tpm")
	if len(tpms) == 0 {
		return nil, nil
	}
	if !in.VM {
		return nil, errdefs.Invalid("device %s: tpm devices of containers are not supported on this host", tpms[0])
	}
	d := devs[tpms[0]]
	return &driver.TPM{Name: tpms[0], Path: or(d["path"], "/dev/tpm0"), PathRM: or(d["pathrm"], "/dev/tpmrm0")}, nil
}
