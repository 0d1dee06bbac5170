// Package instance owns instances and profiles: their records, their
// status, the rules for their config, and the locks that order operations
// on them. It is the core that every API dialect calls.
//
// What it owns
//   - The instance record (name, config, devices, profiles, ...) and its
//     status, kept in memory and written through to the store on every
//     change, so reads (list, get, recursion=2) never touch the database.
//   - Config validation: every key a client sends is checked against one
//     table (config.go) with its value's type; image.* keys are read-only
//     and volatile.* keys internal (a PUT may echo them back unchanged).
//   - The state machine (state.go): one table of allowed single-hop status
//     changes; restart is composed of validated hops.
//   - Profiles, because an instance's meaning is its profiles' config
//     layered under its own.
//   - What PID 1 runs. An image with no config (a root filesystem tarball)
//     runs /sbin/init, stopped with SIGPWR. An instance created from an OCI
//     image records the image's run defaults at create as read-only keys
//     (volatile.oci.entrypoint, .cmd and .env as JSON arrays, .cwd, .uid,
//     .gid with user names resolved in the image, .stop_signal) and runs
//     entrypoint+cmd as that user in that directory, stopped with the
//     image's StopSignal or SIGTERM. The image's env lies under the
//     environment.* keys (a key of the same name wins). The user keys
//     oci.entrypoint and oci.cmd (JSON arrays of strings), oci.cwd (an
//     absolute path) and oci.uid/oci.gid (uint32) override them; setting
//     oci.entrypoint alone drops the image's cmd, as docker run
//     --entrypoint does. A create whose source names an OCI registry
//     (protocol "oci") resolves the reference before answering and pulls
//     in its operation (oci.go).
//   - Files inside instances (files.go): the id map between the instance's
//     ids and the host's, LXD's defaults for owners and modes. Paths are
//     resolved by package fsroot in a root the driver opens (RootOpener).
//   - Instance types: Config.Drivers maps each type to its driver
//     (TypeContainer: package container, TypeVM: package qemu); a type
//     without one cannot be created. Keys of one type are refused on the
//     other (bytype.go: security.secureboot is a VM's; security.privileged
//     and limits.processes a container's). What only VMs have is in
//     vm.go: at least 128 MiB, no id map, a stateful stop that saves them
//     (driver.Stateful), files reached through the guest agent
//     (driver.GuestFiles, so only while running), disk images booted with
//     UEFI. A driver that reports a crash (Exit.Error) leaves the
//     instance in status Error.
//   - Volatile keys with LXD's names and values (volatile.go): a random
//     volatile.uuid at create, never changed; volatile.idmap.base, .next
//     and .current and volatile.last_state.idmap in LXD's JSON IdmapEntry
//     form (the shared map for unprivileged containers, "[]" for
//     privileged ones, none for VMs).
//   - Snapshots (snapshots.go): an instance snapshot is its record as it
//     was (instance_snapshots) beside its root's snapshot (storage), made
//     in that order and matched again at load (reconcileSnapshots). A
//     running VM is paused for one; a stateful one saves its memory in the
//     same pause (driver.Checkpointer) under Config.StateDir. Restore is
//     LXD's: a running instance is stopped, restored and started (from the
//     saved state with stateful). Schedules, names and expiry follow
//     package snapshotpolicy; the daemon ticks SnapshotTick once a minute.
//   - Copies (copy.go) and forks (fork.go): a copy takes the source's
//     config, devices and profiles under the request's, never its
//     identity (volatile keys); its root comes from storage's CopyRoot
//     and its snapshots along. Until whole it is marked volatile.creating,
//     so a daemon killed mid-copy removes it at the next start. A fork is
//     a copy that runs at once: a running VM's from a checkpoint taken in
//     the pause that clones its disk, with its processes; a container's
//     from a clone taken while frozen, booted afresh.
//   - Roots lent for reading (readroot.go): publish and backups read a
//     root or snapshot while a running container is frozen.
//
// The shape every edge calls (types.go)
//
// The core speaks its own types, modelled on LXD's field set (as Incus
// keeps one shared model) but with plain Go fields: no URLs, no ETags, no
// JSON tags, no envelopes. In: CreateRequest (with Source), Put, Patch,
// ProfilePut, ExecRequest, FileWrite, StopOptions. Out: Instance, Full
// (with State), State (with its Network map), Profile (UsedBy names
// instances), Process (a running exec), File, Status and Type. Each edge
// translates: the LXD edge (internal/api/lxd/convert.go) renders status
// codes, /1.0 URLs, used_by URLs, location and project, recursion
// placeholders and ETags; the seeds' instances API, the JSON-RPC
// virt.instance.* edge and the /v/ REST edge translate from the same
// types. Every exported method takes a context first (for identity and
// project, later).
//
// Optimistic concurrency without ETags: Update, Patch and UpdateProfile
// take a Precondition, a func the core calls with the instance (profile)
// as it is, under the lock that orders its changes, before changing it.
// The LXD edge passes one comparing its ETag (a hash of the current
// instance) with If-Match; an error leaves everything unchanged. So the
// check and the change are one atomic step, and the core knows no ETag.
//
// Devices (devices.go): the core validates a devices map through its
// DeviceLayer (package device) and asks it, around every runtime call, for
// the host side of an instance's expanded devices: Start before the
// runtime starts (a network namespace with the NICs, joined through
// driver.Spec.NetNS/UserNS; taps for a VM), Started once it runs
// (proxies), Stop after any stop or exit, Reattach at recovery, Update for
// devices changed on a running instance (its own or through a profile:
// live, as LXD does, undone whole if one instance refuses), Removed when
// a NIC's device goes (its addresses are released). The keys the devices
// set (volatile.DEV.hwaddr, .host_name) are recorded with the start.
//
// Lifecycle events name the entity (event.Entity: kind, name; project
// later) and the action (LXD's names, "instance-started"); the hub keeps
// them so, and each edge renders them (LXD: source /1.0/instances/NAME).
//
// What it must not touch
//
//	HTTP, JSON envelopes, URLs, ETags, operations and websockets (the API
//	edges), SQL (the store), runc, cgroups, mounts and namespaces (the
//	driver). It reaches them only through the small interfaces in
//	service.go, types.go and the driver package.
//
// Locking
//
//	Four locks, always taken in this order (never the other way round):
//
//	  1. Service.profileMu: profile writes (create, update, rename,
//	     delete) and changes to which instances use a profile (a create's
//	     registration, a PUT or PATCH of an instance's profile list), so a
//	     profile change is checked against every instance that will use
//	     it.
//	  2. inst.op, the operation lock: held across every call into the
//	     instance's driver and the status changes around it (start, stop,
//	     restart, freeze, unfreeze, delete, exec start, each file read,
//	     write or delete, a live limits update). Two operations on one
//	     instance never interleave, and the driver never sees two calls for
//	     one instance at once; operations on different instances never wait
//	     on each other. A create holds the new instance's op lock before the
//	     instance becomes visible.
//	  3. inst.cfg, the record lock: held across every read-modify-write of
//	     the instance's record, its database write included, so no change
//	     is lost to another's write. It is held across a driver call only by
//	     a live limits update (the saved record must be what the runtime
//	     was given) and by delete (its check and its removal are one step).
//	     The status leaves Stopped (to Starting) under it, with the record
//	     the start will run, so a config change either is in that record
//	     or sees the start.
//	  4. Service.mu: the maps and every inst's fields, for short reads and
//	     writes only, never across a driver call, nor a database write
//	     but a profile delete's.
//
//	Several instances' locks (a profile change takes its users') are
//	taken in name order, every op lock before any record lock.
//
//	A config PUT or PATCH takes the record lock only, unless it changes the
//	profile list (profileMu too) or the limits or devices of an instance
//	that runs or is starting (the op lock too, for the runtime update): a PATCH of
//	user.* or environment.* keys never waits for a freeze, a start or a
//	stop of its instance. It learns what it needs under the record lock and
//	starts over with more locks when it needs them. Its Precondition (an
//	edge's ETag check) runs under the record lock, atomic with the change.
//
// Invariants
//   - A create that fails anywhere, its start included, leaves nothing: no
//     record, no runtime state, no reserved name.
//   - Exit codes are never invented: volatile.last_state.exit_code is set
//     only when the daemon reaped PID 1 itself; an exit seen only after a
//     daemon restart leaves it unset.
//   - A stop is recorded (volatile.last_state.power=STOPPED) before the
//     runtime acts, so a daemon killed mid-stop recovers the instance as
//     stopped, exactly as if the stop had completed, never as "vanished"
//     (which would start it again); a failed stop records it running
//     again. The stop inside a restart records RUNNING instead.
//   - The runtime ID ("h" + database id) never changes, so an instance can
//     be renamed while it runs.
package instance
