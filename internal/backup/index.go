package backup

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Backup types: the instance types, as index.yaml names them.
const (
	TypeContainer = "container"
	TypeVM        = "virtual-machine"
)

// Backends LXD names in index.yaml. A non-optimized backup restores on any
// driver; an optimized one only on its own (the caller checks).
var knownBackends = []string{"btrfs", "ceph", "cephfs", "cephobject", "dir", "lvm", "zfs"}

// Index is backup/index.yaml (LXD's backup.Info).
type Index struct {
	Name    string `yaml:"name"`
	Backend string `yaml:"backend"`
	Pool    string `yaml:"pool"`
	// Snapshots are the snapshot names the backup holds, oldest first;
	// empty for an instance-only backup.
	Snapshots []string `yaml:"snapshots,omitempty"`
	// Optimized: the volumes are the backend's own streams (btrfs send),
	// not trees.
	Optimized bool `yaml:"optimized"`
	// OptimizedHeader: backup/optimized_header.yaml is present (btrfs).
	OptimizedHeader bool   `yaml:"optimized_header"`
	Type            string `yaml:"type,omitempty"`
	// Config is backup.yaml's content, embedded (LXD 4.x and later).
	Config *Config `yaml:"config,omitempty"`
}

// Config is backup.yaml (LXD's backup config.Config), also embedded in
// the index. Only the fields hangard keeps are read; others are dropped.
type Config struct {
	Instance        *Instance         `yaml:"container,omitempty"` // "container" for VMs too
	Snapshots       []*Snapshot       `yaml:"snapshots,omitempty"`
	Pool            *Pool             `yaml:"pool,omitempty"`
	Volume          *Volume           `yaml:"volume,omitempty"`
	VolumeSnapshots []*VolumeSnapshot `yaml:"volume_snapshots,omitempty"`
}

// Instance is the instance as backup.yaml records it (LXD's api.Instance,
// the fields an import needs). LXD's import needs a root disk device in
// Devices or ExpandedDevices: an instance whose root comes from a profile
// is exported with its expanded devices.
type Instance struct {
	Name            string                       `yaml:"name"`
	Type            string                       `yaml:"type"`
	Architecture    string                       `yaml:"architecture"`
	Description     string                       `yaml:"description"`
	Config          map[string]string            `yaml:"config"`
	Devices         map[string]map[string]string `yaml:"devices"`
	Profiles        []string                     `yaml:"profiles"`
	Ephemeral       bool                         `yaml:"ephemeral"`
	Stateful        bool                         `yaml:"stateful"`
	CreatedAt       time.Time                    `yaml:"created_at"`
	LastUsedAt      time.Time                    `yaml:"last_used_at"`
	ExpandedConfig  map[string]string            `yaml:"expanded_config,omitempty"`
	ExpandedDevices map[string]map[string]string `yaml:"expanded_devices,omitempty"`
}

// Snapshot is an instance snapshot as backup.yaml records it (LXD's
// api.InstanceSnapshot). Name is the snapshot's own name ("snap0"), and a
// zero ExpiresAt means none, as in LXD.
type Snapshot struct {
	Name            string                       `yaml:"name"`
	Architecture    string                       `yaml:"architecture"`
	Config          map[string]string            `yaml:"config"`
	Devices         map[string]map[string]string `yaml:"devices"`
	Profiles        []string                     `yaml:"profiles"`
	Ephemeral       bool                         `yaml:"ephemeral"`
	Stateful        bool                         `yaml:"stateful"`
	CreatedAt       time.Time                    `yaml:"created_at"`
	ExpiresAt       time.Time                    `yaml:"expires_at"`
	LastUsedAt      time.Time                    `yaml:"last_used_at"`
	ExpandedConfig  map[string]string            `yaml:"expanded_config,omitempty"`
	ExpandedDevices map[string]map[string]string `yaml:"expanded_devices,omitempty"`
}

// Pool is the pool the instance lived on (LXD's api.StoragePool).
type Pool struct {
	Name        string            `yaml:"name"`
	Driver      string            `yaml:"driver"`
	Description string            `yaml:"description"`
	Config      map[string]string `yaml:"config"`
}

// Volume is the instance's root volume (LXD's api.StorageVolume).
type Volume struct {
	Name        string            `yaml:"name"`
	Type        string            `yaml:"type"`         // container, virtual-machine
	ContentType string            `yaml:"content_type"` // filesystem, block
	Description string            `yaml:"description"`
	Config      map[string]string `yaml:"config"`
	CreatedAt   time.Time         `yaml:"created_at"`
}

// VolumeSnapshot is a snapshot of the root volume (LXD's
// api.StorageVolumeSnapshot).
type VolumeSnapshot struct {
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	ContentType string            `yaml:"content_type"`
	Config      map[string]string `yaml:"config"`
	CreatedAt   time.Time         `yaml:"created_at"`
	ExpiresAt   *time.Time        `yaml:"expires_at"`
}

// maxIndexSize bounds index.yaml and backup.yaml: a config with thousands
// of snapshots fits many times over.
const maxIndexSize = 32 << 20

// Validate checks an index as read from an archive or before it is
// written. An empty Type is a container, as LXD reads old backups.
func (idx *Index) Validate() error {
	if err := ValidInstanceName(idx.Name); err != nil {
		return err
	}
	switch idx.Type {
	case TypeContainer, TypeVM:
	case "":
		idx.Type = TypeContainer
	default:
		return errdefs.Invalid("backup: unknown instance type %q", idx.Type)
	}
	if idx.Backend == "" {
		return errdefs.Invalid("backup: the index names no storage backend")
	}
	if !slices.Contains(knownBackends, idx.Backend) {
		return errdefs.Invalid("backup: unknown storage backend %q", idx.Backend)
	}
	if idx.Pool != "" {
		if err := validPoolName(idx.Pool); err != nil {
			return err
		}
	}
	if idx.OptimizedHeader && !idx.Optimized {
		return errdefs.Invalid("backup: an optimized header in a backup that is not optimized")
	}
	seen := map[string]bool{}
	for _, s := range idx.Snapshots {
		if err := ValidSnapshotName(s); err != nil {
			return err
		}
		if seen[s] {
			return errdefs.Invalid("backup: snapshot %q listed twice", s)
		}
		seen[s] = true
	}
	if c := idx.Config; c != nil {
		if i := c.Instance; i != nil {
			if i.Name != "" && i.Name != idx.Name {
				return errdefs.Invalid("backup: the index names instance %q but its config %q", idx.Name, i.Name)
			}
			if i.Type != "" && i.Type != idx.Type {
				return errdefs.Invalid("backup: the index says %s but its config %s", idx.Type, i.Type)
			}
		}
		if len(c.Snapshots) > 0 {
			if len(c.Snapshots) != len(idx.Snapshots) {
				return errdefs.Invalid("backup: the index lists %d snapshots but its config %d", len(idx.Snapshots), len(c.Snapshots))
			}
			for i, s := range c.Snapshots {
				if s == nil || s.Name != idx.Snapshots[i] {
					return errdefs.Invalid("backup: snapshot %d of the config is not %q", i, idx.Snapshots[i])
				}
			}
		}
	}
	return nil
}

// ValidInstanceName checks a name as LXD does (a hostname label: 1-63
// letters, digits and hyphens, not starting with a digit or hyphen, not
// ending with a hyphen).
func ValidInstanceName(name string) error {
	bad := func(why string) error {
		return errdefs.Invalid("backup: invalid instance name %q: %s", name, why)
	}
	if len(name) < 1 || len(name) > 63 {
		return bad("must be 1-63 characters long")
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return bad(`must not start or end with "-"`)
	}
	if name[0] >= '0' && name[0] <= '9' {
		return bad("must not start with a digit")
	}
	for _, c := range name {
		if !(c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return bad("only letters, digits and hyphens are allowed")
		}
	}
	return nil
}

// ValidSnapshotName checks a snapshot name: LXD refuses spaces and "/";
// it also becomes a file name here, so ".", "..", control characters and
// names over 255 bytes are refused too.
func ValidSnapshotName(name string) error {
	bad := func(why string) error {
		return errdefs.Invalid("backup: invalid snapshot name %q: %s", name, why)
	}
	switch {
	case name == "":
		return bad("empty")
	case len(name) > 255:
		return bad("longer than 255 bytes")
	case name == "." || name == "..":
		return bad("not a file name")
	case strings.ContainsAny(name, " /"):
		return bad("contains a space or /")
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return bad("contains a control character")
		}
	}
	return nil
}

func validPoolName(name string) error {
	if name == "" || len(name) > 255 || name == "." || name == ".." || strings.ContainsAny(name, "/ \x00") {
		return errdefs.Invalid("backup: invalid pool name %q", name)
	}
	return nil
}

// MarshalIndex renders an index as LXD writes it, after validating it and
// filling Config.VolumeSnapshots with one entry per snapshot (LXD 5.0's
// import indexes that list by snapshot position and fails past its end).
func MarshalIndex(idx *Index) ([]byte, error) {
	if err := idx.Validate(); err != nil {
		return nil, err
	}
	if c := idx.Config; c != nil && len(idx.Snapshots) > 0 {
		fillVolumeSnapshots(c, idx.Snapshots)
	}
	return marshalYAML(idx)
}

// fillVolumeSnapshots makes c.VolumeSnapshots hold one entry per
// snapshot, in snapshot order, keeping the entries it already has.
func fillVolumeSnapshots(c *Config, snaps []string) {
	have := map[string]*VolumeSnapshot{}
	for _, v := range c.VolumeSnapshots {
		if v != nil {
			have[v.Name] = v
		}
	}
	out := make([]*VolumeSnapshot, 0, len(snaps))
	for i, name := range snaps {
		v := have[name]
		if v == nil {
			v = &VolumeSnapshot{Name: name, Config: map[string]string{}}
			if i < len(c.Snapshots) && c.Snapshots[i] != nil {
				v.CreatedAt = c.Snapshots[i].CreatedAt
				if e := c.Snapshots[i].ExpiresAt; !e.IsZero() {
					v.ExpiresAt = &e
				}
			}
			if c.Volume != nil {
				v.ContentType = c.Volume.ContentType
			}
		}
		out = append(out, v)
	}
	c.VolumeSnapshots = out
}

// ParseIndex reads and validates index.yaml.
func ParseIndex(b []byte) (*Index, error) {
	var idx Index
	if err := unmarshalYAML(b, &idx); err != nil {
		return nil, errdefs.Invalid("backup: invalid index.yaml: %v", err)
	}
	if err := idx.Validate(); err != nil {
		return nil, err
	}
	return &idx, nil
}

// MarshalConfig renders backup.yaml.
func MarshalConfig(c *Config) ([]byte, error) {
	return marshalYAML(c)
}

// ParseConfig reads backup.yaml. An instance without a type is a
// container, as LXD reads it.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := unmarshalYAML(b, &c); err != nil {
		return nil, errdefs.Invalid("backup: invalid backup.yaml: %v", err)
	}
	if c.Instance != nil && c.Instance.Type == "" {
		c.Instance.Type = TypeContainer
	}
	return &c, nil
}

// MarkUnshifted records, in the instance's and its snapshots' config,
// that the archive holds container ids (volatile.last_state.idmap "[]"),
// so that LXD shifts the tree to its own map at first start rather than
// reading it as shifted to ours.
func MarkUnshifted(c *Config) {
	SetLastIDMap(c, "[]")
}

// SetLastIDMap records, in a container's and its snapshots' config, the
// map (LXD's JSON form) its archived files' ids are shifted by: an
// optimized backup's send streams hold the ids as they are on disk.
func SetLastIDMap(c *Config, lxdMap string) {
	if c == nil {
		return
	}
	set := func(m *map[string]string) {
		if *m == nil {
			*m = map[string]string{}
		}
		(*m)[KeyLastIDMap] = lxdMap
	}
	if c.Instance != nil && c.Instance.Type != TypeVM {
		set(&c.Instance.Config)
		for _, s := range c.Snapshots {
			if s != nil {
				set(&s.Config)
			}
		}
	}
}

func marshalYAML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("render yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render yaml: %w", err)
	}
	return buf.Bytes(), nil
}

func unmarshalYAML(b []byte, v any) error {
	if len(b) > maxIndexSize {
		return fmt.Errorf("larger than %d bytes", maxIndexSize)
	}
	return yaml.Unmarshal(b, v)
}
