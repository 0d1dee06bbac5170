// Package container runs system containers with runc. It implements
// driver.Driver (and driver.ConsoleAttacher, driver.RootOpener and
// driver.NetworkReader): the instance service hands it a driver.Spec and
// asks it to start, stop, freeze and inspect the container; this package owns
// everything below that line: the rootfs mount, the OCI bundle, runc's
// state, the cgroup and the console log. The root's data is storage's
// (package storage hands over its mounts in Spec.Root); the driver mounts
// it and never builds a root itself. It never reads instance config, the
// database or the API.
//
// # On-disk layout
//
//	Dir/
//	  .runc/            runc's state root (runc --root); one dir per live container
//	  <id>/             one per instance, mode 0711 so a user-namespaced root can reach rootfs
//	    rootfs/         mount point of Spec.Root's mount (an overlay, or a bind of a directory)
//	    config.json     the OCI runtime spec of the last start (the bundle is Dir/<id>)
//	    mounts.json     the running container's extra mounts and their mount ids (mounts.go)
//	    upper/, work/   legacy only (Spec.RootFS, no Root): the writable layer the driver
//	                    kept itself, overlaid on RootFS; goes once the core fills Root
//	    console.log     PID 1's stdout and stderr
//	    console.in      FIFO: PID 1's stdin, which PID 1 holds open read-write (console input)
//	    console.log.1   the previous console.log chunk (see the bound below)
//
// Each container's cgroup is <Config.CgroupParent>/<id>, /hangar/<id> for
// the default data dir (runc's cgroupfs manager, cgroup v1, hybrid or v2).
//
// Its network interfaces (Network) are read from the host: counters from
// /proc/PID/net/dev, names, flags, MTU and addresses from inside its
// network namespace on a locked thread of the daemon's (network.go).
//
// # No shim
//
// No process of ours stays per container. A container is started with one
// exec of `runc run --detach` with no terminal: runc then hands its own stdin
// (console.in), stdout and stderr to PID 1 and exits. Its stdout and stderr are
// console.log opened O_APPEND, so PID 1 writes the console log itself.
//
// Exits are seen without a thread per container. New makes the daemon a
// child subreaper, so when runc exits, PID 1 is reparented to the daemon (its
// PPid is the daemon's pid: checked at every start). Each PID 1 is watched
// through a pidfd, parked in Go's netpoller until it becomes readable (the
// process exited), then reaped with waitid(P_PIDFD): only that process, never
// wait(-1), which would steal the statuses os/exec waits for, and never a
// reused pid. A pidfd pins its process, and recovered pids are checked
// against the start time runc recorded (/proc/PID/stat field 22). ECHILD
// means we are not the parent (the container outlived a daemon restart): the
// exit is reported with Known=false. Before reporting, the watcher runs
// `runc delete` and unmounts the rootfs, so a container that exits by itself
// leaves no runc state, cgroup or mount. OnExit is called once per run, from
// the watcher's goroutine, holding no lock, after the instance is no longer
// tracked (State says Stopped, Start may run again).
//
// The subreaper flag has a cost: any orphaned grandchild of the daemon is
// reparented to it, and only container PID 1s are reaped. Other code in the
// daemon must wait for its own children (os/exec does).
//
// # Console log bound
//
// PID 1 writes console.log directly, so its size is bounded by a check every
// second over running containers: when console.log is over ConsoleLogMax, its
// last ConsoleLogMax bytes are copied to console.log.1 and it is truncated
// (the writer's O_APPEND makes it continue at the new end). A rename would not
// do: the writer's descriptor would follow the file. So console.log.1 holds at
// most ConsoleLogMax bytes and console.log at most ConsoleLogMax plus what PID
// 1 writes in one second; the log is about 2×ConsoleLogMax at most for a
// moderate writer. Output written during the copy itself (one copy of at most
// ConsoleLogMax bytes) may be lost. On a failed start, runc's own error
// message lands in console.log too (runc's stderr is PID 1's), where the user
// can read it; Start also returns it.
//
// # Exec (exec.go)
//
// No runc exec (about 65 ms here): nsenter (util-linux, about 10 ms) joins
// PID 1's namespaces and execs the command in its place. The rest is
// inherited from the daemon thread that forks it: a throwaway OS thread
// first joins PID 1's PID namespace (so that nsenter is born in it and
// need not fork again), its cgroups (v1 moves one thread; v2
// clones straight into the cgroup), drops PID 1's bounding set, sets
// no_new_privs as PID 1 has it and loads the container's seccomp filter
// (seccomp.go compiles the same deny list runc gives PID 1), then forks and
// exits. In a user namespace, entering it grants the full capability set,
// so PID 1 is given the full set too: the two match exactly. The working
// directory is opened by the daemon inside the container's root
// (RESOLVE_IN_ROOT) and handed to nsenter by /proc/<daemon>/fd/N. With a
// terminal, the pty comes from the container's own devpts, and nsenter runs
// this program (the exec helper, fd 3, RunExecTTYHelper) which makes it the
// controlling terminal of a new session and execs the command in place.
// The command holds descriptors 0-2 and nothing else: nsenter closes
// nothing, so the forking thread marks every other descriptor of the daemon
// close-on-exec first (package cloexec), and the helper marks its own.
//
// # Freeze (freeze.go)
//
// No runc pause: the driver writes the container's freezer itself (v1
// freezer.state until FROZEN; v2 cgroup.freeze, then cgroup.events polled
// for "frozen 1"), about 0.1 ms against 7 ms for runc pause/resume. runc
// keeps no record of a pause (it reads the freezer at every state, kill
// and delete), so its view stays right.
//
// # Console (console_attach.go)
//
// The console is PID 1's stdio, not a terminal: attaching follows
// console.log and writes to console.in. Both outlive the daemon.
//
// # Files of an instance (OpenRoot)
//
// A running container's root is PID 1's root (/proc/PID/root), with the
// mounts of its namespace under it (a tmpfs /tmp): package fsroot walks it
// entering only data filesystems and opening only regular files. A stopped
// container's root is a detached mount of its Root mount: a fresh overlay
// made with fsopen/fsmount, or an open_tree clone of a bound directory,
// nodev and nosuid, in no mount table, ending with its file. The service
// never mounts a stopped layer twice: it holds the instance's lock while the
// root is open.
//
// # Extra mounts and hot plug (mounts.go)
//
// Spec.Mounts (disk devices) are recursive binds runc makes at their
// destinations, "ro" when read-only, keeping the source mount's flags a
// user namespace may not clear. An id-shifted one (Shift) in an
// unprivileged container is an idmapped mount, which runc 1.1 cannot make:
// such a start is `runc create`, then the driver mounts them as a hot
// attach does (PID 1 is runc's init, blocked on its exec FIFO with every
// mount of the spec made), then `runc start`. AttachMount clones the source
// on the host (open_tree), sets read-only and the idmap of PID 1's user
// namespace on the detached tree (mount_setattr), makes the destination
// inside the container from /proc/PID/root (openat2 RESOLVE_IN_ROOT, so no
// symlink of the container leads out; missing directories owned by its
// root), and move_mounts the tree there from a throwaway thread that
// joined PID 1's mount namespace. Each extra mount's unique mount id is
// recorded (mounts.json), so DetachMount unmounts exactly that mount, and
// a restarted daemon still can. They live as long as the mount namespace:
// nothing of them is on the host.
//
// # Block I/O (blkio.go)
//
// Limits.BlockIO are throttles in the runtime spec at start and written to
// blkio.throttle.*_device (v1) or io.max (v2) by UpdateLimits;
// DiskPriority is a weight (priority×100, as LXD) the driver writes after
// runc made the cgroup, skipped with one warning where the host has no
// weight file.
//
// # Invariants
//
//   - A failed Start leaves nothing behind: no process (PID 1 is killed and
//     reaped), no runc state, cgroup or mount, no rootfs/work dirs, and no
//     Dir/<id> if it did not exist. A legacy upper dir that existed is kept:
//     it is the instance's data.
//   - Stop returns once PID 1 is reaped, and runc state, cgroup and rootfs
//     mount are gone. The root's data survives.
//   - Delete removes Dir/<id> only once nothing is mounted under it: it
//     never reaches into storage's volumes.
//   - State never runs runc: it reads the tracked pid and the cgroup files,
//     kept open per running container (five descriptors) so a State is five
//     preads, about 10µs.
//   - The service never calls two methods for one ID at once; the watcher is
//     the only other actor on an ID, and Stop waits for it.
//   - An exec'd process inherits only its stdio from the daemon.
package container
