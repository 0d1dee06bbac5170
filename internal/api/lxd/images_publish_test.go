package lxd

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/image"
	"github.com/hangar-dev/hangar/internal/instance"
)

// fakeRootReader lends roots of instances it knows ("c1" and its snapshot
// "snap0"); err, when set, is what ReadRoot answers instead.
type fakeRootReader struct {
	mu      sync.Mutex
	calls   []string // "name/snapshot"
	lending bool     // fn is running
	err     error
}

var fakeIDMap = driver.IDMap{HostID: 1000000, Size: 1000000000}

func (f *fakeRootReader) ReadRoot(_ context.Context, name, snapshot string, fn func(RootView) error) error {
	f.mu.Lock()
	f.calls = append(f.calls, name+"/"+snapshot)
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return err
	}
	if name != "c1" || (snapshot != "" && snapshot != "snap0") {
		return errdefs.NotFound("instance %q not found", name+"/"+snapshot)
	}
	f.mu.Lock()
	f.lending = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.lending = false
		f.mu.Unlock()
	}()
	return fn(RootView{Dir: "/roots/" + name + "@" + snapshot, IDMap: &fakeIDMap, Architecture: "x86_64", Type: instance.TypeContainer})
}

// fakePublisher records what it was asked to publish.
type fakePublisher struct {
	roots *fakeRootReader
	mu    sync.Mutex
	src   image.PublishSource
	opts  image.PublishOptions
	lent  bool // the root was lent while publishing
	// reported, when set, is closed after the progress reports; then
	// Publish waits for hold to close.
	reported, hold chan struct{}
}

func (f *fakePublisher) Publish(_ context.Context, src image.PublishSource, opts image.PublishOptions) (api.Image, error) {
	f.roots.mu.Lock()
	lent := f.roots.lending
	f.roots.mu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.src, f.opts, f.lent = src, opts, lent
	if opts.Progress != nil {
		opts.Progress(image.Progress{Stage: image.ProgressPack, Done: 50, Total: 100})
		opts.Progress(image.Progress{Stage: image.ProgressPack, Done: 100, Total: 100})
	}
	if f.reported != nil {
		close(f.reported)
		<-f.hold
	}
	return api.Image{Fingerprint: fakeFP, Size: 1234}, nil
}

// publishImages knows the alias "taken".
type publishImages struct{ fakeImages }

func (publishImages) GetAlias(_ context.Context, name string) (api.ImageAliasesEntry, error) {
	if name == "taken" {
		return api.ImageAliasesEntry{Name: name}, nil
	}
	return api.ImageAliasesEntry{}, errdefs.NotFound("alias %q not found", name)
}

type fakeServerConfig map[string]string

func (c fakeServerConfig) Get() map[string]string                      { return c }
func (fakeServerConfig) Replace(context.Context, map[string]any) error { return nil }
func (fakeServerConfig) Patch(context.Context, map[string]any) error   { return nil }

func TestPublishImage(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		config map[string]string
		noRoot bool  // the daemon cannot publish
		rrErr  error // what ReadRoot answers
		status int   // of the POST
		errHas string
		opErr  string // the operation's error, when it fails
		read   string // what ReadRoot was asked for
		check  func(t *testing.T, p *fakePublisher)
	}{
		{name: "instance", body: `{"source":{"type":"instance","name":"c1"},"aliases":[{"name":"app"},{"name":"app2"}],"public":true,"properties":{"description":"mine"},"expires_at":"2031-01-02T03:04:05Z","filename":"c1.tar.gz"}`,
			status: 202, read: "c1/", check: func(t *testing.T, p *fakePublisher) {
				o := p.opts
				if p.src.Dir != "/roots/c1@" || p.src.IDMap == nil || *p.src.IDMap != fakeIDMap || !p.lent {
					t.Errorf("source %+v (lent %v)", p.src, p.lent)
				}
				if strings.Join(o.Aliases, ",") != "app,app2" || !o.Public || o.Properties["description"] != "mine" || o.Architecture != "x86_64" ||
					!o.ExpiresAt.Equal(time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)) || o.Filename != "c1.tar.gz" || o.Compression != "" {
					t.Errorf("options %+v", o)
				}
			}},
		{name: "snapshot", body: `{"source":{"type":"snapshot","name":"c1/snap0"},"compression_algorithm":"xz"}`, status: 202, read: "c1/snap0",
			check: func(t *testing.T, p *fakePublisher) {
				if p.src.Dir != "/roots/c1@snap0" || p.opts.Compression != "xz" {
					t.Errorf("source %+v, options %+v", p.src, p.opts)
				}
			}},
		{name: "container type as old lxc sends it", body: `{"source":{"type":"container","name":"c1"}}`, status: 202, read: "c1/"},
		{name: "server default compression", body: `{"source":{"type":"instance","name":"c1"}}`, config: map[string]string{"images.compression_algorithm": "zstd"},
			status: 202, read: "c1/", check: func(t *testing.T, p *fakePublisher) {
				if p.opts.Compression != "zstd" {
					t.Errorf("compression %q", p.opts.Compression)
				}
			}},
		{name: "no properties: the image's", body: `{"source":{"type":"instance","name":"c1"}}`, status: 202, read: "c1/",
			check: func(t *testing.T, p *fakePublisher) {
				if p.opts.Properties == nil {
					t.Errorf("properties nil")
				}
			}},
		{name: "running vm refused by the core", body: `{"source":{"type":"instance","name":"c1"}}`, rrErr: errdefs.Conflict("instance is running"),
			status: 202, read: "c1/", opErr: "instance is running"},
		{name: "missing instance", body: `{"source":{"type":"instance","name":"nope"}}`, status: 404, errHas: "not found"},
		{name: "missing snapshot", body: `{"source":{"type":"snapshot","name":"c1/nope"}}`, status: 202, read: "c1/nope", opErr: "not found"},
		{name: "snapshot without slash", body: `{"source":{"type":"snapshot","name":"c1"}}`, status: 400, errHas: "INSTANCE/SNAPSHOT"},
		{name: "instance with slash", body: `{"source":{"type":"instance","name":"c1/snap0"}}`, status: 400, errHas: "is a snapshot"},
		{name: "no name", body: `{"source":{"type":"instance"}}`, status: 400, errHas: "source.name"},
		{name: "alias taken", body: `{"source":{"type":"instance","name":"c1"},"aliases":[{"name":"taken"}]}`, status: 409, errHas: `alias "taken" already exists`},
		{name: "bad compression", body: `{"source":{"type":"instance","name":"c1"},"compression_algorithm":"lz4"}`, status: 400, errHas: `compression "lz4"`},
		{name: "not supported", body: `{"source":{"type":"instance","name":"c1"}}`, noRoot: true, status: 501, errHas: "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			roots := &fakeRootReader{err: tt.rrErr}
			pub := &fakePublisher{roots: roots}
			ts, _ := newServerWith(t, &fakeDriver{running: map[string]int{}}, func(s *Server) {
				s.Images = publishImages{}
				if !tt.noRoot {
					s.Roots, s.Publisher = roots, pub
				}
				if tt.config != nil {
					s.Config = fakeServerConfig(tt.config)
				}
			})
			launch(t, ts, "c1")
			resp, env := call(t, ts, "POST", "/1.0/images", tt.body, map[string]string{"Content-Type": "application/json"})
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %+v", resp.StatusCode, tt.status, env)
			}
			if tt.status != http.StatusAccepted {
				if !strings.Contains(env.Error, tt.errHas) {
					t.Errorf("error %q, want it to say %q", env.Error, tt.errHas)
				}
				if len(roots.calls) != 0 {
					t.Errorf("root read for a refused request: %v", roots.calls)
				}
				return
			}
			_, done := call(t, ts, "GET", env.Operation+"/wait?timeout=10", "", nil)
			var op api.Operation
			if err := json.Unmarshal(done.Metadata, &op); err != nil {
				t.Fatal(err)
			}
			if op.Description != "Downloading image" {
				t.Errorf("description %q", op.Description)
			}
			if strings.Join(roots.calls, ",") != tt.read {
				t.Errorf("ReadRoot calls %v, want %s", roots.calls, tt.read)
			}
			if tt.opErr != "" {
				if op.StatusCode != api.Failure || !strings.Contains(op.Err, tt.opErr) {
					t.Errorf("operation %+v: want a failure saying %q", op, tt.opErr)
				}
				return
			}
			if op.StatusCode != api.Success || op.Metadata["fingerprint"] != fakeFP {
				t.Fatalf("operation %+v", op)
			}
			if tt.check != nil {
				pub.mu.Lock()
				defer pub.mu.Unlock()
				tt.check(t, pub)
			}
		})
	}
}

func TestPublishProgressMetadata(t *testing.T) {
	roots := &fakeRootReader{}
	pub := &fakePublisher{roots: roots, reported: make(chan struct{}), hold: make(chan struct{})}
	ts, _ := newServerWith(t, &fakeDriver{running: map[string]int{}}, func(s *Server) {
		s.Roots, s.Publisher = roots, pub
	})
	launch(t, ts, "c1")
	_, env := call(t, ts, "POST", "/1.0/images", `{"source":{"type":"instance","name":"c1"}}`, map[string]string{"Content-Type": "application/json"})
	<-pub.reported // Held after its last report, 100%.
	_, got := call(t, ts, "GET", env.Operation, "", nil)
	close(pub.hold)
	var op api.Operation
	if err := json.Unmarshal(got.Metadata, &op); err != nil {
		t.Fatal(err)
	}
	text, _ := op.Metadata["create_image_from_container_pack_progress"].(string)
	progress, _ := op.Metadata["progress"].(map[string]any)
	if !strings.HasPrefix(text, "Image pack: 100% (") || progress["stage"] != "create_image_from_container_pack" || progress["percent"] != "100" {
		t.Errorf("metadata %v", op.Metadata)
	}
	call(t, ts, "GET", env.Operation+"/wait?timeout=10", "", nil)
}
