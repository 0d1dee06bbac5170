package backup

import (
	"fmt"
	"slices"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// OptimizedHeader is backup/optimized_header.yaml (LXD's
// BTRFSMetaDataHeader): every subvolume the backup's send streams hold,
// the snapshots' oldest first, then the instance's; per volume its root
// ("/") first, then the subvolumes nested in it.
type OptimizedHeader struct {
	Subvolumes []OptimizedSubvolume `yaml:"subvolumes"`
}

// OptimizedSubvolume is one subvolume of an optimized backup.
type OptimizedSubvolume struct {
	// Path is the subvolume's path in its volume, "/" for the volume.
	Path string `yaml:"path"`
	// Snapshot is the snapshot it belongs to; "" for the instance.
	Snapshot string `yaml:"snapshot"`
	// Readonly says whether it is restored read-only.
	Readonly bool `yaml:"readonly"`
	// UUID is the subvolume's btrfs UUID where the writer knew it.
	UUID string `yaml:"uuid"`
}

// MarshalOptimizedHeader renders optimized_header.yaml.
func MarshalOptimizedHeader(h *OptimizedHeader) ([]byte, error) {
	return marshalYAML(h)
}

// ParseOptimizedHeader reads optimized_header.yaml and checks it against
// the index: every path clean and absolute, every snapshot one the index
// names, every volume with its root subvolume.
func ParseOptimizedHeader(b []byte, idx *Index) (*OptimizedHeader, error) {
	var h OptimizedHeader
	if err := unmarshalYAML(b, &h); err != nil {
		return nil, errdefs.Invalid("backup: invalid %s: %v", OptimizedHeaderName, err)
	}
	roots := map[string]bool{}
	for _, sv := range h.Subvolumes {
		if sv.Snapshot != "" && !slices.Contains(idx.Snapshots, sv.Snapshot) {
			return nil, errdefs.Invalid("backup: %s names snapshot %q, which the index does not hold", OptimizedHeaderName, sv.Snapshot)
		}
		if sv.Path == "/" {
			roots[sv.Snapshot] = true
			continue
		}
		if _, ok := subvolumePart(sv.Snapshot, encodeSubvolume(sv.Path[min(1, len(sv.Path)):])); !ok || len(sv.Path) < 2 || sv.Path[0] != '/' {
			return nil, errdefs.Invalid("backup: %s: subvolume path %q is not a clean absolute path", OptimizedHeaderName, sv.Path)
		}
	}
	for _, s := range append([]string{""}, idx.Snapshots...) {
		if !roots[s] {
			what := "the instance"
			if s != "" {
				what = fmt.Sprintf("snapshot %q", s)
			}
			return nil, errdefs.Invalid("backup: %s lists no root subvolume for %s", OptimizedHeaderName, what)
		}
	}
	return &h, nil
}

// Nested lists the paths of the subvolumes nested in volume snap ("" the
// instance's), in the header's order.
func (h *OptimizedHeader) Nested(snap string) []string {
	var out []string
	for _, sv := range h.Subvolumes {
		if sv.Snapshot == snap && sv.Path != "/" {
			out = append(out, sv.Path)
		}
	}
	return out
}
