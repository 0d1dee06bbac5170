package api

// ProjectsPost is POST /1.0/projects; its Parent (hangar_project_nesting)
// is the project the new one nests in.
type ProjectsPost struct {
	ProjectPut `yaml:",inline"`
	Name       string `json:"name" yaml:"name"`
}

// ProjectPost renames a project (POST /1.0/projects/NAME).
type ProjectPost struct {
	Name string `json:"name" yaml:"name"`
}

// ProjectPut is a project's writable part. Parent (hangar_project_nesting)
// nests the project in another; nil leaves it as it is, so that clients
// that do not know the field (lxc) never unset it, and "" makes the
// project top-level.
type ProjectPut struct {
	Config      map[string]string `json:"config" yaml:"config"`
	Description string            `json:"description" yaml:"description"`
	Parent      *string           `json:"parent,omitempty" yaml:"parent,omitempty"`
}

// Project is a project as GET /1.0/projects/NAME shows it.
type Project struct {
	ProjectPut `yaml:",inline"`
	Name       string   `json:"name" yaml:"name"`
	UsedBy     []string `json:"used_by" yaml:"used_by"`
}

// ProjectState is GET /1.0/projects/NAME/state: per resource, the limit
// and what the project (with its children, under hangar_project_nesting)
// uses.
type ProjectState struct {
	Resources map[string]ProjectStateResource `json:"resources" yaml:"resources"`
}

// ProjectStateResource is one resource's limit (-1: none) and usage. As in
// LXD, the fields have no JSON tags and so are capitalised on the wire.
type ProjectStateResource struct {
	Limit int64 `json:"Limit" yaml:"limit"`
	Usage int64 `json:"Usage" yaml:"usage"`
}
