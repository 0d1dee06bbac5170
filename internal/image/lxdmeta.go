package image

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// lxdMetadataName is the file at the top of an LXD image tarball (unified,
// or the metadata half of a split image) that describes the image.
const lxdMetadataName = "metadata.yaml"

// maxLXDMetadata bounds metadata.yaml, which is read into memory. LXD's own
// are a few kilobytes, templates' definitions included.
const maxLXDMetadata = 4 << 20

// lxdMetadata is what hangard reads of an LXD image's metadata.yaml.
// Templates are kept in the blob (and so in exports) but not applied.
type lxdMetadata struct {
	Architecture string            // LXD's name, normalised
	CreatedAt    time.Time         // creation_date
	ExpiresAt    time.Time         // expiry_date; zero when absent
	Properties   map[string]string // os, release, variant, serial, description, ...
}

// parseLXDMetadata parses and validates metadata.yaml as LXD does: the
// architecture must be one LXD knows and the creation date is required.
func parseLXDMetadata(data []byte) (lxdMetadata, error) {
	var raw struct {
		Architecture string            `yaml:"architecture"`
		CreationDate int64             `yaml:"creation_date"`
		ExpiryDate   int64             `yaml:"expiry_date"`
		Properties   map[string]string `yaml:"properties"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		if errors.Is(err, io.EOF) {
			return lxdMetadata{}, errdefs.Invalid("%s is empty", lxdMetadataName)
		}
		return lxdMetadata{}, errdefs.Invalid("%s: %v", lxdMetadataName, oneLine(err))
	}
	if raw.Architecture == "" {
		return lxdMetadata{}, errdefs.Invalid("%s: architecture is missing", lxdMetadataName)
	}
	arch, err := normalizeArchitecture(raw.Architecture)
	if err != nil {
		return lxdMetadata{}, errdefs.Invalid("%s: %v", lxdMetadataName, err)
	}
	if raw.CreationDate <= 0 {
		return lxdMetadata{}, errdefs.Invalid("%s: creation_date is missing (a UNIX time is required)", lxdMetadataName)
	}
	if raw.ExpiryDate < 0 {
		return lxdMetadata{}, errdefs.Invalid("%s: expiry_date %d is not a UNIX time", lxdMetadataName, raw.ExpiryDate)
	}
	m := lxdMetadata{
		Architecture: arch,
		CreatedAt:    time.Unix(raw.CreationDate, 0).UTC(),
		Properties:   maps.Clone(raw.Properties),
	}
	if raw.ExpiryDate > 0 {
		m.ExpiresAt = time.Unix(raw.ExpiryDate, 0).UTC()
	}
	if m.Properties == nil {
		m.Properties = map[string]string{}
	}
	for k := range m.Properties {
		if k == "" {
			return lxdMetadata{}, errdefs.Invalid("%s: a property has an empty name", lxdMetadataName)
		}
	}
	return m, nil
}

// readLXDMetadata reads metadata.yaml from an archive entry and parses it.
func readLXDMetadata(r io.Reader) (lxdMetadata, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxLXDMetadata+1))
	if err != nil {
		return lxdMetadata{}, errdefs.Invalid("corrupt archive: %s: %v", lxdMetadataName, err)
	}
	if len(data) > maxLXDMetadata {
		return lxdMetadata{}, errdefs.Invalid("%s is larger than %d bytes", lxdMetadataName, maxLXDMetadata)
	}
	return parseLXDMetadata(data)
}

// oneLine keeps a YAML error on one line, as API errors are.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// apply fills a new record from the metadata: its architecture and dates,
// and its properties under those the client sent (X-LXD-properties wins,
// as in LXD). The architecture the client named is only a property here.
func (m lxdMetadata) apply(rec *Record, client ImportMeta) {
	rec.Architecture = m.Architecture
	rec.CreatedAt = m.CreatedAt
	rec.ExpiresAt = m.ExpiresAt
	props := maps.Clone(m.Properties)
	if props == nil {
		props = map[string]string{}
	}
	maps.Copy(props, client.Properties)
	for k, v := range map[string]string{"os": client.OS, "release": client.Release, "description": client.Description} {
		if v != "" {
			props[k] = v
		}
	}
	rec.Properties = props
}
