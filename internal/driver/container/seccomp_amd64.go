package container

import "golang.org/x/sys/unix"

// x32Bit marks syscalls of the x32 ABI, which shares x86_64's audit arch.
const x32Bit = 0x40000000

// seccompArches: x86_64 with x32, and i386, the architectures runc is told
// about for PID 1. x32's kexec_load has its own compat entry; its other
// numbers are x86_64's with x32Bit. i386 has no kexec_file_load.
func seccompArches() []seccompArch {
	return []seccompArch{
		{audit: unix.AUDIT_ARCH_X86_64, nrs: map[string][]uint32{
			"kexec_load":        {246, x32Bit | 528},
			"kexec_file_load":   {320, x32Bit | 320},
			"open_by_handle_at": {304, x32Bit | 304},
			"init_module":       {175, x32Bit | 175},
			"finit_module":      {313, x32Bit | 313},
			"delete_module":     {176, x32Bit | 176},
		}},
		{audit: unix.AUDIT_ARCH_I386, nrs: map[string][]uint32{
			"kexec_load":        {283},
			"open_by_handle_at": {342},
			"init_module":       {128},
			"finit_module":      {350},
			"delete_module":     {129},
		}},
	}
}
