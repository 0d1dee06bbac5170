package instance

import (
	"encoding/json"
	"strconv"

	"github.com/google/uuid"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/store"
)

// Volatile keys that say what an instance is and how it is mapped, with
// LXD's names and value forms, so that clients reading them find the
// truth:
//
//	volatile.uuid               a random UUID given at create; never changes
//	volatile.idmap.base         the first host id of the container's map ("0" when privileged)
//	volatile.idmap.next         the map the next start uses (JSON, LXD's IdmapEntry form)
//	volatile.idmap.current      the map of the running (or last) start
//	volatile.last_state.idmap   the map the root filesystem is shifted to
//
// Unprivileged containers share one map (Config.IDMap) and one image tree
// shifted to it, so last_state.idmap is that map once the container has
// started; a privileged container's maps are "[]", as in LXD. VMs have no
// id map and none of the idmap keys.
const (
	keyUUID          = "volatile.uuid"
	keyIdmapNext     = "volatile.idmap.next"
	keyIdmapCurrent  = "volatile.idmap.current"
	keyLastIdmap     = "volatile.last_state.idmap"
	privilegedIdmap  = "[]"
	privilegedIDBase = "0"
)

// idmapEntry is one entry of LXD's JSON form of an id map.
type idmapEntry struct {
	Isuid    bool
	Isgid    bool
	Hostid   int64
	Nsid     int64
	Maprange int64
}

// idmapJSON renders a map as LXD stores it: one entry for uids, one for
// gids; "[]" for none (privileged).
func idmapJSON(m *driver.IDMap) string {
	if m == nil {
		return privilegedIdmap
	}
	b, _ := json.Marshal([]idmapEntry{
		{Isuid: true, Hostid: int64(m.HostID), Nsid: 0, Maprange: int64(m.Size)},
		{Isgid: true, Hostid: int64(m.HostID), Nsid: 0, Maprange: int64(m.Size)},
	})
	return string(b)
}

// newUUID is a create's volatile.uuid.
func newUUID() string { return uuid.NewString() }

// idmapOf is the map an instance with this expanded config runs with: nil
// for a privileged container or a VM.
func (s *Service) idmapOf(typ Type, expanded map[string]string) *driver.IDMap {
	if typ == TypeVM {
		return nil
	}
	if privileged, _ := parseBool(expanded["security.privileged"]); privileged {
		return nil
	}
	m := s.cfg.IDMap
	return &m
}

// setIdmapKeys records in rec the map its next start uses, from its
// config over its profiles. A VM gets none of the keys.
func (s *Service) setIdmapKeys(rec *store.Instance) {
	if Type(rec.Type) == TypeVM {
		for _, k := range []string{keyIdmapBase, keyIdmapNext, keyIdmapCurrent, keyLastIdmap} {
			delete(rec.Config, k)
		}
		return
	}
	s.mu.RLock()
	views, _ := s.profileViewsLocked(profileRefs(*rec)) // a missing profile was refused before
	s.mu.RUnlock()
	m := s.idmapOf(Type(rec.Type), expandConfig(rec.Config, views))
	rec.Config[keyIdmapNext] = idmapJSON(m)
	rec.Config[keyIdmapBase] = privilegedIDBase
	if m != nil {
		rec.Config[keyIdmapBase] = strconv.FormatUint(uint64(m.HostID), 10)
	}
}

// startedIdmap records that a start used the next map: it is now the
// current one and the one the root is shifted to.
func startedIdmap(rec *store.Instance) {
	if next, ok := rec.Config[keyIdmapNext]; ok {
		rec.Config[keyIdmapCurrent] = next
		rec.Config[keyLastIdmap] = next
	}
}
