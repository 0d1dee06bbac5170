// Package velocity is the edge of the /v/ REST API of seed 003 (the
// Velocity VM manager's) and of that project's login, /u/auth: it
// translates the dialect to the instance core, the project domain and
// the authorization core, and holds no state of its own but the
// sessions (authkeys). The wire types are package api/velocity; the
// in-tree client is client/velocity.
//
// Where it is served
//   - Over HTTPS (core.https_address), at the root: /u/auth and /v/...
//     beside LXD's /1.0 (which uses neither prefix), so a Velocity client
//     needs only the server's address.
//   - On the unix socket under /velocity/ (base URL
//     http://unix/velocity/), as the instances API is under
//     /instances-api/. The socket gives no root here: the dialect has one
//     authentication, the authkey, on every transport.
//
// Authentication (login.go, sessions.go)
//   - POST /u/auth {"name", "password"} -> {"authkey", "expires"}
//     (Velocity's APISPEC u.md): trust.Users.Login checks the password
//     (rate-limited per source address); any failure is 403 without
//     saying whether the user exists. DELETE /u/auth drops a key (200
//     even for an unknown one, as the spec says); PATCH /u/auth trades a
//     live key for a new one and ends the old one.
//   - An authkey is 32 random bytes in hex, kept in memory only: a
//     daemon restart logs everyone out. It lives DefaultSessionTTL (one
//     hour) from its login or renewal; expires is its end as a unix
//     timestamp. At most 10000 keys are held; beyond that the one
//     nearest its end is dropped.
//   - Each /v/ request's body carries the authkey; its session's identity
//     (the user's: auth.KindUser with its groups) goes into the request's
//     context before the audit log and the core see it. No authkey, an
//     unknown or an expired one is 401 on every endpoint.
//
// Groups and permissions
//   - A GID is a hangard project (its name); subgroups are nested
//     projects (project.Project.Parent). What the caller may not see of a
//     group (no right at all on it or an ancestor) is 404, as a missing one.
//   - The seed's four permissions are entitlements of the authorization
//     core, held by auth groups whose members are users (Member{Method:
//     "user"}); a grant on a project applies to every project below it
//     (auth/tree.go). Two map onto existing entitlements, two are new
//     project-level ones taken from Incus, because the existing set had no
//     right that is "all instances of the project" without being more:
//     velocity.vm.view = can_view_instances on the group (new; viewer and
//     operator include it), velocity.vm.create = can_manage_instances
//     (existing: create, view, delete), velocity.vm.state =
//     can_operate_instances (new: view and can_update_state on every
//     instance of the project; not exec or edit), velocity.nic.list =
//     can_view_resources on the server (existing: the host's hardware is
//     what it shows; "somewhere" has no single object in our model, and
//     host NICs belong to no project). New ones rather than four
//     velocity.* names: the same rights then mean the same through the
//     LXD API and every dialect.
//   - The core checks again on every call (can_view on each instance of a
//     list, can_update_state on a state change), so the edge's checks
//     choose the seed's status and the core's make the decision binding.
//
// Statuses (errors.go: statusOf is the one place)
// Bodies of errors are {"error": "..."} (the APISPEC's error shape).
// 401: no live authkey, and the missing permission of /v/vm/list,
// /v/vm/efi and /v/nic/list (the seed's "lacking permissions"). 403: the
// missing permission of the /v/vm/state methods (the seed's). 404:
// unknown or hidden GID, VMID, MID or NICID; POST /v/vm answers 404 for a
// VM the caller cannot view (the seed's), and so do the state methods
// (a VMID the caller cannot view is "not available"). 406: a quota
// exceeded in the group or any ancestor (the core's refusal, naming the
// project, the limit and the excess), an invalid media mode or NIC type,
// rosetta asked for, a filesystem volume as a medium, an ISO medium
// with readonly false. 409: a VM of that
// name in the group. 500: a state change the VM cannot make from its
// state (STOPPED -> PAUSED) or that the hypervisor failed (the seed's
// only error of a transition). 400: a malformed body (unknown field,
// wrong type, missing name/gid/vmid, a count out of range, a requested
// hypervisor state).
//
// Choices where the seed is silent
//   - Numbers: the seed quotes every count ("cpus": "<CPU count>"), so
//     answers write cpus, memory_mib, width, height, ppi and expires as
//     JSON strings; because a quoted placeholder does not settle what a
//     client sends, requests take a string or a JSON number (wire.Num).
//     gid, vmid, mid and nicid are strings (names and ids).
//   - VMIDs are the core's CUID2 instance ids (instance.Instance.ID):
//     stable across renames, unique across projects, so a VMID alone
//     finds its group (instance.Service.FindID).
//   - The /v/ API shows virtual machines only; a container's id is 404.
//     VMs made through the LXD API are listed here (type "IMAGE" when
//     made from an image, "EFI" when made empty) and VMs made here are
//     ordinary instances of the group's project through the LXD API.
//   - PUT /v/vm/efi makes, stopped, a VM with no image: an empty sparse
//     raw disk of DefaultDiskSize (8 GiB, on the server's default pool,
//     counted by limits.disk) that storage marks as firmware-booted, so
//     QEMU boots it under OVMF as a disk-image VM; Secure Boot is off
//     (security.secureboot=false: install media are rarely signed for
//     it). It boots what the media hold. cpus -> limits.cpu, memory_mib
//     -> limits.memory (MiB), autostart -> boot.autostart (start with
//     the daemon). The answer is 200 with the vmid, after the disk exists.
//   - Media: a MID is "POOL/VOLUME", a custom volume of the group's
//     project (or of the default project without
//     features.storage.volumes) on a storage pool (the media pool);
//     velocity.vm.create on the group covers attaching any of them, as an
//     LXD instance may name any volume of its project. Block
//     volumes (disk images) attach as disk devices media0, media1, ...
//     with io.bus usb (USB), virtio-scsi (BLOCK: a block device on a SCSI
//     controller) or virtio-blk (VIRTIO), readonly as asked. ISO volumes
//     (content type iso, lxc storage volume import --type=iso) are media
//     too, the same devices, which the device layer makes read-only: BLOCK
//     is a CD-ROM (scsi-cd), USB a read-only usb-storage disk, VIRTIO a
//     read-only virtio-blk disk (a guest reads ISO 9660 from any block
//     device). readonly false on an ISO is refused (406) rather than
//     forced to true: the client asked for something it cannot have.
//     Filesystem volumes are refused (406). USB disks and CD-ROMs are
//     cold-plugged (they apply at the next start).
//   - NICs eth0, eth1, ...: NAT is a nic on the managed bridge
//     (network.DefaultBridge, NAT on). BRIDGE attaches to the host NIC
//     the NICID names: a bridged nic (a tap) when it is a bridge, a
//     macvlan nic on it otherwise (physical, bond, vlan, veth: the device
//     layer gives a VM a macvtap in bridge mode, as LXD does). As with
//     any macvlan, the VM reaches the NIC's network and the other
//     macvlans on it, not the host through that NIC. The loopback is
//     refused (406). POST /v/vm shows a macvlan or bridged nic made
//     through the LXD API as BRIDGE.
//   - NICIDs are the administrator's: the server key velocity.host_nics
//     ("NICID=IFACE,..."), set with `hangar config set` by whoever may edit
//     the server. A key, not a table and an API of its own: it is a
//     handful of admin-chosen names, read on every /v/nic/list, and the
//     server config already gives validation, persistence, audit and a CLI.
//     /v/nic/list shows each NICID with the interface (identifier) and
//     the host's description of it (kind and name, or "not present").
//   - Displays: one display device per display, display0, display1, ...
//     (VNC on 127.0.0.1, port picked by the driver: volatile.NAME.port),
//     the display's name as its description, width, height (the virtual
//     GPU's resolution) and ppi (recorded: QEMU has no setting for it),
//     in the display device's ranges (320-7680 x 200-4320, ppi 1-1000);
//     POST /v/vm shows them back.
//   - rosetta is false on this host; true is 406.
//   - States (stateOf): the core's status during an operation is the
//     in-between state: Starting -> STARTING, Stopping -> STOPPING,
//     Freezing -> PAUSING; Frozen (QEMU paused) -> PAUSED; Running ->
//     RUNNING; Stopped and Error -> STOPPED. RESUMING is never shown: the
//     core resumes in one hop under the VM's lock. Requests: RUNNING
//     starts a stopped VM or resumes a paused one, PAUSED pauses a
//     running one, STOPPED stops a running or paused one (force: at once;
//     else a graceful shutdown with the default grace), and a forced
//     STOPPED also ends a VM that is STOPPING. The answer carries the
//     state after the change.
package velocity
