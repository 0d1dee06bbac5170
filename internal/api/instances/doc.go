// Package instances is the edge of the instances API of seed 002
// (hypeman's InstanceService: OCI images booted as VMs): it translates
// that dialect to the instance core and back, and holds no state of its
// own. The wire types are package api/instances; the in-tree client is
// client/instances.
//
// Where it is served
//   - hangard --instances-api ADDR: its own plain-HTTP TCP listener; the
//     routes sit at the root (base URL http://ADDR/).
//   - the unix socket, under /instances-api/ (base URL
//     http://unix/instances-api/), beside the LXD API.
//
// Who is asking (server.go)
//   - internal/edge's Authenticator: "Authorization: Bearer TOKEN" is
//     that API token (hangar token create); the unix socket without a
//     header is root. Anything untrusted (no token over TCP, an unknown,
//     revoked or expired token anywhere) is 401 unauthorized. What a
//     trusted identity may do is the authorization core's: the instance
//     core checks every call, so a viewer token's create is 403.
//   - The project is the token's: a project token acts in its project,
//     root and admin tokens in the default project. The dialect has no
//     project parameter.
//   - edge.Audit logs every mutating and every denied request.
//
// Errors (errors.go: statusOf is the one place errors become statuses):
// the body is always {"code", "message"}, never LXD's envelope.
// errdefs.ErrInvalidArgument -> 400 bad_request (the message starts with
// the field: "vcpus: 0: at least 1"), unauthenticated -> 401
// unauthorized, ErrForbidden -> 403 forbidden, ErrNotFound -> 404
// not_found, ErrConflict and ErrPreconditionFailed -> 409 conflict (state
// conflicts: standby of a stopped instance, restore of one not in
// standby), ErrNotImplemented -> 501 not_implemented (a contract not
// built yet), ErrNoSpace -> 507, anything else 500 internal_error.
// Bodies are decoded strictly: an unknown field, a wrong type or
// trailing data is a 400 naming it.
//
// Choices where the seed is silent
//   - Instances are virtual machines: List shows only VMs of the
//     project, and {id} naming a container is 404. Containers stay the
//     LXD API's.
//   - Ids are the core's CUID2 ids (instance.Instance.ID). {id} accepts
//     an id, a name, or a unique id prefix (instance.Service.ResolveID).
//   - Sub-service paths are hypeman's OpenAPI ones:
//     /instances/{id}/auto-standby/status (GET) and .../hold (POST),
//     /instances/{id}/snapshots (POST),
//     /instances/{id}/snapshots/{snapshotId}/restore (POST),
//     /instances/{id}/snapshot-schedule (GET, PUT, DELETE),
//     /instances/{id}/volumes/{volumeId} (POST attach, DELETE detach).
//   - State mapping (render.go, stateOf): Starting -> Created (QEMU is
//     being set up, the guest has not run); Running before the guest
//     agent reports the entrypoint started -> Initializing; Running ->
//     Running; Freezing/Frozen -> Paused; Stopping -> Shutdown; Stopped
//     with a saved standby state (Instance.Stateful) -> Standby; Stopped
//     -> Stopped; Error -> Unknown with state_error. has_snapshot is
//     true in Standby (a saved state exists to restore from).
//   - Create (create.go) is the core's Create of type virtual-machine
//     from the OCI image (source protocol "oci", pulled by the core; a
//     loopback registry is reached over plain HTTP, as the seed has no
//     insecure flag), started at once; 201 with the instance. Fields map
//     to config keys and devices:
//     size -> limits.memory (bytes; default 1GB), vcpus -> limits.cpu
//     (default 2), hotplug_size -> limits.memory.hotplug, overlay_size
//     -> the instance's root disk "size", disk_io_bps -> root disk
//     limits.read and limits.write (bytes/s), env -> environment.KEY
//     (except the keys credentials take their real values from), tags ->
//     user.tag.KEY, entrypoint/cmd -> oci.entrypoint/oci.cmd (JSON
//     arrays), skip_guest_agent -> agent.skip, auto_standby ->
//     autostandby.enabled, .idle_timeout, .ignore_destination_ports and
//     .ignore_source_cidrs (comma lists), snapshot_policy.compression ->
//     snapshots.compression (none, zstd:LEVEL, lz4:LEVEL), credentials ->
//     credentials.NAME (the credential's JSON) with the real values in
//     CreateRequest.Secrets (never config), network.egress -> egress.enabled
//     and egress.mode, network.enabled=false -> a "none" device masking
//     the default profile's eth0; enabled (the default) -> an eth0 of the
//     instance's own on the default network (hangarbr0), whatever the
//     project's default profile holds, with bandwidth_download/upload as
//     its limits.ingress / limits.egress in bit/s, volumes -> disk devices "volume-ID" of the
//     project's custom volume ID (its pool looked up), mounted at
//     mount_path, readonly as asked; overlay volumes are refused (400).
//     skip_kernel_headers is accepted and does nothing (no headers are
//     installed at boot here). hypervisor: only qemu exists; the seed's
//     others are a 400 saying so; devices and gpu.profile are a 400 (no
//     GPU/PCI devices to pass through).
//   - Sizes read as hypeman reads them: 1024-based whatever the suffix
//     ("1GB" = 1 GiB, "512MB", "2G", a byte count); rendered in the
//     largest unit dividing them ("1GB"). Bandwidths: "1Gbps" bits/s,
//     "125MB/s" bytes/s, decimal. Disk rates: "100MB/s", 1024-based.
//   - Start applies entrypoint/cmd overrides to the config first (they
//     stay, as the seed says "omit to keep the previous value"); Start
//     of an instance in Standby is 409 (restore it). Stop is graceful
//     (the image's stop signal, then the default grace). Standby is a
//     stateful stop; a compression given to it applies to that standby only
//     (StopOptions.Compression), the instance's snapshot_policy being the
//     default. Restore starts an instance in Standby (409
//     otherwise). Delete stops a running instance at once, then deletes.
//   - Fork needs from_running for a running source (409 otherwise);
//     the core's fork of a running VM carries its memory and runs; of a
//     stopped or standby one it is a stopped copy. The fork is then moved
//     to target_state (default: the source's state): started, stopped,
//     or (Standby) started if need be and stopped with its state.
//   - Wait answers when the state is reached, when it is Unknown, or at
//     the timeout (default 60s, capped at 5m) with timed_out; it wakes on
//     lifecycle events and looks again every 250ms for changes that
//     publish none (the workload starting).
//   - Logs: source app -> the guest console (instance.LogApp), vmm ->
//     QEMU's log, hypeman -> the daemon's action log; tail defaults to
//     100; each line is one SSE event "data: LINE\n\n", flushed per batch
//     the core emits; an error after the stream began ends it with an
//     "event: error" event.
//   - Snapshots: a snapshot's id is its name (unique per instance);
//     kind Standby is a stateful snapshot, Stopped a stateless one;
//     size_bytes is 0 (not measured). tags are the snapshot's metadata;
//     compression applies to that snapshot's saved state (a Standby
//     kind). A snapshot taken here never expires: max_age is the
//     schedule's retention (snapshots.expiry), not a manual snapshot's.
//     Restore defaults target_state
//     by kind (Standby -> Running, Stopped -> Stopped).
//   - Auto-standby status and hold are the daemon's controller
//     (interface AutoStandby); 501 without one.
//   - Update (PATCH) is the core's UpdateCredentialValues.
package instances
