package instance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"

	"github.com/hangar-dev/hangar/internal/cuid"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/image"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/store"
)

// Creation is a validated create request whose name is reserved. Create
// checks everything that can be checked without side effects, so bad input
// is answered at once; Run then does the work (in an operation).
type Creation struct {
	s *Service
	// quota is the creation's reservation of its project's limits.
	quota *reservation
	rec   store.Instance
	image string // fingerprint, "" for source none
	// pull is the registry image to fetch before creating, nil when the
	// image is local.
	pull *image.ResolvedImage
	// copyOf is a copy's source, nil for other creates.
	copyOf   *copySource
	secrets  map[string]string // credential values (credentials.go)
	progress func(image.Progress)
	start    bool
	done     bool
}

// Name is the instance's name (chosen by the daemon when the request had none).
func (c *Creation) Name() string { return c.rec.Name }

// Type is the instance's type.
func (c *Creation) Type() Type { return Type(c.rec.Type) }

// Create validates a create request and reserves its name. The caller
// must call Run or Abort.
//
// A source naming an OCI registry (source.protocol "oci") is resolved here
// (reference, manifest, architecture) and pulled by Run, unless the image
// is stored already; opts carry the registry credentials for that.
func (s *Service) Create(ctx context.Context, req CreateRequest, opts ...CreateOptions) (*Creation, error) {
	if err := s.allowCreate(ctx); err != nil {
		return nil, err
	}
	var src *copySource
	if req.Source.Type == SourceCopy {
		var err error
		if src, err = s.resolveCopy(ctx, &req); err != nil {
			return nil, err
		}
	}
	typ := req.Type
	switch typ {
	case "", TypeContainer:
		typ = TypeContainer
		if s.cfg.Drivers[typ] == nil {
			return nil, errdefs.Invalid("type %q: containers are not supported by this daemon", typ)
		}
	case TypeVM:
		if s.cfg.Drivers[typ] == nil {
			return nil, errdefs.Invalid("type %q: virtual machines are not supported by this daemon", req.Type)
		}
		// Or from nothing (LXD's `init --empty --vm`): storage makes an
		// empty disk of the root device's size that firmware boots, to be
		// installed from attached media (seed 003's EFI VMs).
		if req.Source.Type != SourceImage && req.Source.Type != SourceNone && src == nil {
			return nil, errdefs.Invalid("source: a virtual machine boots from an image, is a copy, or is empty (type \"none\")")
		}
	default:
		return nil, errdefs.Invalid("invalid instance type %q: want %q or %q", req.Type, TypeContainer, TypeVM)
	}
	if req.Preset != "" {
		return nil, errdefs.Invalid("instance_type %q: instance type presets are not supported", req.Preset)
	}
	if req.Name != "" {
		if err := validateName(req.Name); err != nil {
			return nil, err
		}
	}
	// The instance takes the host's architecture: an image source brings
	// its own (checked in imageConfig) and, as in LXD, the request's
	// architecture field is then ignored; without an image it must match.
	arch := s.cfg.Architecture
	var allowed map[string]string
	if src != nil {
		allowed = src.config // a copy's image.* keys come from its source
	}
	if err := validateUserConfig(req.Config, allowed); err != nil {
		return nil, err
	}
	if err := s.validateForType(typ, req.Config); err != nil {
		return nil, err
	}
	if err := s.validateDevices(ctx, req.Devices, typ == TypeVM); err != nil {
		return nil, err
	}
	profiles := req.Profiles
	if profiles == nil {
		profiles = []string{"default"}
	}
	proj := project.From(ctx)
	profileProject := proj.Scope(project.FeatureProfiles)
	prefs := refsIn(profileProject, profiles)
	if err := s.checkProfiles(prefs); err != nil {
		return nil, err
	}

	config := cloneMap(req.Config)
	var secrets map[string]string
	if src == nil {
		var err error
		if secrets, err = prepareCredentials(config, req.Secrets); err != nil {
			return nil, err
		}
	} else if len(req.Secrets) > 0 {
		return nil, errdefs.Invalid("env: a copy takes its source's credential values")
	}
	var fp string
	var pull *image.ResolvedImage
	switch req.Source.Type {
	case SourceImage:
		var opt CreateOptions
		if len(opts) > 0 {
			opt = opts[0]
		}
		pr, err := remoteSource(req.Source, opt)
		if err != nil {
			return nil, err
		}
		if pr != nil {
			if s.cfg.OCI == nil {
				return nil, errdefs.Invalid("source.server %q: remote image servers are not supported", req.Source.Server)
			}
			// Resolved now, so a bad reference or a foreign image is a
			// 4xx at once; the layers are fetched by Run.
			ri, err := s.cfg.OCI.ResolveRemote(ctx, *pr)
			if err != nil {
				return nil, fmt.Errorf("source: %w", err)
			}
			fp = ri.Fingerprint()
			if _, err := s.cfg.Images.Image(ctx, fp); err != nil {
				pull = ri
			}
		} else {
			ref := req.Source.Alias
			if ref == "" {
				ref = req.Source.Fingerprint
			}
			if ref == "" {
				return nil, errdefs.Invalid("source: an image alias or fingerprint is required")
			}
			if fp, err = s.cfg.Images.Resolve(ctx, ref); err != nil {
				return nil, fmt.Errorf("source: %w", err)
			}
		}
		if pull == nil {
			if err := s.imageConfig(ctx, fp, typ, config); err != nil {
				return nil, err
			}
		}
	case SourceNone, "":
		if req.Source.Alias != "" || req.Source.Fingerprint != "" {
			return nil, errdefs.Invalid("source: type %q takes no image; use type \"image\"", req.Source.Type)
		}
		if req.Architecture != "" && req.Architecture != arch {
			return nil, errdefs.Invalid("architecture %q cannot run on this %s host", req.Architecture, arch)
		}
	case SourceCopy:
		// resolveCopy merged the source's config, devices and profiles.
	case SourceMigration:
		return nil, errdefs.Invalid("source type %q: migration between servers is not supported", req.Source.Type)
	default:
		return nil, errdefs.Invalid("unknown source type %q", req.Source.Type)
	}
	// A pulled image's run defaults are known after the pull: Run checks
	// that case.
	if pull == nil {
		if err := s.checkWithProfiles(typ, config, prefs); err != nil {
			return nil, err
		}
	}
	if err := s.checkRootWithProfiles(ctx, typ, req.Devices, prefs); err != nil {
		return nil, err
	}
	s.mu.RLock()
	views, err := s.profileViewsLocked(prefs)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	ecfg, edevs := expandConfig(config, views), expandDevices(req.Devices, views)
	if err := s.checkProjectRules(ctx, typ, ecfg, edevs); err != nil {
		return nil, err
	}
	quota, err := s.reserve(ctx, proj.Name, s.usageOf(typ, ecfg, edevs))
	if err != nil {
		return nil, err
	}
	name, err := s.reserveName(proj.Name, req.Name)
	if err != nil {
		quota.end()
		return nil, err
	}
	now := nowUTC()
	rec := store.Instance{
		UID:            cuid.New(), // a copy's and a fork's too: never the source's
		Project:        proj.Name,
		ProfileProject: profileProject,
		Name:           name,
		Type:           string(typ),
		Architecture:   arch,
		Description:    req.Description,
		Config:         config,
		Devices:        cloneDevices(req.Devices),
		Profiles:       append([]string{}, profiles...),
		Ephemeral:      req.Ephemeral,
		CreatedAt:      now,
		LastUsedAt:     now,
	}
	rec.Config[keyUUID] = newUUID()
	s.setIdmapKeys(&rec)
	return &Creation{
		s:       s,
		quota:   quota,
		rec:     rec,
		image:   fp,
		pull:    pull,
		copyOf:  src,
		start:   req.Start,
		secrets: secrets,
	}, nil
}

// imageConfig checks that the image runs here and records what the
// instance takes from it: image.* properties, the base image and, for an
// OCI image, its run defaults.
func (s *Service) imageConfig(ctx context.Context, fp string, typ Type, config map[string]string) error {
	img, err := s.cfg.Images.Image(ctx, fp)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	if err := imageFitsType(img, fp, typ); err != nil {
		return err
	}
	if arch := s.cfg.Architecture; img.Architecture != "" && img.Architecture != arch {
		return errdefs.Invalid("image %s is for %s and cannot run on this %s host", fp[:12], img.Architecture, arch)
	}
	for k, v := range img.Properties {
		config[prefixImage+k] = v
	}
	config[keyBaseImage] = fp
	if s.cfg.OCI != nil {
		rc, err := s.cfg.OCI.RuntimeConfig(ctx, fp)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		if rc != nil {
			maps.Copy(config, ociDefaults(rc))
		}
	}
	return nil
}

// Pulls reports whether Run fetches the image from a registry first.
func (c *Creation) Pulls() bool { return c.pull != nil }

// Cancelable says whether Run's long part honours its context's end (a
// pull, a copy's transfer), leaving nothing behind.
func (c *Creation) Cancelable() bool { return c.pull != nil || c.copyOf != nil }

// OnProgress sets where Run reports the progress of a pull.
func (c *Creation) OnProgress(f func(image.Progress)) { c.progress = f }

// checkProfiles checks that every named profile exists, once.
func (s *Service) checkProfiles(refs []ref) error {
	seen := map[ref]bool{}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, r := range refs {
		if seen[r] {
			return errdefs.Invalid("profile %q is listed twice", r.name)
		}
		seen[r] = true
		if _, ok := s.profiles[r]; !ok {
			return errdefs.NotFound("profile %q not found", r.name)
		}
	}
	return nil
}

// refsIn names profiles of project.
func refsIn(project string, names []string) []ref {
	out := make([]ref, len(names))
	for i, n := range names {
		out[i] = ref{project, n}
	}
	return out
}

// reserveName claims a name in project, or picks a free random one when
// name is empty.
func (s *Service) reserveName(project, name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		for range 100 {
			n := randomName()
			if r := (ref{project, n}); s.byName[r] == nil && !s.reserved[r] {
				name = n
				break
			}
		}
		if name == "" {
			return "", errdefs.Conflict("no free random name found; pass a name")
		}
	}
	r := ref{project, name}
	if s.byName[r] != nil || s.reserved[r] {
		return "", errdefs.Conflict("instance %q already exists", name)
	}
	s.reserved[r] = true
	return name, nil
}

func (s *Service) releaseName(r ref) {
	s.mu.Lock()
	delete(s.reserved, r)
	s.mu.Unlock()
}

// Abort releases the reserved name of a creation that will not run.
func (c *Creation) Abort() {
	if !c.done {
		c.done = true
		c.s.releaseName(ref{c.rec.Project, c.rec.Name})
		c.quota.end()
	}
}

// Run creates the instance and, when asked, starts it. A failure anywhere,
// the start included, leaves nothing behind: no record, no rootfs, no
// process.
func (c *Creation) Run(ctx context.Context) error {
	if c.done {
		return errors.New("creation already ran")
	}
	c.done = true
	s := c.s
	defer s.releaseName(ref{c.rec.Project, c.rec.Name})
	defer c.quota.end() // a no-op once the instance is registered

	rec := c.rec
	if c.pull != nil {
		if _, err := s.cfg.OCI.StoreRemote(ctx, c.pull, image.StoreOptions{Progress: c.progress, Cached: true}); err != nil {
			return fmt.Errorf("pull %s: %w", c.pull.Reference(), err)
		}
		if err := s.imageConfig(ctx, c.image, Type(rec.Type), rec.Config); err != nil {
			return err
		}
	}
	// Profiles may have changed since Create checked the config against
	// them; profileMu keeps them as they are until the instance is
	// registered, so a profile change checks it too.
	s.profileMu.Lock()
	locked := true
	unlockProfiles := func() {
		if locked {
			locked = false
			s.profileMu.Unlock()
		}
	}
	defer unlockProfiles()
	if err := s.checkWithProfiles(Type(rec.Type), rec.Config, profileRefs(rec)); err != nil {
		return err
	}
	if c.copyOf != nil {
		// Until its root and snapshots are whole: a daemon killed before
		// then finds a copy it cannot finish, and removes it (Recover).
		rec.Config[keyCreating] = SourceCopy
	}
	if err := s.cfg.DB.CreateInstance(ctx, &rec); err != nil {
		return fmt.Errorf("create %s: %w", rec.Name, err)
	}
	in := &inst{rec: rec, status: StatusStopped}
	// Hold the instance's lock before it becomes visible, so no other
	// operation can slip in between create and start.
	in.op.Lock()
	defer in.op.Unlock()
	s.mu.Lock()
	s.byName[ref{rec.Project, rec.Name}] = in
	s.byRuntime[runtimeID(rec.ID)] = in
	delete(s.reserved, ref{rec.Project, rec.Name})
	c.quota.endLocked() // counted as an instance from here on
	s.mu.Unlock()
	unlockProfiles()
	err := s.storeSecrets(ctx, rec, c.secrets, c.copyOf)
	if err == nil && c.copyOf != nil {
		err = s.copyRoot(ctx, rec, c.copyOf)
	} else if err == nil {
		err = s.createRoot(ctx, rec)
	}
	if err == nil && c.copyOf != nil {
		err = s.updateRecord(ctx, in, func(r *store.Instance) { delete(r.Config, keyCreating) })
	}
	if err != nil {
		// No root, no instance: the record goes too.
		if derr := s.deleteLocked(context.WithoutCancel(ctx), in, true); derr != nil {
			s.log.Error("roll back failed create", "instance", rec.Name, "err", derr)
		}
		return fmt.Errorf("create %s: %w", rec.Name, err)
	}
	if c.image != "" {
		if err := s.cfg.Images.MarkUsed(ctx, c.image); err != nil {
			s.log.Warn("mark image used", "fingerprint", c.image, "err", err)
		}
	}
	s.cfg.Events.Lifecycle(ctx, "instance-created", instanceEntity(rec.Project, rec.Name), map[string]any{"type": rec.Type})
	s.log.Info("instance created", "instance", rec.Name, "image", c.image)
	opts := startOptions{}
	if f := c.forkRun(); f != nil {
		// A fork starts when its source ran; a VM from the source's
		// saved state, with the processes it had.
		c.start, opts.state, opts.forked = f.running, f.state, f.state != ""
		if f.state != "" {
			defer os.Remove(f.state)
		}
	}
	if !c.start {
		return nil
	}
	if err := s.startWith(ctx, in, opts); err != nil {
		// A launch is one act: if it cannot start, it did not happen.
		// The start cleaned up its own runtime state; remove the rest.
		// The cleanup must run even if ctx was cancelled.
		if derr := s.deleteLocked(context.WithoutCancel(ctx), in, true); derr != nil {
			s.log.Error("roll back failed launch", "instance", rec.Name, "err", derr)
		}
		return err
	}
	return nil
}
