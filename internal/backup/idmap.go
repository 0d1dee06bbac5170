package backup

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// KeyLastIDMap is the instance key that says how a container's files are
// shifted on disk (LXD's JSON form; "[]" or absent: container ids).
const KeyLastIDMap = "volatile.last_state.idmap"

// IDRange maps Size ids starting at Inside (as the container sees them)
// to Size ids starting at Host, for uids, gids or both.
type IDRange struct {
	UID, GID     bool
	Host, Inside uint32
	Size         uint32
}

// IDMap is a container's id map; nil maps nothing (ids are kept).
type IDMap []IDRange

// SingleRange is the map of hangard's unprivileged containers: uids and
// gids 0..size-1 to host..host+size-1.
func SingleRange(host, size uint32) IDMap {
	return IDMap{{UID: true, GID: true, Host: host, Inside: 0, Size: size}}
}

// lxdIDMapEntry is one entry of LXD's JSON id map (shared/idmap.IdmapEntry).
type lxdIDMapEntry struct {
	Isuid    bool
	Isgid    bool
	Hostid   int64
	Nsid     int64
	Maprange int64
}

// ParseLXDIDMap reads an id map in LXD's JSON form (the value of
// volatile.last_state.idmap); "" and "[]" are nil.
func ParseLXDIDMap(s string) (IDMap, error) {
	if s == "" {
		return nil, nil
	}
	var entries []lxdIDMapEntry
	if err := json.Unmarshal([]byte(s), &entries); err != nil {
		return nil, errdefs.Invalid("backup: invalid id map %q: %v", s, err)
	}
	var m IDMap
	for _, e := range entries {
		if e.Hostid < 0 || e.Nsid < 0 || e.Maprange <= 0 ||
			e.Hostid+e.Maprange > math.MaxUint32 || e.Nsid+e.Maprange > math.MaxUint32 || !(e.Isuid || e.Isgid) {
			return nil, errdefs.Invalid("backup: invalid id map entry %+v", e)
		}
		m = append(m, IDRange{UID: e.Isuid, GID: e.Isgid, Host: uint32(e.Hostid), Inside: uint32(e.Nsid), Size: uint32(e.Maprange)})
	}
	return m, nil
}

// toHost maps a container id to the host; ok is false when unmapped.
func (m IDMap) toHost(id uint32, uid bool) (uint32, bool) {
	if m == nil {
		return id, true
	}
	for _, r := range m {
		if (uid && r.UID || !uid && r.GID) && id >= r.Inside && uint64(id) < uint64(r.Inside)+uint64(r.Size) {
			return r.Host + (id - r.Inside), true
		}
	}
	return 0, false
}

// toInside maps a host id into the container; ok is false when unmapped.
func (m IDMap) toInside(id uint32, uid bool) (uint32, bool) {
	if m == nil {
		return id, true
	}
	for _, r := range m {
		if (uid && r.UID || !uid && r.GID) && id >= r.Host && uint64(id) < uint64(r.Host)+uint64(r.Size) {
			return r.Inside + (id - r.Host), true
		}
	}
	return 0, false
}

// idFunc maps one id (a uid when uid is true, else a gid).
type idFunc func(id uint32, uid bool) (uint32, error)

func kind(uid bool) string {
	if uid {
		return "uid"
	}
	return "gid"
}

// File capability xattr layout (linux/capability.h): le32 magic_etc, two
// {le32 permitted, le32 inheritable}, and since revision 3 a le32 root
// id: the capabilities apply in user namespaces whose root is that uid.
const (
	capRevisionMask = 0xFF000000
	capRevision2    = 0x02000000
	capRevision3    = 0x03000000
	capFlagsEff     = 0x000001
	capSizeV2       = 4 + 2*8
	capSizeV3       = capSizeV2 + 4
)

// mapCapability maps the root id of a security.capability value. A v2
// value has root id 0. The result is v2 when the mapped root id is 0 (the
// form a plain tree and an image hold), else v3 with that root id.
func mapCapability(v []byte, f idFunc) ([]byte, error) {
	if len(v) < 4 {
		return nil, errors.New("truncated value")
	}
	magic := binary.LittleEndian.Uint32(v)
	var root uint32
	switch magic & capRevisionMask {
	case capRevision2:
		if len(v) != capSizeV2 {
			return nil, fmt.Errorf("revision 2 value of %d bytes", len(v))
		}
	case capRevision3:
		if len(v) != capSizeV3 {
			return nil, fmt.Errorf("revision 3 value of %d bytes", len(v))
		}
		root = binary.LittleEndian.Uint32(v[capSizeV2:])
	default:
		return nil, fmt.Errorf("unknown revision %#x", magic&capRevisionMask)
	}
	root, err := f(root, true)
	if err != nil {
		return nil, fmt.Errorf("root id: %w", err)
	}
	if root == 0 {
		out := make([]byte, capSizeV2)
		copy(out, v[:capSizeV2])
		binary.LittleEndian.PutUint32(out, capRevision2|magic&capFlagsEff)
		return out, nil
	}
	out := make([]byte, capSizeV3)
	copy(out, v[:capSizeV2])
	binary.LittleEndian.PutUint32(out, capRevision3|magic&capFlagsEff)
	binary.LittleEndian.PutUint32(out[capSizeV2:], root)
	return out, nil
}

// POSIX ACL xattr layout (linux/posix_acl_xattr.h): le32 version 2, then
// entries {le16 tag, le16 perm, le32 id}; named user and group entries
// carry an id.
const (
	aclVersion = 2
	aclUser    = 0x02
	aclGroup   = 0x08
)

// mapACL maps the ids of named user and group entries.
func mapACL(v []byte, f idFunc) ([]byte, error) {
	if len(v) < 4 || (len(v)-4)%8 != 0 || binary.LittleEndian.Uint32(v) != aclVersion {
		return nil, errors.New("malformed ACL")
	}
	out := append([]byte(nil), v...)
	for off := 4; off < len(out); off += 8 {
		tag := binary.LittleEndian.Uint16(out[off:])
		if tag != aclUser && tag != aclGroup {
			continue
		}
		id, err := f(binary.LittleEndian.Uint32(out[off+4:]), tag == aclUser)
		if err != nil {
			return nil, fmt.Errorf("ACL entry: %w", err)
		}
		binary.LittleEndian.PutUint32(out[off+4:], id)
	}
	return out, nil
}

// mapXattr maps the ids an extended attribute's value holds, if any.
func mapXattr(name string, v []byte, f idFunc) ([]byte, error) {
	switch name {
	case "security.capability":
		return mapCapability(v, f)
	case "system.posix_acl_access", "system.posix_acl_default":
		return mapACL(v, f)
	}
	return v, nil
}

// Equal tells whether two maps shift every uid and gid alike, however
// their ranges are split (LXD writes uids and gids apart, hangard one
// range for both). nil maps nothing and equals only nil.
func (m IDMap) Equal(o IDMap) bool {
	if (m == nil) != (o == nil) {
		return false
	}
	return slices.Equal(m.normal(true), o.normal(true)) && slices.Equal(m.normal(false), o.normal(false))
}

// normal is the map's uid (or gid) ranges, sorted and merged.
func (m IDMap) normal(uid bool) []IDRange {
	var rs []IDRange
	for _, r := range m {
		if uid && r.UID || !uid && r.GID {
			rs = append(rs, IDRange{Host: r.Host, Inside: r.Inside, Size: r.Size})
		}
	}
	slices.SortFunc(rs, func(a, b IDRange) int { return cmp.Compare(a.Inside, b.Inside) })
	var out []IDRange
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].Inside+out[n-1].Size == r.Inside && out[n-1].Host+out[n-1].Size == r.Host {
			out[n-1].Size += r.Size
			continue
		}
		out = append(out, r)
	}
	return out
}
