// Package lxd is the HTTP edge that speaks the LXD REST API 1.0: paths,
// sync/async/error envelopes, operations, events over websocket, ETags.
//
// Handlers decode and check the request's shape (JSON types, enums such as
// recursion and state actions), call one service method and encode the
// answer. They hold no business rules: validation of meaning (config keys,
// names, state changes) is the services' job, and errors come back as
// errdefs kinds that statusOf maps to HTTP codes in one place.
//
// Requests that LXD answers with an operation (create, state changes,
// delete, rename, PUT) are validated first and answered 400/404/409 at
// once when they cannot succeed; only work that can succeed becomes an
// operation. Parts of the LXD API that later work brings (snapshots,
// backups, networks, storage) answer 501 with a clear message rather than
// a 404 that looks like a typo, and so does a method an endpoint lacks.
//
// Every instance endpoint is served under /1.0/instances and LXD 5.0's
// aliases /1.0/containers and /1.0/virtual-machines (prefix.go), and the
// status codes and error words are LXD 5.0.2's (status_test.go).
package lxd
