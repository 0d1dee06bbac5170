package container

import "golang.org/x/sys/unix"

// seccompArches: aarch64 and 32-bit ARM (EABI), the architectures runc is
// told about for PID 1.
func seccompArches() []seccompArch {
	return []seccompArch{
		{audit: unix.AUDIT_ARCH_AARCH64, nrs: map[string][]uint32{
			"kexec_load": {104}, "kexec_file_load": {294}, "open_by_handle_at": {265},
			"init_module": {105}, "finit_module": {273}, "delete_module": {106},
		}},
		{audit: unix.AUDIT_ARCH_ARM, nrs: map[string][]uint32{
			"kexec_load": {347}, "kexec_file_load": {401}, "open_by_handle_at": {371},
			"init_module": {128}, "finit_module": {379}, "delete_module": {129},
		}},
	}
}
