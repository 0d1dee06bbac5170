// Package qemu runs virtual machines with QEMU. It implements
// driver.Driver (and driver.Stateful, driver.GuestFiles,
// driver.NetworkReader, driver.DiskHotplugger, driver.DiskResizer, and
// AttachNIC/DetachNIC): the instance service hands it a driver.Spec and
// asks it to start, stop, pause and inspect the VM; this package owns
// everything below that line: the initramfs, the QEMU process, its
// cgroup, its QMP monitor and the connection to the guest agent. The root
// disk is storage's (package storage makes it on the instance's pool,
// with package vmdisk): the driver boots it and never builds, copies or
// removes a disk. It never reads instance config, the database or the API.
//
// # Booting a root disk
//
// Spec.Root.Disk is the instance's own writable root disk (qcow2 or raw,
// a file or a block device); a spec without one is invalid. With Spec.Root.Firmware it is a cloud
// image's copy that UEFI firmware boots (efi.go, below); otherwise it
// holds an ext4 root filesystem (an image's tree, labelled hangar-root)
// that the host's kernel and hangar's agent boot. The kernel is the
// host's: Config.Kernel (hangard --vm-kernel), else the newest
// /boot/vmlinuz-* (Debian's linux-image-amd64), with its modules from
// /lib/modules/VERSION. The initramfs is built in Go (a cpio "newc"
// writer, no external tool): hangar-agent as /init plus the modules it
// needs to reach the disks, the shares, the port and the network (virtio
// transports, virtio_blk, virtio_scsi and sd_mod, nvme, virtio_console,
// ext4, 9p, virtio_net and their dependencies, resolved from modules.dep,
// decompressed when the kernel ships them compressed). That archive is
// shared; each start appends a second, tiny archive holding the agent's
// configuration (entrypoint, env, cwd, uid/gid, hostname, NICs, the
// root's and the extra disks' serials, the shares), which the kernel
// unpacks over the first.
//
// The agent (cmd/hangar-agent) loads the modules with finit_module, finds
// the root disk by its serial, mounts it and grows its ext4 to the disk's
// size (storage grows the disk for a root `size`), moves into it, waits
// for the extra disks and links them in /dev/disk/by-id, mounts the 9p
// shares, sets up the network (below), runs the entrypoint with its stdout
// and stderr on a virtio-serial port of their own (vmagent.LogPortName)
// whose QEMU backend appends to console.log beside the serial console (the
// emulated UART moves a few hundred KB/s under TCG, the port tens of
// MB/s), reaps
// orphans as PID 1, and serves the daemon over a virtio-serial port
// (protocol in package vmagent). When the entrypoint exits the agent
// powers the VM off, so a VM ends like a container whose PID 1 exits; the
// exit code reaches the daemon before the power-off.
//
// # Disks and shares (disks.go, diskplug.go, shares.go)
//
// The root and Spec.Disks are -blockdev nodes (with a throttle group for
// Disk.Limits) under a virtio-blk, virtio-scsi or nvme device
// (Disk.Bus), each with the disk's key as serial. Extra virtio-blk and
// nvme disks sit on PCIe root ports of their own, with 4 spare, so disks
// plug and unplug while the VM runs (QMP blockdev-add + device_add;
// device_del + DEVICE_DELETED + blockdev-del); ResizeDisk grows a disk
// (block_resize) and, for the root, the agent grows its filesystem. Where
// each disk is is kept in vm.json, for a restore. Spec.Mounts are 9p
// shares (virtiofsd is not on this Debian), fixed for the VM's run: QEMU
// cannot add an fsdev to a running VM, and cannot save (Standby) a VM
// whose 9p share is mounted.
//
// The machine is "microvm" by default (no firmware, virtio over MMIO: the
// fastest boot; the kernel is told the TSC frequency, tsc_early_khz,
// since TCG calibration on microvm is slow or hangs) or "q35"
// (Config.Machine). KVM when /dev/kvm exists and the CPU has vmx or svm,
// TCG otherwise.
//
// # NICs (nic.go, hotplug.go, network.go)
//
// Each driver.NIC is a virtio-net-pci device with the NIC's MAC (and
// host_mtu) whose backend is the tap the network layer made beforehand
// (tap netdev by ifname, script=no; Start checks the tap exists, since
// QEMU would make one of its own, on no bridge), or a macvtap (a VM's
// macvlan NIC) whose character device the driver opens (netdev's
// OpenMacvtap, which finds the device of the daemon's namespace) and
// hands QEMU as a descriptor: inherited at start (tap,fd=4 and up), by
// getfd for a hotplug. Every NIC has a PCIe root
// port of its own and a VM boots with 4 spare ports, so NICs plug and
// unplug while it runs (AttachNIC, DetachNIC: netdev_add + device_add,
// device_del + DEVICE_DELETED + netdev_del). microvm therefore runs with
// pcie=on, its disk and port staying on MMIO, and its kernel takes PCIe
// hotplug itself (pcie_ports=native: microvm's ACPI does not hand it
// over); Linux's native hotplug waits 5 s before it lets a device go,
// so an unplug takes about that. The port of each NIC is kept in vm.json
// so that a restored VM has the saved one's devices in the same places.
//
// The agent finds each NIC by MAC (the kernel names devices in probe
// order), renames it, sets its MTU, brings it and loopback up, adds the
// addresses (IPv6 without duplicate address detection: the daemon's IPAM
// made them unique) and default routes, and writes /etc/resolv.conf
// unless it is a symlink (the image's resolver owns it), all before the
// workload starts; a plugged NIC gets the same through MsgNetConfig.
// Network asks the agent for every interface of the guest (netlink), a
// round trip reused for a second. A disk-image VM has no agent: its own
// DHCP client takes the address the network layer reserved by MAC.
//
// # Booting a disk image with UEFI firmware (efi.go)
//
// A root disk with Root.Firmware is a bootable disk image (a cloud
// image's copy, qcow2 or raw): the VM boots it on q35 with OVMF
// (Config.FirmwareDir) and the image's own boot loader and kernel: no
// -kernel, no initramfs, no agent (its extra disks and shares are there
// for its own OS to use). The firmware code is shared read-only; the variable store (NVRAM) is copied per instance
// from OVMF's template on first start and kept. Spec.SecureBoot picks the
// Secure Boot build (SMM: -machine smm=on and a secure pflash) with
// Microsoft's keys enrolled; asked of firmware without that build, Start
// fails rather than boot without it. Such a VM may reboot (no -no-reboot);
// stop is ACPI power-down, then quit after the timeout.
//
// # Displays, TPM, CD-ROMs and USB disks (display.go, tpm.go, disks.go)
//
// Each of Spec.Displays is a video output of its own (the first the
// primary: virtio-vga on q35, virtio-gpu-pci on microvm; the others
// virtio-gpu-pci; xres/yres its resolution) with a VNC server bound to it
// (-vnc 127.0.0.1:N,id=,display=) or the VM's one SPICE server, on
// 127.0.0.1 only. Passwords reach QEMU by QMP set_password once it
// answers (servers start with authentication on and no password: nobody
// logs in before), never on its command line. A VM without displays has
// no video device, as before. Spec.TPM is swtpm (TPM 2.0, started before
// QEMU, in its own session, --terminate: it ends with QEMU's connection;
// the driver ends it too when QEMU ends or a start fails) behind a
// tpm-crb; QEMU migrates its state with the VM's, so standby and
// checkpoints keep working. CD-ROMs (Disk.CDROM) are read-only scsi-cd
// on the virtio-scsi controller, USB disks usb-storage on a qemu-xhci;
// both plug at boot only, and the agent does not wait for them (its
// initramfs has no drivers for them). Firmware boots the disks with a
// BootPriority first (highest first), then the root.
//
// # On-disk layout
//
//	Dir/
//	  <id>/                     one per instance, mode 0700: runtime files only
//	    initrd.img              the initramfs of the last start
//	    console.log             the serial console's and the workload's output
//	                            (QEMU appends both)
//	    qemu.log                QEMU's own stdout and stderr
//	    qmp.sock, agent.sock    QMP and the agent's port (QEMU listens)
//	    console.sock            the serial console (QEMU listens; console_attach.go)
//	    qemu.pid                QEMU's pid, for Recover
//	    vm.json                 what Recover needs beyond the command line,
//	                            the NIC on each root port, where each disk is
//	    standby.state           the saved VM of a stateful stop, until restored
//	    nvram.fd, nvram-secboot.fd  firmware variables (disk-image VMs)
//	    tpm-KEY/                the TPM's state (kept, like nvram.fd)
//	    tpm.sock, tpm.pid, tpm.log  swtpm's control socket, pid and log
//	  .cache/                   left by drivers before storage pools (recover.go)
//
// Before storage pools the driver made each VM's root itself: a qcow2
// overlay, <id>/root.qcow2, over a base disk in Dir/.cache. Storage moves
// such a root onto a pool (storage.AdoptRoot); the moved overlay still
// names its base in Dir/.cache, so the driver leaves those files alone and
// only sweeps partial builds there at Recover (and the directory once
// empty). Delete removes <id>/ whatever an old driver left in it.
//
// # Detached QEMU, and recovery
//
// QEMU runs in its own session with its output on qemu.log, so killing the
// daemon (even with SIGKILL) leaves it running. Its cgroup is
// CgroupParent/<id> (v2: it is born in it through CLONE_INTO_CGROUP; v1:
// it is moved in at once), bounded to the guest's RAM plus QEMU's own
// overhead and to limits.cpu worth of CPU time; -smp and -m give the guest
// the same limits. Recover reads every qemu.pid, checks that the process
// is that instance's QEMU (its command line names the instance's QMP
// socket), pins it with a pidfd, reconnects to QMP (query-status gives
// the run state) and to the agent (a fresh hello; the agent drops the old
// connection's sessions), and watches the pidfd for its end.
//
// # Status from QMP events
//
// The run state (status.go) changes only on QMP events: STOP and RESUME
// (pause, resume, and a restore's start), POWERDOWN, SHUTDOWN (off; a
// "guest-panic" reason is a crash), GUEST_PANICKED. Commands such as
// "stop" return once QEMU emitted the event, and Freeze waits for the
// state the event set, so a Freeze that returns nil means QEMU said the VM
// is paused. A QEMU that ends without SHUTDOWN, or after a panic, is a
// crash: the exit reports Error with the reason, which is also appended
// to console.log. The QMP connection (qmp.go, our own: go-qemu's reuses a
// reply's buffer under its reader) blocks its reader on an undrained
// event channel, so a goroutine drains it for the monitor's whole life.
//
// # Stop and standby
//
// A graceful stop asks the agent to stop the workload with its stop signal
// and kill it after the timeout; a guest without an agent gets an ACPI
// power-down. After timeout plus a grace period, or with force, QEMU is
// told to quit, then SIGKILLed. Standby (stateful stop) pauses the VM,
// migrates it to standby.state (QMP migrate to a descriptor the daemon
// opened and passed with getfd), and quits; the next Start runs QEMU with
// -incoming from that file (as its descriptor 3), resumes it and removes
// the file, so processes in the guest carry on with their memory intact.
//
// # Checkpoint and fork
//
// Checkpoint (checkpoint.go) saves a running VM the same way without
// ending it, for a stateful snapshot or a live fork: a pre-copy migration
// while the guest runs, QEMU stopping it only for the last dirty pages
// and the device state; the caller's callback snapshots the disks while
// it is stopped, then it resumes. The file starts with a header (RAM
// size, vCPUs, NIC and disk layout, MACs), so that a Start with
// Spec.RestoreState builds the same machine in another instance
// directory; the file is kept. A fork (Spec.Forked) has the saved VM's
// MACs in its device state (virtio-net migrates its MAC): once the agent
// answers, MsgIdentity gives it its hostname, MACs, addresses and a new
// random seed.
//
// # Invariants
//
//   - A failed Start leaves no process, cgroup or socket behind, and no
//     instance directory if there was none.
//   - OnExit is called once per QEMU run, after the VM is no longer
//     tracked (State says Stopped, Start may run again), holding no lock.
//   - The driver makes, copies and removes no disk image: the disks, root
//     included, are storage's; it only boots them (and grows a running
//     VM's through QEMU).
//   - A disk's format is never probed: the spec names it (a raw disk a
//     guest wrote as a qcow2 header must not open the host file it names).
//   - A failed AttachDisk leaves the VM's devices as they were (a SCSI
//     controller plugged for it stays, recorded).
package qemu
