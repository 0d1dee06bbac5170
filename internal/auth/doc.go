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
