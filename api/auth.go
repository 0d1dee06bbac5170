package api

// AuthGroup is a group of identities and the permissions they hold (LXD
// 5.21's /1.0/auth/groups, extension access_management). Hangar lets a
// group name its members directly: identities, by authentication method
// ("tls": certificate fingerprints, "token", "unix"), are writable here.
type AuthGroup struct {
	Name        string              `json:"name" yaml:"name"`
	Description string              `json:"description" yaml:"description"`
	Permissions []Permission        `json:"permissions" yaml:"permissions"`
	Identities  map[string][]string `json:"identities" yaml:"identities"`
}

// Writable returns the writable part of g.
func (g AuthGroup) Writable() AuthGroupPut {
	return AuthGroupPut{Description: g.Description, Permissions: g.Permissions, Identities: g.Identities}
}

// AuthGroupsPost creates a group.
type AuthGroupsPost struct {
	AuthGroupPost `yaml:",inline"`
	AuthGroupPut  `yaml:",inline"`
}

// AuthGroupPost renames a group.
type AuthGroupPost struct {
	Name string `json:"name" yaml:"name"`
}

// AuthGroupPut replaces a group's description, permissions and members.
type AuthGroupPut struct {
	Description string              `json:"description" yaml:"description"`
	Permissions []Permission        `json:"permissions" yaml:"permissions"`
	Identities  map[string][]string `json:"identities,omitempty" yaml:"identities,omitempty"`
}

// Permission is one entitlement on one entity, named by its URL
// ("/1.0/instances/c1?project=p1", "/1.0" for the server).
type Permission struct {
	EntityType      string `json:"entity_type" yaml:"entity_type"`
	EntityReference string `json:"url" yaml:"url"`
	Entitlement     string `json:"entitlement" yaml:"entitlement"`
}
