package api

// ImagesPost is the JSON body of POST /1.0/images: an image from a remote
// source or published from an instance (an upload is the raw body
// instead).
type ImagesPost struct {
	ImagePut `yaml:",inline"`
	Filename string            `json:"filename,omitempty" yaml:"filename,omitempty"`
	Source   *ImagesPostSource `json:"source" yaml:"source"`
	// CompressionAlgorithm is how a published instance is compressed:
	// gzip, xz, zstd, bzip2 or none; "" is the server's
	// images.compression_algorithm.
	CompressionAlgorithm string       `json:"compression_algorithm,omitempty" yaml:"compression_algorithm,omitempty"`
	Aliases              []ImageAlias `json:"aliases,omitempty" yaml:"aliases,omitempty"`
}

// ImagesPostSource says where an image comes from. hangard pulls from OCI
// registries: type "image", mode "pull", protocol "oci", server the
// registry ("docker.io", "https://ghcr.io", "http://127.0.0.1:5000" for a
// plain-HTTP loopback registry) and alias the repository with a tag or
// digest ("library/alpine:3.20"), as Incus names them.
type ImagesPostSource struct {
	Type        string `json:"type" yaml:"type"`
	Name        string `json:"name,omitempty" yaml:"name,omitempty"`
	Mode        string `json:"mode,omitempty" yaml:"mode,omitempty"`
	Server      string `json:"server,omitempty" yaml:"server,omitempty"`
	Protocol    string `json:"protocol,omitempty" yaml:"protocol,omitempty"`
	Alias       string `json:"alias,omitempty" yaml:"alias,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty" yaml:"fingerprint,omitempty"`
	Certificate string `json:"certificate,omitempty" yaml:"certificate,omitempty"`
	Secret      string `json:"secret,omitempty" yaml:"secret,omitempty"`
	URL         string `json:"url,omitempty" yaml:"url,omitempty"`
	ImageType   string `json:"image_type,omitempty" yaml:"image_type,omitempty"`
}

// RegistryAuthHeader is hangar's request header carrying OCI registry
// credentials for a pull (POST /1.0/images, POST /1.0/instances), as
// base64("user:password") like HTTP basic auth. A header, not a body field,
// so that credentials never land in a stored or echoed request.
const RegistryAuthHeader = "X-Hangar-Registry-Auth"

// Progress keys of a pull or image import operation's metadata. hangard
// also sets LXD's human-readable "download_progress".
const (
	ProgressStage = "progress_stage" // "download" or "unpack"
	ProgressBytes = "progress_bytes" // bytes done in the stage
	ProgressTotal = "progress_total" // bytes the stage will take; 0 if unknown
)
