package lxd

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/image"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/operation"
)

// OCIImages is what the edge needs of the image store for OCI registries.
type OCIImages interface {
	ResolveRemote(ctx context.Context, req image.PullRequest) (*image.ResolvedImage, error)
	StoreRemote(ctx context.Context, ri *image.ResolvedImage, opts image.StoreOptions) (*image.RemoteImage, error)
}

// registryAuth reads the credentials header; both empty when absent.
func registryAuth(r *http.Request) (user, pass string, err error) {
	v := r.Header.Get(api.RegistryAuthHeader)
	if v == "" {
		return "", "", nil
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return "", "", errdefs.Invalid("%s: not base64", api.RegistryAuthHeader)
	}
	user, pass, ok := strings.Cut(string(b), ":")
	if !ok || user == "" {
		return "", "", errdefs.Invalid("%s: want base64 of USER:PASSWORD", api.RegistryAuthHeader)
	}
	return user, pass, nil
}

// pullImage is POST /1.0/images with a JSON body: a pull from an OCI
// registry. The reference, manifest and architecture are checked before
// answering, so a bad request is a 4xx at once; the layers are fetched in
// the operation, whose metadata carries progress.
func (s *Server) pullImage(w http.ResponseWriter, r *http.Request) {
	var req api.ImagesPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	src := req.Source
	switch {
	case src == nil:
		writeError(w, errdefs.Invalid("source: required for a JSON request (upload a tarball as the raw body instead)"))
		return
	case src.Type == "instance" || src.Type == "snapshot" || src.Type == "container" || src.Type == "virtual-machine":
		s.publishImage(w, r, req) // images_publish.go
		return
	case src.Type == "url":
		writeError(w, errdefs.NotImplemented("source.type %q is not supported by hangard; use \"image\" with protocol \"oci\"", src.Type))
		return
	case src.Type != "image":
		// LXD answers 400 to a type it does not know.
		writeError(w, errdefs.Invalid("unknown source.type %q: want \"image\" (with protocol \"oci\")", src.Type))
		return
	case src.Mode != "" && src.Mode != "pull":
		writeError(w, errdefs.Invalid("source.mode %q: only \"pull\" is supported", src.Mode))
		return
	case src.Protocol != instance.ProtocolOCI:
		writeError(w, errdefs.NotImplemented("source.protocol %q is not supported by hangard; only %q (OCI registries)", src.Protocol, instance.ProtocolOCI))
		return
	case src.Alias == "":
		writeError(w, errdefs.Invalid("source.alias: an image reference (repository:tag or repository@sha256:...) is required"))
		return
	case len(req.Aliases) > 1:
		writeError(w, errdefs.Invalid("aliases: at most one alias per pull"))
		return
	case s.OCI == nil:
		writeError(w, errdefs.NotImplemented("pulling images is not supported by this daemon"))
		return
	}
	user, pass, err := registryAuth(r)
	if err != nil {
		writeError(w, err)
		return
	}
	ri, err := s.OCI.ResolveRemote(r.Context(), image.PullRequest{Server: src.Server, Name: src.Alias, Username: user, Password: pass})
	if err != nil {
		writeError(w, err)
		return
	}
	opts := image.StoreOptions{Public: req.Public}
	if len(req.Aliases) == 1 {
		opts.Alias = req.Aliases[0].Name
	}
	op := s.Ops.Start(operation.Spec{
		Context:     r.Context(),
		Class:       api.OperationClassTask,
		Description: "Downloading image",
		Cancelable:  true,
		Resources:   map[string][]string{"images": {"/1.0/images/" + ri.Fingerprint()}},
		Metadata:    map[string]any{"reference": ri.Reference()},
		Run: func(ctx context.Context, op *operation.Op) error {
			opts.Progress = progressReporter(op)
			img, err := s.OCI.StoreRemote(ctx, ri, opts)
			if err != nil {
				return err
			}
			return op.SetMetadata(map[string]any{"fingerprint": img.Image.Fingerprint, "size": img.Image.Size})
		},
	})
	writeAsync(w, op.Snapshot())
}

// progressReporter turns pull progress into operation metadata, at most a
// few updates a second (each is an event to every listener).
func progressReporter(op *operation.Op) func(image.Progress) {
	var mu sync.Mutex
	var last time.Time
	var lastStage string
	return func(p image.Progress) {
		mu.Lock()
		defer mu.Unlock()
		now := time.Now()
		final := p.Total > 0 && p.Done >= p.Total
		if p.Stage == lastStage && !final && now.Sub(last) < 200*time.Millisecond {
			return
		}
		last, lastStage = now, p.Stage
		text := fmt.Sprintf("%s: %s", p.Stage, humanBytes(p.Done))
		if p.Total > 0 {
			text = fmt.Sprintf("%s: %d%% (%s/%s)", p.Stage, p.Done*100/p.Total, humanBytes(p.Done), humanBytes(p.Total))
		}
		_ = op.SetMetadata(map[string]any{
			"download_progress": text,
			api.ProgressStage:   p.Stage,
			api.ProgressBytes:   p.Done,
			api.ProgressTotal:   p.Total,
		})
	}
}

func humanBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.2f%cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// startCreate runs an instance creation as an operation. One that pulls
// its image reports the pull's progress and may be cancelled while it
// pulls.
func (s *Server) startCreate(w http.ResponseWriter, r *http.Request, c *instance.Creation) {
	op := s.Ops.Start(operation.Spec{
		Context:     r.Context(),
		Class:       api.OperationClassTask,
		Description: "Creating instance",
		Resources:   instanceResources(string(c.Type()), c.Name()),
		Cancelable:  c.Cancelable(),
		Run: func(ctx context.Context, op *operation.Op) error {
			c.OnProgress(progressReporter(op))
			return c.Run(ctx)
		},
	})
	writeAsync(w, op.Snapshot())
}
