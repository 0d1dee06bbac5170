package api

import "time"

// ProfilePut holds the fields a client may replace with PUT.
type ProfilePut struct {
	Config      map[string]string            `json:"config" yaml:"config"`
	Description string                       `json:"description" yaml:"description"`
	Devices     map[string]map[string]string `json:"devices" yaml:"devices"`
}

// Profile is /1.0/profiles/{name}.
type Profile struct {
	ProfilePut `yaml:",inline"`
	Name       string   `json:"name" yaml:"name"`
	UsedBy     []string `json:"used_by" yaml:"used_by"`
	Project    string   `json:"project" yaml:"project"`
}

// ProfilesPost is the body of POST /1.0/profiles.
type ProfilesPost struct {
	ProfilePut `yaml:",inline"`
	Name       string `json:"name" yaml:"name"`
}

// ProfilePost is the body of POST /1.0/profiles/{name}: a rename.
type ProfilePost struct {
	Name string `json:"name" yaml:"name"`
}

// ImagePut holds the fields a client may replace with PUT.
type ImagePut struct {
	AutoUpdate bool              `json:"auto_update" yaml:"auto_update"`
	Properties map[string]string `json:"properties" yaml:"properties"`
	Public     bool              `json:"public" yaml:"public"`
	ExpiresAt  time.Time         `json:"expires_at" yaml:"expires_at"`
	Profiles   []string          `json:"profiles" yaml:"profiles"`
}

// Image is /1.0/images/{fingerprint}.
type Image struct {
	ImagePut     `yaml:",inline"`
	Aliases      []ImageAlias `json:"aliases" yaml:"aliases"`
	Architecture string       `json:"architecture" yaml:"architecture"`
	Cached       bool         `json:"cached" yaml:"cached"`
	Filename     string       `json:"filename" yaml:"filename"`
	Fingerprint  string       `json:"fingerprint" yaml:"fingerprint"`
	Size         int64        `json:"size" yaml:"size"`
	Type         string       `json:"type" yaml:"type"`
	CreatedAt    time.Time    `json:"created_at" yaml:"created_at"`
	LastUsedAt   time.Time    `json:"last_used_at" yaml:"last_used_at"`
	UploadedAt   time.Time    `json:"uploaded_at" yaml:"uploaded_at"`
	Project      string       `json:"project" yaml:"project"`
}

// ImageAlias is an alias as listed inside an Image.
type ImageAlias struct {
	Name        string `json:"name" yaml:"name"`
	Description string `json:"description" yaml:"description"`
}

// ImageAliasesEntryPut holds the fields of an alias a client may replace.
type ImageAliasesEntryPut struct {
	Description string `json:"description" yaml:"description"`
	Target      string `json:"target" yaml:"target"`
}

// ImageAliasesEntry is /1.0/images/aliases/{name}.
type ImageAliasesEntry struct {
	ImageAliasesEntryPut `yaml:",inline"`
	Name                 string `json:"name" yaml:"name"`
	Type                 string `json:"type" yaml:"type"`
}

// ImageAliasesPost is the body of POST /1.0/images/aliases.
type ImageAliasesPost struct {
	ImageAliasesEntry `yaml:",inline"`
}

// ImageAliasesEntryPost is the body of POST /1.0/images/aliases/{name}: a rename.
type ImageAliasesEntryPost struct {
	Name string `json:"name" yaml:"name"`
}
