// Package auth owns who may do what: identities (the unix socket's local
// root, TLS client certificates, bearer tokens and API keys), the groups
// they belong to and the entitlements groups hold on objects (server,
// project, instance, image, network, storage pool and volume, profile).
// It denies by default.
//
// An edge authenticates a request and puts its Identity in the context;
// the core's entry points ask the Authorizer before they act, so no
// dialect can forget to check.
package auth

// # The model
//
// Objects (object.go) are typed and named inside the project that holds
// them; entitlements (entitlement.go) are held on objects by groups
// (group.go) and by what an identity is (authorizer.go, builtin): the unix
// socket, the daemon and unrestricted client certificates are admin; a
// restricted certificate is operator on each of its projects and may view
// the server, the storage pools and the default project's networks,
// images and profiles (LXD 5.0's restricted client: lxd/daemon.go,
// lxd/storage_pools.go); a metrics certificate holds can_view_metrics and
// nothing else; a local user (KindUser, logged in with a password to a
// dialect) holds nothing of its own, only what its groups grant; an
// untrusted client holds nothing, whatever its groups. Deleting a user
// takes it out of every group (RemoveMember, with the store's delete
// under the same lock), so a later user of the same name inherits nothing.
// The implications are one function, grants.allows. A denial is
// errdefs.Forbidden, or errdefs.NotFound, in the words of a missing
// object, when the identity may see neither the object nor its project.
//
// # Why an in-tree model and not OpenFGA or casbin
//
// What we need is small and fixed: nine object types, a two-level
// hierarchy (server > project > object), three implication rules and
// groups of at most a few hundred permissions. The in-tree model is ~300
// lines with no dependency, a check is a handful of map lookups on an
// immutable snapshot (BenchmarkCheck: ~0.2 µs allowed through a group,
// ~0.03 µs for admin, no allocation; the target is 50 µs). OpenFGA
// embedded, as Incus does, brings its server module and its storage,
// gRPC, protobuf and a few dozen modules, a model language and a tuple
// store we would have to keep in sync with ours, and checks that walk the
// relation graph (tens of µs each in Incus, which caches them per request
// for that reason). casbin is lighter but evaluates matcher expressions
// per check and still needs our object/project hierarchy encoded as
// string rules. Neither would remove any code of ours: the built-in rules
// and the LXD URL <-> object mapping stay either way. Should the model
// grow relations that really are a graph (nested project inheritance of
// permissions, say), OpenFGA is the candidate to revisit.
