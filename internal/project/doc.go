// Package project owns projects: LXD's namespaces for instances, profiles,
// images, custom storage volumes and networks, with their features, limits
// and restrictions, nested through a parent (seed 003's groups with
// inherited quotas).
//
// The project a request acts in travels in its context (WithProject,
// From): an edge resolves it once from the request and every domain reads
// it from there, so no method grows a project parameter and none can
// forget it. Scope says which project holds a kind of object: a project
// without features.profiles uses the default project's profiles, as LXD.
package project
