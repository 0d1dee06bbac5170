package daemon

import (
	"bufio"
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/osthread"
)

// The kernel features LXD 5.0 reports in /1.0's environment.kernel_features,
// each probed here the way LXD does (lxd/main_checkfeature.go), in this
// process: what must change a thread's state (a network namespace) does
// so on a locked thread that is thrown away. seccomp_listener_continue is
// reported "false" rather than guessed from the kernel version: LXD probes
// it with a child that installs a seccomp filter and answers its own
// notification, which this daemon does not do.
const (
	featNetnsidGetifaddrs   = "netnsid_getifaddrs"
	featSeccompListener     = "seccomp_listener"
	featSeccompContinue     = "seccomp_listener_continue"
	featUeventInjection     = "uevent_injection"
	featUnprivFscaps        = "unpriv_fscaps"
	featShiftfs             = "shiftfs"
	featIdmappedMounts      = "idmapped_mounts"
	vfsCapRevision3         = 0x03000000
	capNetBindService       = 10
	mountAttrIdmap          = 0x00100000
	openTreeClone           = 0x1
	seccompGetActionAvail   = 0x2
	seccompRetUserNotif     = 0x7fc00000
	netlinkGetStrictCheck   = 0xc
	ueventSend              = 16 // nlmsg_type of a uevent sent to the kernel
	xattrSecurityCapability = "security.capability"
)

// probeKernelFeatures returns kernel_features as LXD names them, "true"
// or "false". dir is where instances' files live (the data dir): file
// capabilities are a property of its filesystem as much as of the kernel.
func probeKernelFeatures(dir string) map[string]string {
	b := strconv.FormatBool
	return map[string]string{
		featNetnsidGetifaddrs: b(netlinkStrictCheck()),
		featSeccompListener:   b(seccompUserNotif()),
		featSeccompContinue:   "false",
		featUeventInjection:   b(ueventInjection()),
		featUnprivFscaps:      b(nsFileCaps(dir)),
		featShiftfs:           b(hasFilesystem("/proc/filesystems", "shiftfs")),
		featIdmappedMounts:    b(idmappedMounts()),
	}
}

// netlinkStrictCheck is LXD's test for netnsid-aware address dumps: the
// kernel (4.20+) that takes NETLINK_GET_STRICT_CHK also filters
// RTM_GETADDR by IFA_TARGET_NETNSID.
func netlinkStrictCheck() bool {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.SetsockoptInt(fd, unix.SOL_NETLINK, netlinkGetStrictCheck, 1) == nil
}

// ueventInjection tells whether the kernel (4.18+) takes uevents sent to
// it over netlink and rebroadcasts them in the sender's network namespace,
// which LXD uses to forward hotplug events into containers. It sends a
// placeholder, as LXD does, from a new empty network namespace so that
// nothing on the host (udev) hears it; the thread that entered it is
// never reused (osthread.Throwaway).
func ueventInjection() bool {
	var ok bool
	osthread.Throwaway(func() {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return
		}
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_KOBJECT_UEVENT)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return
		}
		payload := []byte("placeh") // LXD sends the first 6 bytes of "placeholder"
		msg := make([]byte, unix.NLMSG_HDRLEN+len(payload))
		binary.NativeEndian.PutUint32(msg[0:], uint32(len(msg)))
		binary.NativeEndian.PutUint16(msg[4:], ueventSend)
		binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST)
		copy(msg[unix.NLMSG_HDRLEN:], payload)
		ok = unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}) == nil
	})
	return ok
}

// seccompUserNotif asks the kernel whether seccomp filters may return
// SECCOMP_RET_USER_NOTIF, the listener LXD's syscall interception uses.
func seccompUserNotif() bool {
	action := uint32(seccompRetUserNotif)
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, seccompGetActionAvail, 0, uintptr(unsafe.Pointer(&action)))
	return errno == 0
}

// nsFileCaps reports whether the kernel keeps namespaced (v3) file
// capabilities on dir's filesystem, which unprivileged containers need
// for their setcap binaries (ping and friends). A v3 attribute is refused
// by kernels before 4.14 and by filesystems without security xattrs.
func nsFileCaps(dir string) bool {
	f, err := os.CreateTemp(dir, ".hangar-fcaps-")
	if err != nil {
		return false
	}
	defer os.Remove(f.Name())
	defer f.Close()
	// struct vfs_ns_cap_data: magic_etc, {permitted, inheritable} x 2, rootid.
	caps := make([]byte, 24)
	binary.LittleEndian.PutUint32(caps[0:], vfsCapRevision3)
	binary.LittleEndian.PutUint32(caps[4:], 1<<capNetBindService)
	binary.LittleEndian.PutUint32(caps[20:], 1000000)
	if err := unix.Fsetxattr(int(f.Fd()), xattrSecurityCapability, caps, 0); err != nil {
		return false
	}
	got := make([]byte, 24)
	n, err := unix.Fgetxattr(int(f.Fd()), xattrSecurityCapability, got)
	return err == nil && n == 24 && binary.LittleEndian.Uint32(got)&0xff000000 == vfsCapRevision3
}

// idmappedMounts is LXD's probe: a kernel with idmapped mounts (5.12+)
// answers EBADF to an idmap whose user namespace is not one, where an
// older kernel knows neither open_tree nor mount_setattr or the flag.
func idmappedMounts() bool {
	tree, err := unix.OpenTree(unix.AT_FDCWD, "/", openTreeClone|unix.O_CLOEXEC)
	if err != nil {
		return false
	}
	defer unix.Close(tree)
	null, err := unix.Open("/dev/null", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(null)
	err = unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: mountAttrIdmap, Userns_fd: uint64(null)})
	return err == unix.EBADF
}

// hasFilesystem reports whether the kernel lists fs in path (a
// /proc/filesystems): loaded or built in, without loading a module.
func hasFilesystem(path, fs string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == fs {
			return true
		}
	}
	return false
}
