// Package lxd is the HTTP edge that speaks the LXD REST API 1.0: paths
// (under /1.0/instances, and /1.0/containers and /1.0/virtual-machines as
// LXD 5.0 serves them), sync/async/error envelopes, operations, events
// over websocket, ETags.
//
// Handlers decode and check the request's shape (JSON types, enums such as
// recursion and state actions), translate it to the core's types, call one
// service method and render the answer. They hold no business rules:
// validation of meaning (config keys, names, state changes) is the
// services' job, and errors come back as errdefs kinds that statusOf maps
// to HTTP codes in one place.
//
// Translation (convert.go) is the only place LXD's shapes meet the core's:
// instance.Instance, Full, State and Profile become api.Instance,
// InstanceFull, InstanceState and Profile with LXD's status codes, URLs
// (/1.0/instances/NAME, used_by, exec-output), location "none", project
// "default" and the snapshots of recursion=2 (its backups are listed at
// their own endpoint); requests
// become instance.CreateRequest, Put and Patch; hub events become
// api.Event with a lifecycle's entity rendered as its source URL. ETags
// are hashes of what a PUT replaces, computed here; If-Match becomes an
// instance.Precondition that the core checks under the instance's lock.
// The edge imports no driver: a running exec is an instance.Process.
//
// Requests that LXD answers with an operation (create, state changes,
// delete, rename, PUT) are validated first and answered 4xx at once when
// they cannot succeed; only work that can succeed becomes an operation.
// Exec (websocket operations, record-output), console, files, logs,
// images, networks, snapshots, copies, publishing, backups (backups.go:
// export, and import by an octet-stream POST /1.0/instances) and forks
// (hangar_fork) are served; parts of the LXD API that later work brings
// (migration between servers, projects, certificates, cluster, warnings)
// answer a clear 501 (or, for a collection hangard truthfully
// has none of, an empty list) rather than a 404 that looks like a typo,
// and so does a method an endpoint lacks.
//
// Snapshots (snapshots.go, storage_snapshots.go) are LXD 5.0.2's: an
// instance's under /{name}/snapshots, a custom volume's under its
// volume, restored by a PUT of the instance or volume naming one in
// "restore". Recursion=2 and an instance's full view carry its
// snapshots, one core query per instance.
//
// ISO volumes (storage.go, custom_volume_iso) are imported as LXD 5.x
// imports them: an octet-stream POST to /1.0/storage-pools/POOL/volumes
// (/custom) with the image as the body, X-LXD-name and X-LXD-type: iso.
// The image is read and checked while the request is answered, so a bad
// one is a 400 leaving nothing; the answer is an operation, already done.
// An octet-stream POST without X-LXD-type: iso is a volume backup, which
// hangard does not import (501). lxc 5.0.2 has no --type=iso: hangar
// storage volume import does it.
//
// Networks (networks.go, network_forwards.go) go to a Networks interface
// (the network manager): /1.0/networks with state, leases and forwards,
// with LXD's network and forward ETags. The manager takes no
// precondition, so If-Match is checked against a fresh read just before
// the change. A server without a manager lists no networks, finds none,
// answers changes 501 and leaves the network extensions out of GET /1.0.
//
// Every instance endpoint is served under /1.0/instances and LXD 5.0's
// aliases /1.0/containers and /1.0/virtual-machines (prefix.go), and the
// status codes and error words are LXD 5.0.2's (status_test.go).
package lxd
