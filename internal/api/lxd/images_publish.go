package lxd

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/image"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/operation"
	"github.com/hangar-dev/hangar/internal/project"
)

// RootView is an instance's root as the core lends it for reading.
type RootView = instance.RootView

// RootReader is what publishing needs of the instance core: the root of
// an instance or of one of its snapshots, held still (a running
// container frozen) while fn reads it. A missing instance or snapshot is
// errdefs.NotFound; a running virtual machine (not a snapshot of one) a
// conflict.
type RootReader interface {
	ReadRoot(ctx context.Context, name, snapshot string, fn func(root RootView) error) error
}

// Publisher is what publishing needs of the image store.
type Publisher interface {
	Publish(ctx context.Context, src image.PublishSource, opts image.PublishOptions) (api.Image, error)
}

// publishImage is POST /1.0/images with source type instance (container,
// virtual-machine) or snapshot: the instance's root becomes an image, in
// an operation. What can be refused without reading the root is refused
// at once (a missing instance, a taken alias, an unknown compression).
func (s *Server) publishImage(w http.ResponseWriter, r *http.Request, req api.ImagesPost) {
	src := req.Source
	name, snap, isSnap := strings.Cut(src.Name, "/")
	switch {
	case src.Name == "":
		writeError(w, errdefs.Invalid("source.name: the instance to publish is required"))
		return
	case src.Type == "snapshot" && !isSnap:
		writeError(w, errdefs.Invalid("source.name %q: a snapshot is named INSTANCE/SNAPSHOT", src.Name))
		return
	case src.Type != "snapshot" && isSnap:
		writeError(w, errdefs.Invalid("source.name %q is a snapshot: use source.type \"snapshot\"", src.Name))
		return
	case isSnap && (snap == "" || strings.Contains(snap, "/")):
		writeError(w, errdefs.Invalid("source.name %q: not INSTANCE/SNAPSHOT", src.Name))
		return
	case s.Roots == nil || s.Publisher == nil:
		writeError(w, errdefs.NotImplemented("publishing instances as images is not supported by this daemon"))
		return
	}
	comp := req.CompressionAlgorithm
	if comp == "" && s.Config != nil {
		comp = s.Config.Get()["images.compression_algorithm"]
	}
	if err := image.CheckCompression(comp); err != nil {
		writeError(w, err)
		return
	}
	// The operation reads the instance's root (can_manage_backups, as an
	// export) and adds an image to the project.
	if checked(w, s.allowInstance(r, name, auth.CanManageBackups)) || checked(w, s.allowInProject(r, project.FeatureImages, auth.CanCreateImages)) {
		return
	}
	inst, err := s.Instances.Get(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	var aliases []string
	for _, a := range req.Aliases {
		if _, err := s.Images.GetAlias(r.Context(), a.Name); err == nil {
			writeError(w, errdefs.Conflict("alias %q already exists", a.Name))
			return
		}
		aliases = append(aliases, a.Name)
	}
	props := req.Properties
	if props == nil {
		// As LXD, whose instance keeps its image's metadata.yaml: the
		// image's properties, which the instance recorded as image.*.
		props = imageProperties(inst.Config)
	}
	opts := image.PublishOptions{
		Properties:  props,
		Public:      req.Public,
		Aliases:     aliases,
		Compression: comp,
		ExpiresAt:   req.ExpiresAt,
		Filename:    req.Filename,
	}
	op := s.Ops.Start(operation.Spec{
		Context: r.Context(),
		Class:   api.OperationClassTask,
		// LXD's words for every POST /1.0/images, a publish included.
		Description: "Downloading image",
		Cancelable:  true,
		Resources:   map[string][]string{"instances": {"/1.0/instances/" + name}},
		Run: func(ctx context.Context, op *operation.Op) error {
			opts.Progress = packProgress(op)
			var img api.Image
			err := s.Roots.ReadRoot(ctx, name, snap, func(root RootView) error {
				opts.Architecture = root.Architecture
				var err error
				img, err = s.Publisher.Publish(ctx, image.PublishSource{
					Dir: root.Dir, IDMap: root.IDMap, Disk: root.Disk, DiskFormat: root.DiskFormat,
				}, opts)
				return err
			})
			if err != nil {
				return err
			}
			return op.SetMetadata(map[string]any{"fingerprint": img.Fingerprint, "size": img.Size})
		},
	})
	writeAsync(w, op.Snapshot())
}

// imageProperties are the image.* keys of an instance's config, without
// the prefix.
func imageProperties(cfg map[string]string) map[string]string {
	props := map[string]string{}
	for k, v := range cfg {
		if p, ok := strings.CutPrefix(k, "image."); ok && p != "" {
			props[p] = v
		}
	}
	return props
}

// packProgress turns a publish's progress into operation metadata as LXD
// sends it (lxc prints the "..._progress" text), a few updates a second.
func packProgress(op *operation.Op) func(image.Progress) {
	var mu sync.Mutex
	var last time.Time
	start := time.Now()
	return func(p image.Progress) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		final := p.Total > 0 && p.Done >= p.Total
		if !final && now.Sub(last) < 200*time.Millisecond {
			return
		}
		last = now
		speed := int64(0)
		if secs := now.Sub(start).Seconds(); secs > 0 {
			speed = int64(float64(p.Done) / secs)
		}
		progress := map[string]string{"stage": "create_image_from_container_pack", "speed": fmt.Sprint(speed)}
		text := fmt.Sprintf("Image pack: %s (%s/s)", humanBytes(p.Done), humanBytes(speed))
		if p.Done > 0 {
			progress["processed"] = fmt.Sprint(p.Done)
		}
		if p.Total > 0 {
			pct := min(p.Done*100/p.Total, 100)
			progress["percent"] = fmt.Sprint(pct)
			text = fmt.Sprintf("Image pack: %d%% (%s/s)", pct, humanBytes(speed))
		}
		md := map[string]any{
			"progress": progress,
			"create_image_from_container_pack_progress": text,
			api.ProgressStage: p.Stage,
			api.ProgressBytes: p.Done,
			api.ProgressTotal: p.Total,
		}
		_ = op.SetMetadata(md)
	}
}
