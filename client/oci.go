package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// ImagePullArgs names an image in an OCI registry for PullImage.
type ImagePullArgs struct {
	// Server is the registry ("docker.io", "ghcr.io", "http://127.0.0.1:5000"
	// for a plain-HTTP loopback registry).
	Server string
	// Name is the repository with a tag or digest ("library/alpine:3.20").
	Name string
	// Alias, when set, is created for the image.
	Alias  string
	Public bool
	// Auth authenticates to the registry; empty uses the daemon's own
	// ~/.docker/config.json, if any.
	Auth RegistryAuth
}

// RegistryAuth are OCI registry credentials, sent in a header only for the
// request that pulls.
type RegistryAuth struct {
	Username, Password string
}

func (a RegistryAuth) header(h http.Header) {
	if a.Username != "" {
		h.Set(api.RegistryAuthHeader, base64.StdEncoding.EncodeToString([]byte(a.Username+":"+a.Password)))
	}
}

// PullImage asks the daemon to pull an image from an OCI registry
// (POST /1.0/images with an "oci" source). A bad reference, a missing
// image or one for another architecture is an error at once; the layers
// are fetched by the returned operation, whose metadata carries progress
// (api.ProgressStage, ...) and, at the end, the image's "fingerprint".
func (c *Client) PullImage(ctx context.Context, args ImagePullArgs) (*Operation, error) {
	req := api.ImagesPost{
		ImagePut: api.ImagePut{Public: args.Public},
		Source:   &api.ImagesPostSource{Type: "image", Mode: "pull", Protocol: "oci", Server: args.Server, Alias: args.Name},
	}
	if args.Alias != "" {
		req.Aliases = []api.ImageAlias{{Name: args.Alias}}
	}
	return c.postWithAuth(ctx, "/1.0/images", req, args.Auth)
}

// CreateInstanceWithAuth is CreateInstance for a source naming an OCI
// registry that needs credentials.
func (c *Client) CreateInstanceWithAuth(ctx context.Context, req api.InstancesPost, auth RegistryAuth) (*Operation, error) {
	return c.postWithAuth(ctx, "/1.0/instances", req, auth)
}

func (c *Client) postWithAuth(ctx context.Context, path string, body any, auth RegistryAuth) (*Operation, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request body: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	auth.header(h)
	r, _, err := c.rawQuery(ctx, http.MethodPost, path, bytes.NewReader(data), int64(len(data)), h)
	if err != nil {
		return nil, err
	}
	return c.responseOperation(r)
}

// WaitProgress is Wait that also calls fn with the operation's state every
// interval while it runs (for progress in its metadata).
func (o *Operation) WaitProgress(ctx context.Context, interval time.Duration, fn func(api.Operation)) error {
	if o.ID() == "" {
		return o.Wait(ctx)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				op, err := o.c.GetOperation(pctx, o.ID())
				if err == nil && !op.StatusCode.IsFinal() {
					fn(*op)
				}
			}
		}
	}()
	err := o.Wait(ctx)
	stop()
	<-done
	return err
}
