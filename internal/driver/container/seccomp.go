package container

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The exec path loads the container's seccomp policy itself (runc compiles
// PID 1's with libseccomp, which needs cgo). The policy is small: the
// syscalls in deniedSyscalls fail with EPERM on every architecture the
// container may run code for, everything else is allowed, and code of any
// other architecture is killed (it could use a syscall table the list does
// not cover).

// seccompArch is one architecture's syscall numbers for deniedSyscalls.
type seccompArch struct {
	audit uint32              // AUDIT_ARCH_* as seccomp_data.arch reports it
	nrs   map[string][]uint32 // syscall name → its numbers (x32 adds some)
}

// seccomp_data offsets.
const (
	seccompDataNr   = 0
	seccompDataArch = 4
)

// seccompFilter compiles the deny list into a classic BPF program:
//
//	ld arch; jeq A1 → a1; jeq A2 → a2; ...; ret KILL_PROCESS
//	a1: ld nr; jeq n1 → deny; jeq n2 → deny; ...; ret ALLOW
//	...
//	deny: ret ERRNO(EPERM)
func seccompFilter() []unix.SockFilter {
	arches := seccompArches()
	if len(arches) == 0 {
		return nil
	}
	const (
		ldAbs  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		retK   = unix.BPF_RET | unix.BPF_K
		allow  = unix.SECCOMP_RET_ALLOW
		kill   = unix.SECCOMP_RET_KILL_PROCESS
		errnoP = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
	)
	// Lay out the blocks first to know where each starts.
	blockLen := func(a seccompArch) int {
		n := 2 // ld nr, ret allow
		for _, name := range deniedSyscalls {
			n += len(a.nrs[name])
		}
		return n
	}
	dispatch := 1 + len(arches) + 1
	starts := make([]int, len(arches))
	pc := dispatch
	for i, a := range arches {
		starts[i] = pc
		pc += blockLen(a)
	}
	deny := pc

	prog := []unix.SockFilter{{Code: ldAbs, K: seccompDataArch}}
	for i, a := range arches {
		here := len(prog)
		prog = append(prog, unix.SockFilter{Code: jeqK, K: a.audit, Jt: uint8(starts[i] - here - 1)})
	}
	prog = append(prog, unix.SockFilter{Code: retK, K: kill})
	for _, a := range arches {
		prog = append(prog, unix.SockFilter{Code: ldAbs, K: seccompDataNr})
		for _, name := range deniedSyscalls {
			for _, nr := range a.nrs[name] { // none: not on this architecture
				here := len(prog)
				prog = append(prog, unix.SockFilter{Code: jeqK, K: nr, Jt: uint8(deny - here - 1)})
			}
		}
		prog = append(prog, unix.SockFilter{Code: retK, K: allow})
	}
	prog = append(prog, unix.SockFilter{Code: retK, K: errnoP})
	return prog
}

// loadSeccomp installs filter on the calling thread only: the exec path
// runs it on a thread that forks the exec and then ends.
func loadSeccomp(filter []unix.SockFilter) error {
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	return unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&prog)), 0, 0)
}
