package instance

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// copySource is a copy's source, as Create found it: an instance, or one
// of its snapshots.
type copySource struct {
	id       int64
	name     string
	snapshot string // "" copies the instance as it is
	typ      Type
	// config is what the copy takes of the source's config (its
	// identity left behind): the keys a client may echo back.
	config       map[string]string
	instanceOnly bool
	// fork, when set, makes the copy a fork (fork.go) and says how it went.
	fork *forkRun
}

// copiedKey says whether a config key goes to a copy: volatile keys are
// the source's identity (MACs, uuid, id maps, power state), except the
// image it came from.
func copiedKey(k string) bool {
	return !strings.HasPrefix(k, prefixVolatile) || k == keyBaseImage
}

// resolveCopy finds a copy's source and merges what the copy takes from
// it into req, as LXD does: the request's config keys and devices win,
// the source's fill the rest; no profiles in the request means the
// source's; the type must be the source's.
func (s *Service) resolveCopy(ctx context.Context, req *CreateRequest) (*copySource, error) {
	ref := req.Source.Instance
	name, snap, _ := strings.Cut(ref, "/")
	if name == "" {
		return nil, errdefs.Invalid("source: a copy needs the source instance's name")
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	rec, _, _ := s.snapshot(in)
	cfg, devs, profiles := rec.Config, rec.Devices, rec.Profiles
	if snap != "" {
		sn, err := s.cfg.DB.GetInstanceSnapshot(ctx, rec.ID, snap)
		if err != nil {
			return nil, fmt.Errorf("source: %w", snapshotNotFound(err, name, snap))
		}
		cfg, devs, profiles = sn.Config, sn.Devices, sn.Profiles
		s.mu.RLock()
		profiles = existingProfiles(s.profiles, rec.ProfileProject, profiles)
		s.mu.RUnlock()
	}
	src := &copySource{id: rec.ID, name: name, snapshot: snap, typ: Type(rec.Type), config: map[string]string{},
		instanceOnly: req.Source.InstanceOnly || snap != ""}
	switch req.Type {
	case "":
		req.Type = src.typ
	case src.typ:
	default:
		return nil, errdefs.Invalid("type %q: the source %q is a %s", req.Type, ref, src.typ)
	}
	for k, v := range cfg {
		if copiedKey(k) {
			src.config[k] = v
		}
	}
	merged := cloneMap(src.config)
	for k, v := range req.Config {
		if strings.HasPrefix(k, prefixVolatile) && k != keyBaseImage {
			// lxc sends the source's whole config back; its identity
			// stays behind.
			continue
		}
		merged[k] = v
	}
	req.Config = merged
	mergedDevs := cloneDevices(devs)
	for k, v := range req.Devices {
		mergedDevs[k] = v
	}
	req.Devices = mergedDevs
	if req.Profiles == nil {
		req.Profiles = append([]string{}, profiles...)
	}
	return src, nil
}

// copyRoot gives a copy its root (and, unless instance-only, the
// source's snapshots). A running VM is paused while its disk is read, so
// the copy is whole; a running container is copied as it is (LXD's
// stateless copy).
func (s *Service) copyRoot(ctx context.Context, rec store.Instance, src *copySource) error {
	cfg, devs, err := s.expanded(rec)
	if err != nil {
		return err
	}
	r, err := rootDiskOf(devs)
	if err != nil {
		return err
	}
	req := s.rootRequest(rec, cfg, r)
	srcIn, err := s.lookup(ctx, src.name)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	// The source's operations wait: a stop or a freeze must not come
	// between the pause and the resume below.
	srcIn.op.Lock()
	defer srcIn.op.Unlock()
	srcRec, status, _ := s.snapshot(srcIn)
	if srcRec.ID != src.id || srcIn.deleted {
		return errdefs.NotFound("source instance %q not found", src.name)
	}
	copyRoot := func(ctx context.Context) error { return s.cfg.Storage.CopyRoot(ctx, req, src.id, src.snapshot) }
	switch {
	case src.fork != nil:
		err = s.forkRoot(ctx, rec, srcRec, status, src.fork, copyRoot)
	case src.snapshot == "" && Type(srcRec.Type) == TypeVM && status == StatusRunning:
		err = s.whileFrozen(ctx, srcRec, copyRoot)
	default:
		err = copyRoot(ctx)
	}
	if err != nil || src.instanceOnly {
		return err
	}
	return s.copySnapshots(ctx, rec, src)
}

// copySnapshots gives a copy the source's snapshots, records and roots.
func (s *Service) copySnapshots(ctx context.Context, rec store.Instance, src *copySource) error {
	rows, err := s.cfg.DB.ListInstanceSnapshots(ctx, src.id)
	if err != nil {
		return err
	}
	for _, sn := range rows {
		cp := sn
		cp.ID, cp.InstanceID, cp.Stateful = 0, rec.ID, false // a copy's snapshots hold no RAM state
		if err := s.cfg.DB.CreateInstanceSnapshot(ctx, &cp); err != nil {
			return err
		}
		if err := s.cfg.Storage.CopyRootSnapshot(ctx, rec.ID, src.id, sn.Name); err != nil {
			if derr := s.cfg.DB.DeleteInstanceSnapshot(context.WithoutCancel(ctx), cp.ID); derr != nil {
				err = errors.Join(err, derr)
			}
			return fmt.Errorf("copy snapshot %s: %w", sn.Name, err)
		}
	}
	return nil
}
