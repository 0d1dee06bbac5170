// Package virt is the edge of the NAS middleware's virtualization API
// (seeds 000 and 001: virt.instance.* of TrueNAS's middleware): JSON-RPC
// 2.0 over a websocket, translated to the instance core and back. Jobs
// are the daemon's operations; change events come from the core's event
// hub. It imports no driver.
//
// Where it is served
//   - Path (/api/current) on the unix socket and on the HTTPS listener
//     (internal/daemon/virtapi.go mounts it beside the LXD API).
//
// Who is asking (rpc.go, methods.go)
//   - A session is one websocket. Whoever the transport proves is logged
//     in at once, as on the middleware's own unix socket: the unix socket
//     is root; over HTTPS a trusted client certificate or an
//     "Authorization: Bearer" API token (internal/edge). Anyone else must
//     call auth.login (user, password: trust.Users),
//     auth.login_with_api_key (hangar's API tokens, hgr_...) or
//     auth.login_ex (mechanisms API_KEY_PLAIN and PASSWORD_PLAIN; others
//     are a validation error). A login replaces the session's identity;
//     a failed one answers false (login_ex: AUTH_ERR) and is audit-logged.
//     auth.logout, auth.me and core.ping are served too.
//   - The session acts in one project: a project token's own, the
//     default project for everyone else (users included).
//   - Roles (every method and every subscription): VIRT_INSTANCE_READ is
//     can_view on the session's project, VIRT_INSTANCE_WRITE is
//     can_manage_instances on it (auth.Authorizer): a viewer token holds
//     READ only, an operator or admin both, a user what its groups grant.
//     The core checks each call again. Unauthenticated calls other than
//     auth.* and core.ping are -32001 ENOTAUTHENTICATED "Not
//     authenticated"; a missing role is -32001 EACCES "Not authorized".
//     core.get_jobs, core.job_wait and the core.get_jobs subscription need
//     a login only (jobs are those of the session's project).
//   - A websocket whose Origin header names another host is refused (a
//     browser page elsewhere cannot use the browser's client
//     certificate); clients that send no Origin are served.
//   - Every WRITE call and every denied call is logged under
//     logger=audit with identity, source, project, method and outcome.
//
// Errors (errors.go: toRPCError is the one place errors become JSON-RPC
// errors). data is the middleware's {error (errno), errname, reason,
// trace (null), extra}. Validation errors are -32602 "Invalid params",
// EINVAL, extra [[attribute, message, 22], ...], reason one
// "[EINVAL] attribute: message" line each; attributes are paths such
// as virt.instance.create.name, virt.instance.create.devices.0.source_port,
// virt.instance.update.virt_instance_update.cpu,
// virt.instance.device_add.device.dev_type. Every field's type,
// nullability, range, length, enum, const and additionalProperties=false
// is checked (schema.go, args.go). The core's errdefs: invalid argument
// -> -32602 with the method as attribute, forbidden -> EACCES, not found
// -> ENOENT, conflict -> EEXIST, precondition failed -> EBUSY, not
// implemented -> ENOTSUP, no space -> ENOSPC, others EFAULT; all -32001
// "Method call error". Malformed JSON -32700, a bad request object
// -32600, an unknown method -32601, more than 20 calls at once on a
// session -32000.
//
// Choices where the seeds are silent
//   - id is the instance's name (as in the middleware); get_instance,
//     update, delete, start, stop, restart and device_* take it.
//   - create takes seed 001's arguments and, as the middleware's VM
//     releases do, instance_type VM (seed 001's const is only
//     CONTAINER), vnc_enabled (default false), vnc_port (5900-65535 or
//     null: the driver picks a free one), vnc_password (null: none) and
//     secure_boot (null: the core's default, true). remote must be
//     LINUX_CONTAINERS and source_type IMAGE; image is resolved among the
//     daemon's local images by alias or fingerprint (no download): an
//     unknown one is a validation error on image.
//   - Mapping to the core (mapping.go): environment -> environment.KEY,
//     autostart -> boot.autostart, cpu -> limits.cpu, memory (bytes) ->
//     limits.memory, privileged_mode -> security.privileged (containers
//     only; true on a VM is refused), secure_boot -> security.secureboot
//     (VMs only), vnc_* -> a display device "vnc" {protocol vnc, port,
//     password} (the port the driver picked is volatile.vnc.port),
//     storage_pool (default: the default profile's root pool; it must be
//     one of virt.global.config's storage_pools) -> the instance's own
//     root disk "root" {path /, pool}; root_disk_size (GiB) -> its size
//     and root_disk_io_bus -> its io.bus, for VMs only (a container's
//     root is a tree; the middleware applies them to VMs only too).
//   - Devices: DISK -> disk {source, path: destination, readonly,
//     boot.priority, io.bus, pool: storage_pool} (destination required
//     and absolute for containers); CDROM -> disk {source: an absolute
//     .iso path, boot.priority}, VMs only; NIC -> nic {network} or
//     {nictype bridged|macvlan, parent}, hwaddr: mac; PROXY -> proxy
//     {listen PROTO:0.0.0.0:source_port, connect PROTO:127.0.0.1:dest_port}
//     for containers, {connect PROTO:0.0.0.0:dest_port, nat=true} for
//     VMs; TPM -> tpm {path, pathrm}; USB -> usb {busnum, devnum,
//     productid, vendorid}; GPU -> gpu {gputype, id, gid, uid, mode, mdev,
//     mig.uuid, pci, productid, vendorid}; PCI -> pci {address}. The core
//     refuses USB/GPU/PCI devices the host lacks (and every value it
//     checks itself): in create that is the job failing (EINVAL, nothing
//     left behind), in device_add/device_update the call's validation
//     error with the method as attribute. A device without a
//     name gets the first free "<type><n>" (NICs "eth<n>"). description
//     is not stored: device_list computes one ("source -> path").
//     device_list shows the expanded devices (profiles' included) the
//     union has a type for: the vnc display and "none" devices are not
//     listed. device_update replaces one of the instance's own devices
//     (by name); device_delete refuses a profile's device. Device calls
//     answer true at once (not jobs), as the middleware's do.
//   - Writes (update, device_*) read the instance, change its own config
//     and devices and write them back under a precondition that nothing
//     changed in between (EBUSY otherwise).
//   - Entries (entryOf): status Running/Stopped/Starting/Stopping/
//     Freezing/Frozen/Error -> RUNNING/STOPPED/STARTING/STOPPING/
//     FREEZING/FROZEN/ERROR, anything else UNKNOWN (THAWED and ABORTING
//     are never produced: a thawed instance is RUNNING). cpu, memory,
//     autostart, environment from the expanded config; aliases: the
//     global-scope addresses of every interface but lo (INET/INET6,
//     netmask the prefix length); image: the image.* properties copied
//     at create (secureboot from image.requirements.secureboot); idmap
//     from volatile.idmap.current (containers; null when privileged and
//     for VMs); raw = {config, devices} (the instance's own); vnc_* from
//     the "vnc" display device; secure_boot null for containers,
//     privileged_mode null for VMs; root_disk_size (GiB), io bus and
//     storage_pool from the root disk.
//   - Jobs (jobs.go): create, update, delete, start, stop, restart answer
//     a job id at once. Every operation of the session's project is a job
//     (integer ids given in the order the edge first sees them; others'
//     operations have method "hangar.operation" and their metadata as
//     result). States: Pending WAITING, Running RUNNING, Success
//     SUCCESS, Failure FAILED, Cancelled ABORTED. progress.percent is 0
//     until the end, then 100. Results: create and update the entry,
//     the others true. delete stops a running instance (force) first.
//     restart of a stopped instance starts it. stop's timeout -1 is the
//     core's default grace. core.job_wait answers the result or the
//     job's error (its errno). Jobs disappear with their operations (10
//     minutes after the end).
//   - Events (watch.go): one watcher per daemon listens to lifecycle and
//     operation events and keeps the last entry of every instance (one
//     cache shared by all subscribers). Each instance lifecycle event,
//     whichever API caused it, re-reads that instance and sends added
//     (fields: the entry), changed (fields: only the changed fields) or
//     removed (id only); a rename, and every 5 s while anyone subscribes,
//     compares every instance (changes that publish no event: a VM's
//     address). Each message is encoded once and queued to each
//     subscribed session of that project that holds READ. core.get_jobs
//     subscribers get added then changed with the whole job. A session
//     whose queue (16384 messages) fills is closed, never silently
//     skipped.
//   - virt.global.config: {id 1, pool: the default pool, storage_pools,
//     dataset/bridge/v4_network/v6_network null, state INITIALIZED}.
//   - virt.device.usb_choices/pci_choices/gpu_choices list the host's
//     devices (package device), keyed usb_BUS_DEV and by PCI address.
package virt
