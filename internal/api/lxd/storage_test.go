package lxd

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/storage"
)

// fakeStorage is an in-memory storage manager with the manager's kinds of
// errors: the edge's shapes, URLs, status codes and ETags are under test
// here; the manager's rules are in package storage's tests.
type fakeStorage struct {
	mu    sync.Mutex
	pools map[string]storage.Pool
	vols  map[string]storage.Volume // by pool/type/name
	res   map[string]storage.Resources
	state map[string]storage.VolumeState // by pool/type/name

	// What the last change was asked to do, and by which method.
	createdPool storage.CreatePoolRequest
	createdVol  storage.CreateVolumeRequest
	put         storage.PoolPut   // by UpdatePool
	patched     storage.PoolPut   // by PatchPool
	volPut      storage.VolumePut // by UpdateVolume
	volPatched  storage.VolumePut // by PatchVolume
	deleted     string            // pool or pool/type/name
	renamed     [2]string         // pool/type/name, new name

	snaps    map[string][]storage.Snapshot // by pool/type/name
	restored string                        // pool/type/name@snap
}

var volCreated = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func newFakeStorage() *fakeStorage {
	f := &fakeStorage{
		pools: map[string]storage.Pool{
			"default": {Name: "default", Driver: "dir", Status: "Created", Description: "the default",
				Config: map[string]string{"source": "/var/lib/hangar/storage-pools/default"},
				UsedBy: []string{"instances/c1", "profiles/default", "storage-pools/default/volumes/custom/data"}},
			"spare": {Name: "spare", Driver: "btrfs", Status: "Created", Config: map[string]string{"size": "5GiB"}},
		},
		vols: map[string]storage.Volume{},
		res: map[string]storage.Resources{
			"default": {Space: storage.Usage{Used: 1 << 30, Total: 10 << 30}, Inodes: storage.Usage{Used: 1000, Total: 655360}},
			"spare":   {Space: storage.Usage{Used: -1, Total: 5 << 30}},
		},
		state: map[string]storage.VolumeState{
			"default/custom/data":     {Usage: storage.Usage{Used: 4096, Total: 1 << 30}},
			"default/custom/blk":      {Usage: storage.Usage{Used: -1, Total: -1}},
			"default/container/c1":    {Usage: storage.Usage{Used: 8192}},
			"default/custom/odd name": {},
		},
	}
	for _, v := range []storage.Volume{
		{Pool: "default", Type: "virtual-machine", Name: "v1", ContentType: "block", UsedBy: []string{"instances/v1"}},
		{Pool: "default", Type: "custom", Name: "data", ContentType: "filesystem", Description: "shared",
			Config: map[string]string{"size": "1GiB"}, UsedBy: []string{"instances/c1"}, CreatedAt: volCreated},
		{Pool: "default", Type: "custom", Name: "blk", ContentType: "block"},
		{Pool: "default", Type: "container", Name: "c1", ContentType: "filesystem", UsedBy: []string{"instances/c1"}},
		{Pool: "default", Type: "image", Name: "abc123", UsedBy: []string{"images/abc123"}},
		{Pool: "default", Type: "custom", Name: "odd name"},
	} {
		f.vols[v.Pool+"/"+v.Type+"/"+v.Name] = v
	}
	return f
}

// pool returns a pool. Called with f.mu held.
func (f *fakeStorage) pool(name string) (storage.Pool, error) {
	p, ok := f.pools[name]
	if !ok {
		return p, errdefs.NotFound("storage pool %q not found", name)
	}
	return p, nil
}

// vol returns a volume. Called with f.mu held.
func (f *fakeStorage) vol(pool, typ, name string) (storage.Volume, error) {
	if _, err := f.pool(pool); err != nil {
		return storage.Volume{}, err
	}
	v, ok := f.vols[pool+"/"+typ+"/"+name]
	if !ok {
		return v, errdefs.NotFound("storage volume %s/%s not found on pool %q", typ, name, pool)
	}
	return v, nil
}

func (f *fakeStorage) Pools(context.Context) ([]storage.Pool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Collect(maps.Values(f.pools))
	slices.SortFunc(out, func(a, b storage.Pool) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (f *fakeStorage) Pool(_ context.Context, name string) (storage.Pool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pool(name)
}

func (f *fakeStorage) CreatePool(_ context.Context, req storage.CreatePoolRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.createdPool = req
	if _, ok := f.pools[req.Name]; ok {
		return errdefs.Conflict("storage pool %q already exists", req.Name)
	}
	switch req.Driver {
	case "dir", "btrfs":
	case "lvm":
		return errdefs.Invalid("storage driver lvm needs device-mapper, which this kernel lacks")
	default:
		return errdefs.Invalid("unknown storage driver %q (dir, btrfs)", req.Driver)
	}
	if _, ok := req.Config["bogus"]; ok {
		return errdefs.Invalid("invalid storage pool config key %q for driver %s", "bogus", req.Driver)
	}
	f.pools[req.Name] = storage.Pool{Name: req.Name, Driver: req.Driver, Description: req.Description, Config: req.Config, Status: "Created"}
	return nil
}

func (f *fakeStorage) UpdatePool(_ context.Context, name string, put storage.PoolPut) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.pool(name)
	if err != nil {
		return err
	}
	f.put = put
	p.Description, p.Config = put.Description, put.Config
	f.pools[name] = p
	return nil
}

// merge is the manager's PATCH: keys merged, an empty value removing one,
// the description kept on "".
func merge(cfg map[string]string, desc *string, put storage.PoolPut) map[string]string {
	cfg = maps.Clone(cfg)
	if cfg == nil {
		cfg = map[string]string{}
	}
	for k, v := range put.Config {
		if v == "" {
			delete(cfg, k)
		} else {
			cfg[k] = v
		}
	}
	if put.Description != "" {
		*desc = put.Description
	}
	return cfg
}

func (f *fakeStorage) PatchPool(_ context.Context, name string, put storage.PoolPut) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.pool(name)
	if err != nil {
		return err
	}
	f.patched = put
	p.Config = merge(p.Config, &p.Description, put)
	f.pools[name] = p
	return nil
}

func (f *fakeStorage) DeletePool(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, err := f.pool(name)
	if err != nil {
		return err
	}
	if len(p.UsedBy) > 0 {
		return errdefs.Conflict("storage pool %q is in use by %s", name, strings.Join(p.UsedBy, ", "))
	}
	f.deleted = name
	delete(f.pools, name)
	return nil
}

func (f *fakeStorage) PoolResources(_ context.Context, name string) (storage.Resources, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.pool(name); err != nil {
		return storage.Resources{}, err
	}
	return f.res[name], nil
}

func (f *fakeStorage) Volumes(_ context.Context, pool string) ([]storage.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.pool(pool); err != nil {
		return nil, err
	}
	var out []storage.Volume
	for _, v := range f.vols { // map order: the edge sorts
		if v.Pool == pool {
			out = append(out, v)
		}
	}
	return out, nil
}

func (f *fakeStorage) Volume(_ context.Context, pool, typ, name string) (storage.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.vol(pool, typ, name)
}

func (f *fakeStorage) CreateVolume(_ context.Context, req storage.CreateVolumeRequest) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.createdVol = req
	if _, err := f.pool(req.Pool); err != nil {
		return err
	}
	if _, ok := f.vols[req.Pool+"/custom/"+req.Name]; ok {
		return errdefs.Conflict("storage volume custom/%s already exists on pool %q", req.Name, req.Pool)
	}
	if req.Config["size"] == "1PiB" {
		return errdefs.NoSpace("pool %q has no room for 1PiB", req.Pool)
	}
	f.vols[req.Pool+"/custom/"+req.Name] = storage.Volume{Pool: req.Pool, Type: "custom", Name: req.Name,
		ContentType: req.ContentType, Description: req.Description, Config: req.Config}
	return nil
}

func (f *fakeStorage) UpdateVolume(_ context.Context, pool, typ, name string, put storage.VolumePut) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.vol(pool, typ, name)
	if err != nil {
		return err
	}
	f.volPut = put
	v.Description, v.Config = put.Description, put.Config
	f.vols[pool+"/"+typ+"/"+name] = v
	return nil
}

func (f *fakeStorage) PatchVolume(_ context.Context, pool, typ, name string, put storage.VolumePut) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.vol(pool, typ, name)
	if err != nil {
		return err
	}
	f.volPatched = put
	v.Config = merge(v.Config, &v.Description, storage.PoolPut(put))
	f.vols[pool+"/"+typ+"/"+name] = v
	return nil
}

func (f *fakeStorage) RenameVolume(_ context.Context, pool, typ, name, newName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.vol(pool, typ, name)
	if err != nil {
		return err
	}
	if _, ok := f.vols[pool+"/"+typ+"/"+newName]; ok {
		return errdefs.Conflict("storage volume %s/%s already exists on pool %q", typ, newName, pool)
	}
	f.renamed = [2]string{pool + "/" + typ + "/" + name, newName}
	delete(f.vols, pool+"/"+typ+"/"+name)
	v.Name = newName
	f.vols[pool+"/"+typ+"/"+newName] = v
	return nil
}

func (f *fakeStorage) DeleteVolume(_ context.Context, pool, typ, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, err := f.vol(pool, typ, name)
	if err != nil {
		return err
	}
	if len(v.UsedBy) > 0 {
		return errdefs.Conflict("storage volume %s/%s is in use by %s", typ, name, strings.Join(v.UsedBy, ", "))
	}
	f.deleted = pool + "/" + typ + "/" + name
	delete(f.vols, pool+"/"+typ+"/"+name)
	return nil
}

func (f *fakeStorage) VolumeState(_ context.Context, pool, typ, name string) (storage.VolumeState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.vol(pool, typ, name); err != nil {
		return storage.VolumeState{}, err
	}
	return f.state[pool+"/"+typ+"/"+name], nil
}

// TestStorageEndpoints drives every storage endpoint against a fresh fake
// manager per row: status, error message, headers and what the manager
// was asked.
func TestStorageEndpoints(t *testing.T) {
	ts, srv := newServer(t, &fakeDriver{running: map[string]int{}})
	type check func(t *testing.T, f *fakeStorage, resp *http.Response, env api.Response)
	metadata := func(want string) check {
		return func(t *testing.T, _ *fakeStorage, _ *http.Response, env api.Response) {
			t.Helper()
			var got, exp any
			if err := json.Unmarshal(env.Metadata, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(want), &exp); err != nil {
				t.Fatalf("bad want %s: %v", want, err)
			}
			if d := cmp.Diff(exp, got); d != "" {
				t.Errorf("metadata (-want +got):\n%s", d)
			}
		}
	}
	location := func(want string) check {
		return func(t *testing.T, _ *fakeStorage, resp *http.Response, _ api.Response) {
			t.Helper()
			if got := resp.Header.Get("Location"); got != want {
				t.Errorf("Location %q, want %q", got, want)
			}
		}
	}
	hasETag := func(t *testing.T, _ *fakeStorage, resp *http.Response, _ api.Response) {
		t.Helper()
		if e := resp.Header.Get("ETag"); len(e) != 66 { // quoted sha256
			t.Errorf("ETag %q", e)
		}
	}
	asked := func(want any, got func(f *fakeStorage) any) check {
		return func(t *testing.T, f *fakeStorage, _ *http.Response, _ api.Response) {
			t.Helper()
			if d := cmp.Diff(want, got(f)); d != "" {
				t.Errorf("manager asked (-want +got):\n%s", d)
			}
		}
	}
	const (
		data = "/1.0/storage-pools/default/volumes/custom/data"
		blk  = "/1.0/storage-pools/default/volumes/custom/blk"
	)
	dataJSON := `{"name":"data","type":"custom","description":"shared","config":{"size":"1GiB"},
		"used_by":["/1.0/instances/c1"],"location":"none","content_type":"filesystem","project":"default",
		"created_at":"2024-05-01T12:00:00Z"}`
	tests := []struct {
		name, method, path, body, ifMatch string
		header                            map[string]string
		status                            int
		errHas                            string
		checks                            []check
	}{
		// Pools.
		{name: "pool urls", method: "GET", path: "/1.0/storage-pools", status: 200, checks: []check{
			metadata(`["/1.0/storage-pools/default","/1.0/storage-pools/spare"]`)}},
		{name: "pool objects", method: "GET", path: "/1.0/storage-pools?recursion=1", status: 200, checks: []check{metadata(`[
			{"name":"default","driver":"dir","description":"the default","status":"Created","locations":["none"],
			 "config":{"source":"/var/lib/hangar/storage-pools/default"},
			 "used_by":["/1.0/instances/c1","/1.0/profiles/default","/1.0/storage-pools/default/volumes/custom/data"]},
			{"name":"spare","driver":"btrfs","description":"","status":"Created","locations":["none"],
			 "config":{"size":"5GiB"},"used_by":[]}]`)}},
		{name: "pool objects at recursion 2", method: "GET", path: "/1.0/storage-pools?recursion=2", status: 200, checks: []check{
			func(t *testing.T, _ *fakeStorage, _ *http.Response, env api.Response) {
				var pools []api.StoragePool
				if err := json.Unmarshal(env.Metadata, &pools); err != nil || len(pools) != 2 {
					t.Errorf("pools %s: %v", env.Metadata, err)
				}
			}}},
		{name: "pool create", method: "POST", path: "/1.0/storage-pools", body: `{"name":"p1","driver":"btrfs","description":"d","config":{"size":"2GiB"},"extra":1}`,
			status: 200, checks: []check{location("/1.0/storage-pools/p1"), asked(
				storage.CreatePoolRequest{Name: "p1", Driver: "btrfs", Description: "d", Config: map[string]string{"size": "2GiB"}},
				func(f *fakeStorage) any { return f.createdPool })}},
		{name: "pool create without name", method: "POST", path: "/1.0/storage-pools", body: `{"driver":"dir"}`, status: 400, errHas: `"name"`},
		{name: "pool create without driver", method: "POST", path: "/1.0/storage-pools", body: `{"name":"p1"}`, status: 400, errHas: `"driver"`},
		{name: "pool create name with slash", method: "POST", path: "/1.0/storage-pools", body: `{"name":"a/b","driver":"dir"}`, status: 400, errHas: "slashes"},
		{name: "pool create config not strings", method: "POST", path: "/1.0/storage-pools", body: `{"name":"p1","driver":"dir","config":{"size":5}}`, status: 400, errHas: `"config`},
		{name: "pool create driver not string", method: "POST", path: "/1.0/storage-pools", body: `{"name":"p1","driver":["dir"]}`, status: 400, errHas: `"driver"`},
		{name: "pool create not JSON", method: "POST", path: "/1.0/storage-pools", body: `{"name":`, status: 400, errHas: "JSON"},
		{name: "pool create empty body", method: "POST", path: "/1.0/storage-pools", status: 400, errHas: "empty"},
		{name: "pool create unknown key", method: "POST", path: "/1.0/storage-pools", body: `{"name":"p1","driver":"dir","config":{"bogus":"1"}}`, status: 400, errHas: `"bogus"`},
		{name: "pool create lvm", method: "POST", path: "/1.0/storage-pools", body: `{"name":"p1","driver":"lvm"}`, status: 400, errHas: "device-mapper"},
		{name: "pool create existing", method: "POST", path: "/1.0/storage-pools", body: `{"name":"spare","driver":"dir"}`, status: 409, errHas: "already exists"},
		{name: "pool get", method: "GET", path: "/1.0/storage-pools/spare?target=none&project=default", status: 200, checks: []check{hasETag, metadata(`
			{"name":"spare","driver":"btrfs","description":"","status":"Created","locations":["none"],"config":{"size":"5GiB"},"used_by":[]}`)}},
		{name: "pool get missing", method: "GET", path: "/1.0/storage-pools/ghost", status: 404, errHas: `"ghost"`},
		{name: "pool get other project", method: "GET", path: "/1.0/storage-pools/spare?project=p2", status: 404, errHas: "project"},
		{name: "pool rename is not LXD's", method: "POST", path: "/1.0/storage-pools/spare", body: `{"name":"x"}`, status: 501, errHas: "not implemented"},
		{name: "pool collection PUT", method: "PUT", path: "/1.0/storage-pools", body: `{}`, status: 501},
		{name: "pool put", method: "PUT", path: "/1.0/storage-pools/spare", body: `{"description":"x","config":{"size":"9GiB"}}`, status: 200, checks: []check{
			asked(storage.PoolPut{Description: "x", Config: map[string]string{"size": "9GiB"}}, func(f *fakeStorage) any { return f.put })}},
		{name: "pool put fresh ETag", method: "PUT", path: "/1.0/storage-pools/spare", ifMatch: fresh, body: `{"config":{}}`, status: 200},
		{name: "pool put stale ETag", method: "PUT", path: "/1.0/storage-pools/spare", ifMatch: `"0123"`, body: `{"config":{}}`, status: 412, errHas: "ETag"},
		{name: "pool put missing", method: "PUT", path: "/1.0/storage-pools/ghost", body: `{"config":{}}`, status: 404, errHas: `"ghost"`},
		{name: "pool put description not string", method: "PUT", path: "/1.0/storage-pools/spare", body: `{"description":5}`, status: 400, errHas: `"description"`},
		{name: "pool put not JSON", method: "PUT", path: "/1.0/storage-pools/spare", body: `config: {}`, status: 400, errHas: "JSON"},
		{name: "pool patch merges", method: "PATCH", path: "/1.0/storage-pools/default", ifMatch: fresh, body: `{"config":{"source":"","rsync.bwlimit":"10MiB"}}`, status: 200, checks: []check{
			asked(storage.PoolPut{Config: map[string]string{"source": "", "rsync.bwlimit": "10MiB"}}, func(f *fakeStorage) any { return f.patched }),
			func(t *testing.T, f *fakeStorage, _ *http.Response, _ api.Response) {
				if p := f.pools["default"]; p.Description != "the default" || !maps.Equal(p.Config, map[string]string{"rsync.bwlimit": "10MiB"}) {
					t.Errorf("pool after patch %+v", p)
				}
			}}},
		{name: "pool patch clears description", method: "PATCH", path: "/1.0/storage-pools/default", body: `{"description":"","config":{"rsync.bwlimit":"1"}}`, status: 200, checks: []check{
			asked(storage.PoolPut{Config: map[string]string{"source": "/var/lib/hangar/storage-pools/default", "rsync.bwlimit": "1"}}, func(f *fakeStorage) any { return f.put })}},
		{name: "pool patch stale ETag", method: "PATCH", path: "/1.0/storage-pools/default", ifMatch: `"0123"`, body: `{}`, status: 412, errHas: "ETag"},
		{name: "pool patch config not object", method: "PATCH", path: "/1.0/storage-pools/default", body: `{"config":["a"]}`, status: 400, errHas: `"config"`},
		{name: "pool patch missing", method: "PATCH", path: "/1.0/storage-pools/ghost", body: `{}`, status: 404},
		{name: "pool delete", method: "DELETE", path: "/1.0/storage-pools/spare", status: 200, checks: []check{
			asked("spare", func(f *fakeStorage) any { return f.deleted })}},
		{name: "pool delete in use names users", method: "DELETE", path: "/1.0/storage-pools/default", status: 409, errHas: "instances/c1, profiles/default"},
		{name: "pool delete missing", method: "DELETE", path: "/1.0/storage-pools/ghost", status: 404},
		{name: "pool resources", method: "GET", path: "/1.0/storage-pools/default/resources", status: 200, checks: []check{metadata(`
			{"space":{"used":1073741824,"total":10737418240},"inodes":{"used":1000,"total":655360}}`)}},
		{name: "pool resources unknown used", method: "GET", path: "/1.0/storage-pools/spare/resources", status: 200, checks: []check{metadata(`
			{"space":{"total":5368709120},"inodes":{"used":0,"total":0}}`)}},
		{name: "pool resources missing", method: "GET", path: "/1.0/storage-pools/ghost/resources", status: 404, errHas: `"ghost"`},
		{name: "pool unknown sub-resource", method: "GET", path: "/1.0/storage-pools/default/buckets", status: 404, errHas: "not found"},

		// Volume lists: LXD's order (container, image, custom, VM; then name).
		{name: "volume urls", method: "GET", path: "/1.0/storage-pools/default/volumes", status: 200, checks: []check{metadata(`[
			"/1.0/storage-pools/default/volumes/container/c1",
			"/1.0/storage-pools/default/volumes/image/abc123",
			"/1.0/storage-pools/default/volumes/custom/blk",
			"/1.0/storage-pools/default/volumes/custom/data",
			"/1.0/storage-pools/default/volumes/custom/odd%20name",
			"/1.0/storage-pools/default/volumes/virtual-machine/v1"]`)}},
		{name: "volume urls of a type", method: "GET", path: "/1.0/storage-pools/default/volumes/custom", status: 200, checks: []check{metadata(`[
			"/1.0/storage-pools/default/volumes/custom/blk","/1.0/storage-pools/default/volumes/custom/data",
			"/1.0/storage-pools/default/volumes/custom/odd%20name"]`)}},
		{name: "volume objects of a type", method: "GET", path: "/1.0/storage-pools/default/volumes/image?recursion=1", status: 200, checks: []check{metadata(`[
			{"name":"abc123","type":"image","description":"","config":{},"used_by":["/1.0/images/abc123"],"location":"none",
			 "content_type":"filesystem","project":"default","created_at":"0001-01-01T00:00:00Z"}]`)}},
		{name: "volume objects filtered", method: "GET", path: "/1.0/storage-pools/default/volumes?recursion=1&filter=content_type+eq+block+and+type+eq+custom", status: 200, checks: []check{
			func(t *testing.T, _ *fakeStorage, _ *http.Response, env api.Response) {
				var vols []api.StorageVolume
				_ = json.Unmarshal(env.Metadata, &vols)
				if len(vols) != 1 || vols[0].Name != "blk" {
					t.Errorf("volumes %s", env.Metadata)
				}
			}}},
		{name: "volume urls filtered by config", method: "GET", path: "/1.0/storage-pools/default/volumes?filter=config.size+eq+1GiB", status: 200, checks: []check{
			metadata(`["/1.0/storage-pools/default/volumes/custom/data"]`)}},
		{name: "volume list bad filter", method: "GET", path: "/1.0/storage-pools/default/volumes?filter=name+eq", status: 400, errHas: "filter"},
		{name: "volume list empty pool", method: "GET", path: "/1.0/storage-pools/spare/volumes?recursion=1", status: 200, checks: []check{metadata(`[]`)}},
		{name: "volume list bad type", method: "GET", path: "/1.0/storage-pools/default/volumes/bogus", status: 400, errHas: `"bogus"`},
		{name: "volume list missing pool", method: "GET", path: "/1.0/storage-pools/ghost/volumes", status: 404, errHas: `"ghost"`},

		// Volume create.
		{name: "volume create", method: "POST", path: "/1.0/storage-pools/default/volumes", body: `{"name":"v2","type":"custom","description":"d","config":{"size":"1GiB"}}`,
			status: 200, checks: []check{location("/1.0/storage-pools/default/volumes/custom/v2"), asked(
				storage.CreateVolumeRequest{Pool: "default", Name: "v2", ContentType: "filesystem", Description: "d", Config: map[string]string{"size": "1GiB"}},
				func(f *fakeStorage) any { return f.createdVol })}},
		{name: "volume create block with type in path", method: "POST", path: "/1.0/storage-pools/spare/volumes/custom", body: `{"name":"b2","content_type":"block","type":"image"}`,
			status: 200, checks: []check{location("/1.0/storage-pools/spare/volumes/custom/b2"), asked(
				storage.CreateVolumeRequest{Pool: "spare", Name: "b2", ContentType: "block"},
				func(f *fakeStorage) any { return f.createdVol })}},
		{name: "volume create without type", method: "POST", path: "/1.0/storage-pools/default/volumes", body: `{"name":"v2"}`, status: 400, errHas: `"type"`},
		{name: "volume create of an image", method: "POST", path: "/1.0/storage-pools/default/volumes/image", body: `{"name":"v2"}`, status: 400, errHas: "only custom"},
		{name: "volume create bad type in path", method: "POST", path: "/1.0/storage-pools/default/volumes/bogus", body: `{"name":"v2"}`, status: 400, errHas: `"bogus"`},
		{name: "volume create without name", method: "POST", path: "/1.0/storage-pools/default/volumes/custom", body: `{}`, status: 400, errHas: `"name"`},
		{name: "volume create name with slash", method: "POST", path: "/1.0/storage-pools/default/volumes/custom", body: `{"name":"a/b"}`, status: 400, errHas: "slashes"},
		{name: "volume create bad content type", method: "POST", path: "/1.0/storage-pools/default/volumes/custom", body: `{"name":"v2","content_type":"tape"}`, status: 400, errHas: `"tape"`},
		{name: "volume create config not strings", method: "POST", path: "/1.0/storage-pools/default/volumes/custom", body: `{"name":"v2","config":{"size":1}}`, status: 400, errHas: `"config`},
		{name: "volume create not JSON", method: "POST", path: "/1.0/storage-pools/default/volumes/custom", body: `{`, status: 400, errHas: "JSON"},
		{name: "volume create copy", method: "POST", path: "/1.0/storage-pools/default/volumes/custom", body: `{"name":"v2","source":{"type":"copy","name":"data","pool":"default"}}`, status: 501, errHas: "copy"},
		{name: "volume create from a named source", method: "POST", path: "/1.0/storage-pools/default/volumes/custom", body: `{"name":"v2","source":{"name":"data"}}`, status: 501, errHas: "copy"},
		{name: "volume create unknown source", method: "POST", path: "/1.0/storage-pools/default/volumes/custom", body: `{"name":"v2","source":{"type":"magic"}}`, status: 400, errHas: `"magic"`},
		{name: "volume create from a backup", method: "POST", path: "/1.0/storage-pools/default/volumes/custom", body: "\x1f\x8b",
			header: map[string]string{"Content-Type": "application/octet-stream"}, status: 501, errHas: "backups"},
		{name: "volume create existing", method: "POST", path: "/1.0/storage-pools/default/volumes/custom", body: `{"name":"data"}`, status: 409, errHas: "already exists"},
		{name: "volume create on missing pool", method: "POST", path: "/1.0/storage-pools/ghost/volumes/custom", body: `{"name":"v2"}`, status: 404, errHas: `"ghost"`},
		{name: "volume create pool full", method: "POST", path: "/1.0/storage-pools/default/volumes/custom", body: `{"name":"v2","config":{"size":"1PiB"}}`, status: 507, errHas: "no room"},

		// One volume.
		{name: "volume get", method: "GET", path: data, status: 200, checks: []check{hasETag, metadata(dataJSON)}},
		{name: "volume get escaped name", method: "GET", path: "/1.0/storage-pools/default/volumes/custom/odd%20name", status: 200},
		{name: "volume get instance's", method: "GET", path: "/1.0/storage-pools/default/volumes/container/c1", status: 200, checks: []check{metadata(`
			{"name":"c1","type":"container","description":"","config":{},"used_by":["/1.0/instances/c1"],"location":"none",
			 "content_type":"filesystem","project":"default","created_at":"0001-01-01T00:00:00Z"}`)}},
		{name: "volume get missing", method: "GET", path: "/1.0/storage-pools/default/volumes/custom/ghost", status: 404, errHas: `"default"`},
		{name: "volume get other type", method: "GET", path: "/1.0/storage-pools/default/volumes/container/data", status: 404},
		{name: "volume get bad type", method: "GET", path: "/1.0/storage-pools/default/volumes/bogus/data", status: 400, errHas: `"bogus"`},
		{name: "volume get missing pool", method: "GET", path: "/1.0/storage-pools/ghost/volumes/custom/data", status: 404, errHas: `"ghost"`},
		{name: "volume put", method: "PUT", path: data, ifMatch: fresh, body: `{"description":"x","config":{"size":"2GiB"}}`, status: 200, checks: []check{
			asked(storage.VolumePut{Description: "x", Config: map[string]string{"size": "2GiB"}}, func(f *fakeStorage) any { return f.volPut })}},
		{name: "volume put instance's", method: "PUT", path: "/1.0/storage-pools/default/volumes/container/c1", body: `{"config":{"size":"3GiB"}}`, status: 200},
		{name: "volume put stale ETag", method: "PUT", path: data, ifMatch: `"0123"`, body: `{"config":{}}`, status: 412, errHas: "ETag"},
		{name: "volume put restore of no snapshot", method: "PUT", path: data, body: `{"restore":"snap0"}`, status: 404, errHas: "snap0"},
		{name: "volume put config not object", method: "PUT", path: data, body: `{"config":"size=1"}`, status: 400, errHas: `"config"`},
		{name: "volume put bad type", method: "PUT", path: "/1.0/storage-pools/default/volumes/bogus/data", body: `{}`, status: 400},
		{name: "volume put missing", method: "PUT", path: "/1.0/storage-pools/default/volumes/custom/ghost", body: `{}`, status: 404},
		{name: "volume patch merges", method: "PATCH", path: data, ifMatch: fresh, body: `{"config":{"security.shifted":"true"}}`, status: 200, checks: []check{
			asked(storage.VolumePut{Config: map[string]string{"security.shifted": "true"}}, func(f *fakeStorage) any { return f.volPatched }),
			func(t *testing.T, f *fakeStorage, _ *http.Response, _ api.Response) {
				if v := f.vols["default/custom/data"]; v.Description != "shared" || len(v.Config) != 2 {
					t.Errorf("volume after patch %+v", v)
				}
			}}},
		{name: "volume patch clears description", method: "PATCH", path: data, body: `{"description":""}`, status: 200, checks: []check{
			asked(storage.VolumePut{Config: map[string]string{"size": "1GiB"}}, func(f *fakeStorage) any { return f.volPut })}},
		{name: "volume patch stale ETag", method: "PATCH", path: data, ifMatch: `"0123"`, body: `{}`, status: 412, errHas: "ETag"},
		{name: "volume patch description not string", method: "PATCH", path: data, body: `{"description":true}`, status: 400, errHas: `"description"`},
		{name: "volume patch bad type", method: "PATCH", path: "/1.0/storage-pools/default/volumes/bogus/data", body: `{}`, status: 400},

		// Rename.
		{name: "volume rename", method: "POST", path: blk, body: `{"name":"blk2"}`, status: 200, checks: []check{
			location("/1.0/storage-pools/default/volumes/custom/blk2"),
			asked([2]string{"default/custom/blk", "blk2"}, func(f *fakeStorage) any { return f.renamed })}},
		{name: "volume rename naming its pool", method: "POST", path: blk, body: `{"name":"blk2","pool":"default","project":"default"}`, status: 200},
		{name: "volume move to another pool", method: "POST", path: blk, body: `{"name":"blk","pool":"spare"}`, status: 501, errHas: "between pools"},
		{name: "volume move to another project", method: "POST", path: blk, body: `{"name":"blk","project":"p2"}`, status: 501, errHas: `"p2"`},
		{name: "volume migration", method: "POST", path: blk, body: `{"name":"blk","migration":true}`, status: 501, errHas: "migrate"},
		{name: "volume rename without name", method: "POST", path: blk, body: `{}`, status: 400, errHas: `"name"`},
		{name: "volume rename name not string", method: "POST", path: blk, body: `{"name":7}`, status: 400, errHas: `"name"`},
		{name: "volume rename with slash", method: "POST", path: blk, body: `{"name":"a/b"}`, status: 400, errHas: "slashes"},
		{name: "volume rename instance's", method: "POST", path: "/1.0/storage-pools/default/volumes/container/c1", body: `{"name":"c2"}`, status: 400, errHas: "only custom"},
		{name: "volume rename onto existing", method: "POST", path: blk, body: `{"name":"data"}`, status: 409, errHas: "already exists"},
		{name: "volume rename missing", method: "POST", path: "/1.0/storage-pools/default/volumes/custom/ghost", body: `{"name":"x"}`, status: 404},
		{name: "volume rename bad type", method: "POST", path: "/1.0/storage-pools/default/volumes/bogus/blk", body: `{"name":"x"}`, status: 400, errHas: `"bogus"`},

		// Delete.
		{name: "volume delete", method: "DELETE", path: blk, status: 200, checks: []check{
			asked("default/custom/blk", func(f *fakeStorage) any { return f.deleted })}},
		{name: "volume delete in use", method: "DELETE", path: data, status: 409, errHas: "instances/c1"},
		{name: "volume delete image in use", method: "DELETE", path: "/1.0/storage-pools/default/volumes/image/abc123", status: 409, errHas: "images/abc123"},
		{name: "volume delete instance's", method: "DELETE", path: "/1.0/storage-pools/default/volumes/container/c1", status: 400, errHas: "delete the instance"},
		{name: "volume delete VM's", method: "DELETE", path: "/1.0/storage-pools/default/volumes/virtual-machine/v1", status: 400, errHas: "delete the instance"},
		{name: "volume delete missing", method: "DELETE", path: "/1.0/storage-pools/default/volumes/custom/ghost", status: 404},
		{name: "volume delete bad type", method: "DELETE", path: "/1.0/storage-pools/default/volumes/bogus/blk", status: 400},

		// State and snapshots.
		{name: "volume state", method: "GET", path: data + "/state", status: 200, checks: []check{metadata(`{"usage":{"used":4096,"total":1073741824}}`)}},
		{name: "volume state unknown", method: "GET", path: blk + "/state", status: 200, checks: []check{metadata(`{"usage":{"total":0}}`)}},
		{name: "volume state instance's", method: "GET", path: "/1.0/storage-pools/default/volumes/container/c1/state", status: 200, checks: []check{
			metadata(`{"usage":{"used":8192,"total":0}}`)}},
		{name: "volume state image's", method: "GET", path: "/1.0/storage-pools/default/volumes/image/abc123/state", status: 400, errHas: "no state"},
		{name: "volume state missing", method: "GET", path: "/1.0/storage-pools/default/volumes/custom/ghost/state", status: 404},
		{name: "volume state bad type", method: "GET", path: "/1.0/storage-pools/default/volumes/bogus/x/state", status: 400},
		{name: "volume state is read-only", method: "PUT", path: data + "/state", body: `{}`, status: 501},
		{name: "volume snapshots", method: "GET", path: data + "/snapshots?recursion=1", status: 200, checks: []check{metadata(`[]`)}},
		{name: "volume snapshots of missing", method: "GET", path: "/1.0/storage-pools/default/volumes/custom/ghost/snapshots", status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeStorage()
			srv.Storage = f
			header := maps.Clone(tt.header)
			if header == nil {
				header = map[string]string{}
			}
			switch tt.ifMatch {
			case "":
			case fresh:
				resp, _ := call(t, ts, "GET", tt.path, "", nil)
				if header["If-Match"] = resp.Header.Get("ETag"); header["If-Match"] == "" {
					t.Fatalf("no ETag on GET %s", tt.path)
				}
			default:
				header["If-Match"] = tt.ifMatch
			}
			resp, env := call(t, ts, tt.method, tt.path, tt.body, header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d (%+v)", resp.StatusCode, tt.status, env)
			}
			if tt.status >= 400 {
				if env.Type != api.ErrorResponse || env.ErrorCode != tt.status || !strings.Contains(env.Error, tt.errHas) {
					t.Fatalf("error envelope %+v, want code %d containing %q", env, tt.status, tt.errHas)
				}
			} else if env.Type != api.SyncResponse {
				t.Fatalf("envelope %+v", env)
			}
			for _, c := range tt.checks {
				c(t, f, resp, env)
			}
		})
	}
}

// TestStorageETags follows ETags through changes: a change makes the ETag
// read before it stale, for pools and volumes alike.
func TestStorageETags(t *testing.T) {
	ts, srv := newServer(t, &fakeDriver{running: map[string]int{}})
	srv.Storage = newFakeStorage()
	tests := []struct {
		path, method, body string
	}{
		{"/1.0/storage-pools/spare", "PUT", `{"config":{"size":"6GiB"}}`},
		{"/1.0/storage-pools/spare", "PATCH", `{"description":"changed"}`},
		{"/1.0/storage-pools/default/volumes/custom/data", "PUT", `{"config":{"size":"2GiB"}}`},
		{"/1.0/storage-pools/default/volumes/custom/data", "PATCH", `{"description":"changed"}`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			before, _ := call(t, ts, "GET", tt.path, "", nil)
			old := before.Header.Get("ETag")
			if resp, env := call(t, ts, tt.method, tt.path, tt.body, map[string]string{"If-Match": old}); resp.StatusCode != 200 {
				t.Fatalf("with the current ETag: %d %+v", resp.StatusCode, env)
			}
			after, _ := call(t, ts, "GET", tt.path, "", nil)
			if after.Header.Get("ETag") == old {
				t.Fatalf("ETag %s unchanged by the change", old)
			}
			if resp, _ := call(t, ts, tt.method, tt.path, tt.body, map[string]string{"If-Match": old}); resp.StatusCode != 412 {
				t.Fatalf("with the old ETag: %d, want 412", resp.StatusCode)
			}
			if resp, _ := call(t, ts, tt.method, tt.path, tt.body, nil); resp.StatusCode != 200 {
				t.Fatalf("without If-Match: %d", resp.StatusCode)
			}
		})
	}
}

// TestNoStorageManager checks the answers of a daemon without a storage
// manager: no pools, and no storage extensions for lxc to rely on.
func TestNoStorageManager(t *testing.T) {
	ts, srv := newServer(t, &fakeDriver{running: map[string]int{}})
	srv.Info = func() api.Server {
		return api.Server{ServerUntrusted: api.ServerUntrusted{APIExtensions: api.Extensions}}
	}
	tests := []struct {
		name, method, path string
		status             int
		errHas             string
	}{
		{"list", "GET", "/1.0/storage-pools?recursion=1", 200, ""},
		{"get", "GET", "/1.0/storage-pools/default", 404, `"default"`},
		{"volumes", "GET", "/1.0/storage-pools/default/volumes", 404, `"default"`},
		{"volume", "GET", "/1.0/storage-pools/default/volumes/custom/v1", 404, `"default"`},
		{"create", "POST", "/1.0/storage-pools", 501, "storage pools"},
		{"delete", "DELETE", "/1.0/storage-pools/x", 501, "storage pools"},
		{"volume create", "POST", "/1.0/storage-pools/x/volumes/custom", 501, "storage pools"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, env := call(t, ts, tt.method, tt.path, `{}`, nil)
			if resp.StatusCode != tt.status || !strings.Contains(env.Error, tt.errHas) {
				t.Fatalf("%d %+v, want %d containing %q", resp.StatusCode, env, tt.status, tt.errHas)
			}
			if tt.status == 200 && string(env.Metadata) != "[]" {
				t.Errorf("metadata %s", env.Metadata)
			}
		})
	}
	for _, withManager := range []bool{false, true} {
		srv.Storage = nil
		if withManager {
			srv.Storage = newFakeStorage()
		}
		_, env := call(t, ts, "GET", "/1.0", "", nil)
		var info api.Server
		_ = json.Unmarshal(env.Metadata, &info)
		for _, ext := range api.StorageExtensions {
			if got := slices.Contains(info.APIExtensions, ext); got != withManager {
				t.Errorf("manager %v: extension %s listed %v", withManager, ext, got)
			}
		}
		// Without a network manager either, neither group is listed;
		// the rest stays.
		if !slices.Contains(info.APIExtensions, "instances") || slices.Contains(info.APIExtensions, "network") {
			t.Errorf("manager %v: extensions %v", withManager, info.APIExtensions)
		}
	}
}

// TestStorageSDK drives the Go SDK's storage calls through the edge over a
// unix socket.
func TestStorageSDK(t *testing.T) {
	_, srv := newServer(t, &fakeDriver{running: map[string]int{}})
	srv.Storage = newFakeStorage()
	dir, err := os.MkdirTemp("", "hsto") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	c, err := client.Connect(filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx := context.Background()

	steps := []struct {
		name string
		do   func() error
		want func(error) bool // nil: success
	}{
		{"names", func() error {
			names, err := c.GetStoragePoolNames(ctx)
			if err == nil && strings.Join(names, ",") != "default,spare" {
				t.Errorf("names %v", names)
			}
			return err
		}, nil},
		{"list", func() error {
			pools, err := c.GetStoragePools(ctx)
			if err == nil && (len(pools) != 2 || pools[1].Driver != "btrfs") {
				t.Errorf("pools %+v", pools)
			}
			return err
		}, nil},
		{"create", func() error {
			return c.CreateStoragePool(ctx, api.StoragePoolsPost{Name: "p1", Driver: "dir"})
		}, nil},
		{"create again", func() error { return c.CreateStoragePool(ctx, api.StoragePoolsPost{Name: "p1", Driver: "dir"}) }, client.IsConflict},
		{"update with ETag", func() error {
			p, etag, err := c.GetStoragePool(ctx, "p1")
			if err != nil {
				return err
			}
			p.Description = "first"
			return c.UpdateStoragePool(ctx, "p1", p.StoragePoolPut, etag)
		}, nil},
		{"update with stale ETag", func() error { return c.UpdateStoragePool(ctx, "p1", api.StoragePoolPut{}, "stale") }, client.IsPreconditionFailed},
		{"patch", func() error {
			return c.PatchStoragePool(ctx, "p1", map[string]any{"config": map[string]string{"rsync.bwlimit": "1"}}, "")
		}, nil},
		{"get patched", func() error {
			p, _, err := c.GetStoragePool(ctx, "p1")
			if err == nil && (p.Description != "first" || p.Config["rsync.bwlimit"] != "1") {
				t.Errorf("p1 %+v", p)
			}
			return err
		}, nil},
		{"resources", func() error {
			res, err := c.GetStoragePoolResources(ctx, "default")
			if err == nil && (res.Space.Total != 10<<30 || res.Inodes.Used != 1000) {
				t.Errorf("resources %+v", res)
			}
			return err
		}, nil},
		{"volume create", func() error {
			return c.CreateStoragePoolVolume(ctx, "p1", api.StorageVolumesPost{Name: "v1", ContentType: "block",
				StorageVolumePut: api.StorageVolumePut{Config: map[string]string{"size": "1GiB"}}})
		}, nil},
		{"volume update", func() error {
			v, etag, err := c.GetStoragePoolVolume(ctx, "p1", "custom", "v1")
			if err != nil {
				return err
			}
			v.Config["size"] = "2GiB"
			return c.UpdateStoragePoolVolume(ctx, "p1", "custom", "v1", v.StorageVolumePut, etag)
		}, nil},
		{"volume patch", func() error {
			return c.PatchStoragePoolVolume(ctx, "p1", "custom", "v1", map[string]any{"description": "blocks"}, "")
		}, nil},
		{"volume rename", func() error { return c.RenameStoragePoolVolume(ctx, "p1", "custom", "v1", "v2") }, nil},
		{"volumes", func() error {
			vols, err := c.GetStoragePoolVolumes(ctx, "p1")
			if err == nil && (len(vols) != 1 || vols[0].Name != "v2" || vols[0].ContentType != "block" ||
				vols[0].Config["size"] != "2GiB" || vols[0].Description != "blocks") {
				t.Errorf("volumes %+v", vols)
			}
			return err
		}, nil},
		{"volume state", func() error {
			st, err := c.GetStoragePoolVolumeState(ctx, "default", "custom", "data")
			if err == nil && (st.Usage == nil || st.Usage.Used != 4096) {
				t.Errorf("state %+v", st)
			}
			return err
		}, nil},
		{"volume delete in use", func() error { return c.DeleteStoragePoolVolume(ctx, "default", "custom", "data") }, client.IsConflict},
		{"volume delete", func() error { return c.DeleteStoragePoolVolume(ctx, "p1", "custom", "v2") }, nil},
		{"volume get deleted", func() error { _, _, err := c.GetStoragePoolVolume(ctx, "p1", "custom", "v2"); return err }, client.IsNotFound},
		{"delete in use", func() error { return c.DeleteStoragePool(ctx, "default") }, client.IsConflict},
		{"delete", func() error { return c.DeleteStoragePool(ctx, "p1") }, nil},
		{"get deleted", func() error { _, _, err := c.GetStoragePool(ctx, "p1"); return err }, client.IsNotFound},
	}
	for _, s := range steps {
		err := s.do()
		switch {
		case s.want == nil && err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case s.want != nil && !s.want(err):
			t.Fatalf("%s: error %v, not the one expected", s.name, err)
		}
	}
}

// Volume snapshots: in memory, with the manager's errors.

func (f *fakeStorage) snap(pool, typ, name, snap string) (int, error) {
	if _, err := f.vol(pool, typ, name); err != nil {
		return 0, err
	}
	for i, sn := range f.snaps[pool+"/"+typ+"/"+name] {
		if sn.Name == snap {
			return i, nil
		}
	}
	return 0, errdefs.NotFound("snapshot %q of %s not found", snap, name)
}

func (f *fakeStorage) VolumeSnapshots(_ context.Context, pool, typ, name string) ([]storage.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.vol(pool, typ, name); err != nil {
		return nil, err
	}
	return slices.Clone(f.snaps[pool+"/"+typ+"/"+name]), nil
}

func (f *fakeStorage) VolumeSnapshot(_ context.Context, pool, typ, name, snap string) (storage.Snapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.snap(pool, typ, name, snap)
	if err != nil {
		return storage.Snapshot{}, err
	}
	return f.snaps[pool+"/"+typ+"/"+name][i], nil
}

func (f *fakeStorage) CreateVolumeSnapshot(_ context.Context, pool, typ, name, snap string, put storage.SnapshotPut) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.snap(pool, typ, name, snap); err == nil {
		return errdefs.Conflict("snapshot %q of %s already exists", snap, name)
	} else if !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	if f.snaps == nil {
		f.snaps = map[string][]storage.Snapshot{}
	}
	k := pool + "/" + typ + "/" + name
	f.snaps[k] = append(f.snaps[k], storage.Snapshot{Name: snap, Description: put.Description, ExpiresAt: put.ExpiresAt,
		Config: maps.Clone(f.vols[k].Config), ContentType: f.vols[k].ContentType, CreatedAt: volCreated})
	return nil
}

func (f *fakeStorage) UpdateVolumeSnapshot(_ context.Context, pool, typ, name, snap string, put storage.SnapshotPut) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.snap(pool, typ, name, snap)
	if err != nil {
		return err
	}
	sn := &f.snaps[pool+"/"+typ+"/"+name][i]
	sn.Description, sn.ExpiresAt = put.Description, put.ExpiresAt
	return nil
}

func (f *fakeStorage) RenameVolumeSnapshot(_ context.Context, pool, typ, name, snap, newName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.snap(pool, typ, name, snap)
	if err != nil {
		return err
	}
	f.snaps[pool+"/"+typ+"/"+name][i].Name = newName
	return nil
}

func (f *fakeStorage) DeleteVolumeSnapshot(_ context.Context, pool, typ, name, snap string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, err := f.snap(pool, typ, name, snap)
	if err != nil {
		return err
	}
	k := pool + "/" + typ + "/" + name
	f.snaps[k] = slices.Delete(f.snaps[k], i, i+1)
	return nil
}

func (f *fakeStorage) RestoreVolume(_ context.Context, pool, typ, name, snap string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.snap(pool, typ, name, snap); err != nil {
		return err
	}
	f.restored = pool + "/" + typ + "/" + name + "@" + snap
	return nil
}
