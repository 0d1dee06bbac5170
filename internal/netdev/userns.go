package netdev

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/osthread"
)

// IDMap maps ids 0..Size-1 of a user namespace to host ids HostID...
type IDMap struct{ HostID, Size uint32 }

// CreateUserNetNS makes a network namespace owned by a new user namespace
// with the id map m, and bind-mounts them on netnsPath and usernsPath for
// runc to join both: the container's root then holds every network
// capability over its own namespace (ping, DHCP clients, ip, firewall
// rules inside), as in LXD, where a namespace made by the host would leave
// it none. Loopback is up. A kernel only makes a user namespace for a
// single-threaded process, so a short-lived child makes the pair; it
// blocks reading a pipe until both are mounted.
func CreateUserNetNS(netnsPath, usernsPath string, m IDMap) error {
	if err := validPath(netnsPath); err != nil {
		return err
	}
	if err := validPath(usernsPath); err != nil {
		return err
	}
	if m.Size == 0 {
		return fmt.Errorf("user namespace: empty id map")
	}
	if err := sharedDir(filepath.Dir(netnsPath)); err != nil {
		return err
	}
	for _, p := range []string{netnsPath, usernsPath} {
		f, err := os.OpenFile(p, os.O_RDONLY|os.O_CREATE, 0o444)
		if err != nil {
			return fmt.Errorf("create namespace file: %w", err)
		}
		f.Close()
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer w.Close()
	idm := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(m.HostID), Size: int(m.Size)}}
	cmd := exec.Command("/bin/cat")
	cmd.Stdin = r
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: idm, GidMappings: idm,
	}
	// No Pdeathsig (it follows the forking thread, not the process): a
	// daemon that dies closes the pipe, and the holder ends.
	err = cmd.Start()
	r.Close()
	if err != nil {
		return errors.Join(fmt.Errorf("start namespace holder: %w", err), deleteUserNetNS(netnsPath, usernsPath))
	}
	defer func() {
		w.Close()
		_ = cmd.Wait()
	}()
	proc := fmt.Sprintf("/proc/%d/ns/", cmd.Process.Pid)
	for _, b := range []struct{ ns, path string }{{"user", usernsPath}, {"net", netnsPath}} {
		if err := unix.Mount(proc+b.ns, b.path, "none", unix.MS_BIND, ""); err != nil {
			return errors.Join(fmt.Errorf("bind %s namespace on %s: %w", b.ns, b.path, err), deleteUserNetNS(netnsPath, usernsPath))
		}
	}
	f, err := os.Open(netnsPath)
	if err == nil {
		osthread.Throwaway(func() {
			if err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err == nil {
				if err = loopbackUp(); err == nil {
					err = announceSysctls()
				}
			}
		})
		f.Close()
	}
	if err != nil {
		return errors.Join(err, deleteUserNetNS(netnsPath, usernsPath))
	}
	return nil
}

func deleteUserNetNS(netnsPath, usernsPath string) error {
	return errors.Join(DeleteNetNS(netnsPath), DeleteNetNS(usernsPath))
}
