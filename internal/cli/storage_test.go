package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
)

var (
	poolDefault = api.StoragePool{Name: "default", Driver: "dir", Status: "Created", Locations: []string{"none"},
		StoragePoolPut: api.StoragePoolPut{Description: "the default", Config: map[string]string{"source": "/var/lib/hangar/storage-pools/default"}},
		UsedBy:         []string{"/1.0/instances/c1", "/1.0/instances/c2", "/1.0/profiles/default", "/1.0/storage-pools/default/volumes/custom/data"}}
	poolFast = api.StoragePool{Name: "fast", Driver: "btrfs", Status: "Created", Locations: []string{"none"},
		StoragePoolPut: api.StoragePoolPut{Config: map[string]string{"size": "20GiB"}}}
	poolRes = api.StoragePoolResources{Space: api.StoragePoolSpace{Used: 1 << 30, Total: 10 << 30},
		Inodes: api.StoragePoolInodes{Used: 1000, Total: 655360}}
	volData = api.StorageVolume{Name: "data", Type: "custom", ContentType: "filesystem", Location: "none", Project: "default",
		StorageVolumePut: api.StorageVolumePut{Description: "shared", Config: map[string]string{"size": "1GiB"}},
		UsedBy:           []string{"/1.0/instances/c1"}, CreatedAt: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
	volBlk   = api.StorageVolume{Name: "blk", Type: "custom", ContentType: "block", Location: "none", Project: "default"}
	volC1    = api.StorageVolume{Name: "c1", Type: "container", ContentType: "filesystem", UsedBy: []string{"/1.0/instances/c1"}}
	volImage = api.StorageVolume{Name: "abc123", Type: "image", UsedBy: []string{"/1.0/images/abc123"}}
	volState = api.StorageVolumeState{Usage: &api.StorageVolumeStateUsage{Used: 4096, Total: 1 << 30}}

	instWithDisk = api.Instance{Name: "c1", Status: "Running", StatusCode: api.Running, InstancePut: api.InstancePut{
		Profiles: []string{"default"},
		Devices: map[string]map[string]string{
			"data":  {"type": "disk", "pool": "default", "source": "data", "path": "/srv/data"},
			"data2": {"type": "disk", "pool": "fast", "source": "data", "path": "/srv/fast"},
			"eth1":  {"type": "nic", "network": "hangarbr0"},
		}}}
)

// TestStorageCommands runs every storage command against a fake daemon:
// its output, the requests it sends in order, and the body and If-Match
// of the change it makes.
func TestStorageCommands(t *testing.T) {
	tests := []struct {
		name        string
		args        []string
		stdin       string
		wantCode    int
		wantOut     string
		wantErr     string
		wantCalls   []string
		wantBody    string // of the last change (a request other than GET)
		wantIfMatch string // of the last change
	}{
		// Pools.
		{
			name: "list", args: []string{"storage", "list"},
			wantOut: "" +
				"+---------+--------+---------------------------------------+-------------+---------+---------+\n" +
				"|  NAME   | DRIVER |                SOURCE                 | DESCRIPTION | USED BY |  STATE  |\n" +
				"+---------+--------+---------------------------------------+-------------+---------+---------+\n" +
				"| default | dir    | /var/lib/hangar/storage-pools/default | the default | 4       | CREATED |\n" +
				"+---------+--------+---------------------------------------+-------------+---------+---------+\n" +
				"| fast    | btrfs  |                                       |             | 0       | CREATED |\n" +
				"+---------+--------+---------------------------------------+-------------+---------+---------+\n",
			wantCalls: []string{"GET /1.0/storage-pools?recursion=1"},
		},
		{
			name: "list csv", args: []string{"storage", "ls", "--format", "csv"},
			wantOut:   "default,dir,/var/lib/hangar/storage-pools/default,the default,4,CREATED\nfast,btrfs,,,0,CREATED\n",
			wantCalls: []string{"GET /1.0/storage-pools?recursion=1"},
		},
		{
			name: "list takes no argument", args: []string{"storage", "list", "x"}, wantCode: 1,
			wantErr: "Error: wrong number of arguments: expected 0, got 1\nUsage: hangar storage list [flags]\n",
		},
		{
			name: "show", args: []string{"storage", "show", "fast"},
			wantOut:   "config:\n  size: 20GiB\ndescription: \"\"\nname: fast\ndriver: btrfs\nused_by: []\nstatus: Created\nlocations:\n  - none\n",
			wantCalls: []string{"GET /1.0/storage-pools/fast"},
		},
		{
			name: "show missing", args: []string{"storage", "show", "ghost"}, wantCode: 1,
			wantErr:   "Error: not found: GET /1.0/storage-pools/ghost\n",
			wantCalls: []string{"GET /1.0/storage-pools/ghost"},
		},
		{
			name: "create", args: []string{"storage", "create", "p1", "btrfs", "size=5GiB", "--description", "scratch"},
			wantOut:   "Storage pool p1 created\n",
			wantCalls: []string{"POST /1.0/storage-pools"},
			wantBody:  `{"config":{"size":"5GiB"},"description":"scratch","name":"p1","driver":"btrfs"}`,
		},
		{
			name: "create from stdin", args: []string{"storage", "create", "p1", "dir", "source=/srv/p1"},
			stdin:     "description: from yaml\nconfig:\n  rsync.bwlimit: 10MiB\n",
			wantOut:   "Storage pool p1 created\n",
			wantCalls: []string{"POST /1.0/storage-pools"},
			wantBody:  `{"config":{"rsync.bwlimit":"10MiB","source":"/srv/p1"},"description":"from yaml","name":"p1","driver":"dir"}`,
		},
		{
			name: "create needs a driver", args: []string{"storage", "create", "p1"}, wantCode: 1,
			wantErr: "Error: missing arguments: expected at least 2, got 1\nUsage: hangar storage create POOL DRIVER [KEY=VALUE...] [flags]\n",
		},
		{
			name: "create bad setting", args: []string{"storage", "create", "p1", "dir", "size"}, wantCode: 1,
			wantErr: "Error: invalid setting \"size\": expected key=value\nUsage: hangar storage create POOL DRIVER [KEY=VALUE...] [flags]\n",
		},
		{
			name: "create refused", args: []string{"storage", "create", "p1", "lvm"}, wantCode: 1,
			wantErr:   "Error: storage driver lvm needs device-mapper, which this kernel lacks\n",
			wantCalls: []string{"POST /1.0/storage-pools"},
			wantBody:  `{"config":null,"description":"","name":"p1","driver":"lvm"}`,
		},
		{
			name: "set", args: []string{"storage", "set", "fast", "size=40GiB", "user.x=1"},
			wantCalls:   []string{"GET /1.0/storage-pools/fast", "PUT /1.0/storage-pools/fast"},
			wantBody:    `{"config":{"size":"40GiB","user.x":"1"},"description":""}`,
			wantIfMatch: `"fast-etag"`,
		},
		{
			name: "set key value", args: []string{"storage", "set", "fast", "size", "40GiB"},
			wantCalls:   []string{"GET /1.0/storage-pools/fast", "PUT /1.0/storage-pools/fast"},
			wantBody:    `{"config":{"size":"40GiB"},"description":""}`,
			wantIfMatch: `"fast-etag"`,
		},
		{
			name: "unset", args: []string{"storage", "unset", "fast", "size"},
			wantCalls:   []string{"GET /1.0/storage-pools/fast", "PUT /1.0/storage-pools/fast"},
			wantBody:    `{"config":{},"description":""}`,
			wantIfMatch: `"fast-etag"`,
		},
		{
			name: "unset missing key", args: []string{"storage", "unset", "fast", "source"}, wantCode: 1,
			wantErr:   "Error: can't unset key 'source', it's not currently set\n",
			wantCalls: []string{"GET /1.0/storage-pools/fast"},
		},
		{
			name: "get", args: []string{"storage", "get", "default", "source"}, wantOut: "/var/lib/hangar/storage-pools/default\n",
			wantCalls: []string{"GET /1.0/storage-pools/default"},
		},
		{
			name: "edit from stdin", args: []string{"storage", "edit", "fast"},
			stdin:       "description: new\nconfig:\n  size: 30GiB\ndriver: ignored\n",
			wantCalls:   []string{"GET /1.0/storage-pools/fast", "PUT /1.0/storage-pools/fast"},
			wantBody:    `{"config":{"size":"30GiB"},"description":"new"}`,
			wantIfMatch: `"fast-etag"`,
		},
		{
			name: "delete", args: []string{"storage", "delete", "fast"}, wantOut: "Storage pool fast deleted\n",
			wantCalls: []string{"DELETE /1.0/storage-pools/fast"},
		},
		{
			name: "delete in use", args: []string{"storage", "rm", "default"}, wantCode: 1,
			wantErr:   "Error: storage pool \"default\" is in use by instances/c1, profiles/default\n",
			wantCalls: []string{"DELETE /1.0/storage-pools/default"},
		},
		{
			name: "info", args: []string{"storage", "info", "default"},
			wantOut: "info:\n  description: the default\n  driver: dir\n  inodes used: \"1000\"\n  name: default\n" +
				"  space used: 1.00GiB\n  total inodes: \"655360\"\n  total space: 10.00GiB\n" +
				"used by:\n  instances:\n    - c1\n    - c2\n  profiles:\n    - default\n  volumes:\n    - data\n",
			wantCalls: []string{"GET /1.0/storage-pools/default", "GET /1.0/storage-pools/default/resources"},
		},
		{
			name: "info in bytes", args: []string{"storage", "info", "fast", "--bytes"},
			wantOut: "info:\n  description: \"\"\n  driver: btrfs\n  inodes used: \"1000\"\n  name: fast\n" +
				"  space used: \"1073741824\"\n  total inodes: \"655360\"\n  total space: \"10737418240\"\nused by: {}\n",
			wantCalls: []string{"GET /1.0/storage-pools/fast", "GET /1.0/storage-pools/fast/resources"},
		},

		// Volumes.
		{
			name: "volume list", args: []string{"storage", "volume", "list", "default"},
			wantOut: "" +
				"+-----------+--------+-------------+--------------+---------+\n" +
				"|   TYPE    |  NAME  | DESCRIPTION | CONTENT-TYPE | USED BY |\n" +
				"+-----------+--------+-------------+--------------+---------+\n" +
				"| container | c1     |             | filesystem   | 1       |\n" +
				"+-----------+--------+-------------+--------------+---------+\n" +
				"| custom    | blk    |             | block        | 0       |\n" +
				"+-----------+--------+-------------+--------------+---------+\n" +
				"| custom    | data   | shared      | filesystem   | 1       |\n" +
				"+-----------+--------+-------------+--------------+---------+\n" +
				"| image     | abc123 |             | filesystem   | 1       |\n" +
				"+-----------+--------+-------------+--------------+---------+\n",
			wantCalls: []string{"GET /1.0/storage-pools/default/volumes?recursion=1"},
		},
		{
			name: "volume list needs a pool", args: []string{"storage", "volume", "ls"}, wantCode: 1,
			wantErr: "Error: wrong number of arguments: expected 1, got 0\nUsage: hangar storage volume list POOL [flags]\n",
		},
		{
			name: "volume show", args: []string{"storage", "volume", "show", "default", "custom/data"},
			wantOut: "config:\n  size: 1GiB\ndescription: shared\nname: data\ntype: custom\nused_by:\n  - /1.0/instances/c1\n" +
				"location: none\ncontent_type: filesystem\nproject: default\ncreated_at: 2024-05-01T12:00:00Z\n",
			wantCalls: []string{"GET /1.0/storage-pools/default/volumes/custom/data"},
		},
		{
			name: "volume show an instance's", args: []string{"storage", "volume", "show", "default", "container/c1"},
			wantOut: "config: {}\ndescription: \"\"\nname: c1\ntype: container\nused_by:\n  - /1.0/instances/c1\n" +
				"location: \"\"\ncontent_type: filesystem\nproject: \"\"\ncreated_at: 0001-01-01T00:00:00Z\n",
			wantCalls: []string{"GET /1.0/storage-pools/default/volumes/container/c1"},
		},
		{
			name: "volume create", args: []string{"storage", "volume", "create", "default", "v1", "size=1GiB"},
			wantOut:   "Storage volume v1 created\n",
			wantCalls: []string{"POST /1.0/storage-pools/default/volumes/custom"},
			wantBody:  `{"config":{"size":"1GiB"},"description":"","name":"v1","type":"custom","source":{"name":"","type":"","pool":"","certificate":"","volume_only":false,"refresh":false},"content_type":"filesystem"}`,
		},
		{
			name: "volume create block", args: []string{"storage", "volume", "create", "fast", "custom/disk1", "--type=block", "--description", "d"},
			wantOut:   "Storage volume custom/disk1 created\n",
			wantCalls: []string{"POST /1.0/storage-pools/fast/volumes/custom"},
			wantBody:  `{"config":null,"description":"d","name":"disk1","type":"custom","source":{"name":"","type":"","pool":"","certificate":"","volume_only":false,"refresh":false},"content_type":"block"}`,
		},
		{
			name: "volume create bad content type", args: []string{"storage", "volume", "create", "default", "v1", "--type", "tape"}, wantCode: 1,
			wantErr: "Error: invalid --type \"tape\": filesystem or block\nUsage: hangar storage volume create POOL VOLUME [KEY=VALUE...] [flags]\n",
		},
		{
			name: "volume create iso points at import", args: []string{"storage", "volume", "create", "default", "v1", "--type", "iso"}, wantCode: 1,
			wantErr: "Error: --type iso: an ISO volume is imported from its image: hangar storage volume import POOL FILE NAME --type=iso\nUsage: hangar storage volume create POOL VOLUME [KEY=VALUE...] [flags]\n",
		},
		{
			name: "volume import backup refused", args: []string{"storage", "volume", "import", "default", "x.tar.gz", "v1"}, wantCode: 1,
			wantErr: "Error: --type=backup: hangard does not import storage volume backups; --type=iso imports an ISO image\nUsage: hangar storage volume import POOL FILE NAME [flags]\n",
		},
		{
			name: "volume import iso without type", args: []string{"storage", "volume", "import", "default", "x.iso", "v1"}, wantCode: 1,
			wantErr: "Error: x.iso: an ISO image is imported with --type=iso\nUsage: hangar storage volume import POOL FILE NAME [flags]\n",
		},
		{
			name: "volume create image refused", args: []string{"storage", "volume", "create", "default", "image/x"}, wantCode: 1,
			wantErr:   "Error: not found: POST /1.0/storage-pools/default/volumes/image\n",
			wantCalls: []string{"POST /1.0/storage-pools/default/volumes/image"},
			wantBody:  `{"config":null,"description":"","name":"x","type":"image","source":{"name":"","type":"","pool":"","certificate":"","volume_only":false,"refresh":false},"content_type":"filesystem"}`,
		},
		{
			name: "volume get", args: []string{"storage", "volume", "get", "default", "data", "size"}, wantOut: "1GiB\n",
			wantCalls: []string{"GET /1.0/storage-pools/default/volumes/custom/data"},
		},
		{
			name: "volume get unset key", args: []string{"storage", "volume", "get", "default", "data", "security.shifted"}, wantOut: "\n",
			wantCalls: []string{"GET /1.0/storage-pools/default/volumes/custom/data"},
		},
		{
			name: "volume set", args: []string{"storage", "volume", "set", "default", "data", "security.shifted=true", "size="},
			wantCalls:   []string{"GET /1.0/storage-pools/default/volumes/custom/data", "PUT /1.0/storage-pools/default/volumes/custom/data"},
			wantBody:    `{"config":{"security.shifted":"true"},"description":"shared"}`,
			wantIfMatch: `"data-etag"`,
		},
		{
			name: "volume set needs a key", args: []string{"storage", "volume", "set", "default", "data"}, wantCode: 1,
			wantErr: "Error: missing arguments: expected at least 3, got 2\nUsage: hangar storage volume set POOL [TYPE/]VOLUME KEY=VALUE...|KEY VALUE [flags]\n",
		},
		{
			name: "volume set read-only key", args: []string{"storage", "volume", "set", "default", "data", "volatile.idmap="}, wantCode: 1,
			wantErr: "Error: config key \"volatile.idmap\" is read-only\n",
		},
		{
			name: "volume unset", args: []string{"storage", "volume", "unset", "default", "custom/data", "size"},
			wantCalls:   []string{"GET /1.0/storage-pools/default/volumes/custom/data", "PUT /1.0/storage-pools/default/volumes/custom/data"},
			wantBody:    `{"config":{},"description":"shared"}`,
			wantIfMatch: `"data-etag"`,
		},
		{
			name: "volume unset missing key", args: []string{"storage", "volume", "unset", "default", "data", "x"}, wantCode: 1,
			wantErr:   "Error: can't unset key 'x', it's not currently set\n",
			wantCalls: []string{"GET /1.0/storage-pools/default/volumes/custom/data"},
		},
		{
			name: "volume resize", args: []string{"storage", "volume", "resize", "default", "data", "2GiB"},
			wantCalls:   []string{"GET /1.0/storage-pools/default/volumes/custom/data", "PUT /1.0/storage-pools/default/volumes/custom/data"},
			wantBody:    `{"config":{"size":"2GiB"},"description":"shared"}`,
			wantIfMatch: `"data-etag"`,
		},
		{
			name: "volume resize an instance's", args: []string{"storage", "volume", "resize", "default", "container/c1", "3GiB"},
			wantCalls:   []string{"GET /1.0/storage-pools/default/volumes/container/c1", "PUT /1.0/storage-pools/default/volumes/container/c1"},
			wantBody:    `{"config":{"size":"3GiB"},"description":""}`,
			wantIfMatch: `"c1-etag"`,
		},
		{
			name: "volume resize empty size", args: []string{"storage", "volume", "resize", "default", "data", ""}, wantCode: 1,
			wantErr: "Error: empty size\nUsage: hangar storage volume resize POOL [TYPE/]VOLUME SIZE [flags]\n",
		},
		{
			name: "volume edit from stdin", args: []string{"storage", "volume", "edit", "default", "data"},
			stdin:       "description: edited\nconfig:\n  size: 5GiB\nname: ignored\n",
			wantCalls:   []string{"GET /1.0/storage-pools/default/volumes/custom/data", "PUT /1.0/storage-pools/default/volumes/custom/data"},
			wantBody:    `{"config":{"size":"5GiB"},"description":"edited"}`,
			wantIfMatch: `"data-etag"`,
		},
		{
			name: "volume delete", args: []string{"storage", "volume", "delete", "default", "blk"}, wantOut: "Storage volume blk deleted\n",
			wantCalls: []string{"DELETE /1.0/storage-pools/default/volumes/custom/blk"},
		},
		{
			name: "volume delete several", args: []string{"storage", "volume", "rm", "default", "blk", "data"}, wantCode: 1,
			wantOut:   "Storage volume blk deleted\n",
			wantErr:   "Error: data: storage volume custom/data is in use by instances/c1\n",
			wantCalls: []string{"DELETE /1.0/storage-pools/default/volumes/custom/blk", "DELETE /1.0/storage-pools/default/volumes/custom/data"},
		},
		{
			name: "volume rename", args: []string{"storage", "volume", "rename", "default", "blk", "blk2"}, wantOut: "Storage volume blk renamed to blk2\n",
			wantCalls: []string{"POST /1.0/storage-pools/default/volumes/custom/blk"},
			wantBody:  `{"name":"blk2","migration":false,"target":null,"volume_only":false}`,
		},
		{
			name: "volume info", args: []string{"storage", "volume", "info", "default", "data"},
			wantOut:   "Name: data\nDescription: shared\nType: custom\nContent type: filesystem\nUsage: 4.00KiB\nTotal: 1.00GiB\n",
			wantCalls: []string{"GET /1.0/storage-pools/default/volumes/custom/data", "GET /1.0/storage-pools/default/volumes/custom/data/state"},
		},
		{
			name: "volume info of an image", args: []string{"storage", "volume", "info", "default", "image/abc123"}, wantCode: 1,
			wantErr: "Error: only instance or custom volumes have usage\n",
		},
		{
			name: "volume attach with path", args: []string{"storage", "volume", "attach", "default", "blk", "c1", "/mnt/blk"},
			wantCalls:   []string{"GET /1.0/instances/c1", "PATCH /1.0/instances/c1"},
			wantBody:    `{"devices":{"blk":{"path":"/mnt/blk","pool":"default","source":"blk","type":"disk"}}}`,
			wantIfMatch: `"etag-1"`,
		},
		{
			name: "volume attach with device and path", args: []string{"storage", "volume", "attach", "fast", "custom/v2", "c1", "scratch", "/scratch"},
			wantCalls:   []string{"GET /1.0/instances/c1", "PATCH /1.0/instances/c1"},
			wantBody:    `{"devices":{"scratch":{"path":"/scratch","pool":"fast","source":"v2","type":"disk"}}}`,
			wantIfMatch: `"etag-1"`,
		},
		{
			name: "volume attach block without path", args: []string{"storage", "volume", "attach", "fast", "disk1", "c1"},
			wantCalls:   []string{"GET /1.0/instances/c1", "PATCH /1.0/instances/c1"},
			wantBody:    `{"devices":{"disk1":{"pool":"fast","source":"disk1","type":"disk"}}}`,
			wantIfMatch: `"etag-1"`,
		},
		{
			name: "volume attach over an existing device", args: []string{"storage", "volume", "attach", "default", "data", "c1", "/x"}, wantCode: 1,
			wantErr:   "Error: instance c1 already has a device named data\n",
			wantCalls: []string{"GET /1.0/instances/c1"},
		},
		{
			name: "volume attach an instance's volume", args: []string{"storage", "volume", "attach", "default", "container/c1", "c1", "/x"}, wantCode: 1,
			wantErr: "Error: only \"custom\" volumes can be attached to instances\n",
		},
		{
			name: "volume attach too few arguments", args: []string{"storage", "volume", "attach", "default", "data"}, wantCode: 1,
			wantErr: "Error: missing arguments: expected at least 3, got 2\nUsage: hangar storage volume attach POOL VOLUME INSTANCE [DEVICE] [PATH] [flags]\n",
		},
		{
			name: "volume detach", args: []string{"storage", "volume", "detach", "fast", "data", "c1"},
			wantCalls: []string{"GET /1.0/instances/c1", "PUT /1.0/instances/c1", "GET /1.0/operations/u/wait?timeout=-1"},
			wantBody: `{"architecture":"","config":null,"devices":{"data":{"path":"/srv/data","pool":"default","source":"data","type":"disk"},` +
				`"eth1":{"network":"hangarbr0","type":"nic"}},"ephemeral":false,"profiles":["default"],"stateful":false,"description":""}`,
			wantIfMatch: `"etag-1"`,
		},
		{
			name: "volume detach by device", args: []string{"storage", "volume", "detach", "default", "data", "c1", "data"},
			wantCalls: []string{"GET /1.0/instances/c1", "PUT /1.0/instances/c1", "GET /1.0/operations/u/wait?timeout=-1"},
			wantBody: `{"architecture":"","config":null,"devices":{"data2":{"path":"/srv/fast","pool":"fast","source":"data","type":"disk"},` +
				`"eth1":{"network":"hangarbr0","type":"nic"}},"ephemeral":false,"profiles":["default"],"stateful":false,"description":""}`,
			wantIfMatch: `"etag-1"`,
		},
		{
			name: "volume detach a device of another volume", args: []string{"storage", "volume", "detach", "default", "data", "c1", "data2"}, wantCode: 1,
			wantErr:   "Error: device data2 is not volume data of pool default\n",
			wantCalls: []string{"GET /1.0/instances/c1"},
		},
		{
			name: "volume detach not attached", args: []string{"storage", "volume", "detach", "default", "blk", "c1"}, wantCode: 1,
			wantErr:   "Error: no device of the instance is volume blk of pool default\n",
			wantCalls: []string{"GET /1.0/instances/c1"},
		},
		{
			name: "unknown volume sub-command", args: []string{"storage", "volume", "frob"}, wantCode: 1,
			wantErr: "Error: unknown command \"frob\" for \"hangar storage volume\"\nRun 'hangar storage volume --help' for the list of commands.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHangard(t, map[string]http.HandlerFunc{
				"GET /1.0/storage-pools":                                   fakeOK([]api.StoragePool{poolFast, poolDefault}, ""),
				"POST /1.0/storage-pools":                                  createPoolHandler,
				"GET /1.0/storage-pools/default":                           fakeOK(poolDefault, `"default-etag"`),
				"GET /1.0/storage-pools/fast":                              fakeOK(poolFast, `"fast-etag"`),
				"PUT /1.0/storage-pools/fast":                              fakeOK(nil, ""),
				"DELETE /1.0/storage-pools/fast":                           fakeOK(nil, ""),
				"DELETE /1.0/storage-pools/default":                        fakeFail(http.StatusConflict, `storage pool "default" is in use by instances/c1, profiles/default`),
				"GET /1.0/storage-pools/default/resources":                 fakeOK(poolRes, ""),
				"GET /1.0/storage-pools/fast/resources":                    fakeOK(poolRes, ""),
				"GET /1.0/storage-pools/default/volumes":                   fakeOK([]api.StorageVolume{volImage, volData, volC1, volBlk}, ""),
				"POST /1.0/storage-pools/default/volumes/custom":           fakeOK(nil, ""),
				"POST /1.0/storage-pools/fast/volumes/custom":              fakeOK(nil, ""),
				"GET /1.0/storage-pools/default/volumes/custom/data":       fakeOK(volData, `"data-etag"`),
				"PUT /1.0/storage-pools/default/volumes/custom/data":       fakeOK(nil, ""),
				"GET /1.0/storage-pools/default/volumes/custom/data/state": fakeOK(volState, ""),
				"GET /1.0/storage-pools/default/volumes/container/c1":      fakeOK(volC1, `"c1-etag"`),
				"PUT /1.0/storage-pools/default/volumes/container/c1":      fakeOK(nil, ""),
				"DELETE /1.0/storage-pools/default/volumes/custom/blk":     fakeOK(nil, ""),
				"DELETE /1.0/storage-pools/default/volumes/custom/data":    fakeFail(http.StatusConflict, "storage volume custom/data is in use by instances/c1"),
				"POST /1.0/storage-pools/default/volumes/custom/blk":       fakeOK(nil, ""),
				"GET /1.0/instances/c1":                                    fakeOK(instWithDisk, `"etag-1"`),
				"PATCH /1.0/instances/c1":                                  fakeOK(nil, ""),
				"PUT /1.0/instances/c1":                                    fakeOp("u", nil),
				"GET /1.0/operations/u/wait":                               fakeOpDone("u", api.Success, "", nil),
			})
			code, out, errOut := runCLI(t, f.socket, tt.stdin, tt.args...)
			if code != tt.wantCode || out != tt.wantOut || errOut != tt.wantErr {
				t.Errorf("got code %d\nout %q\nerr %q\nwant %d\nout %q\nerr %q", code, out, errOut, tt.wantCode, tt.wantOut, tt.wantErr)
			}
			if d := cmp.Diff(tt.wantCalls, f.calls()); d != "" {
				t.Fatalf("calls (-want +got):\n%s", d)
			}
			var last fakeRequest
			for _, r := range f.reqs {
				if r.Method != http.MethodGet {
					last = r
				}
			}
			if last.Body != tt.wantBody {
				t.Errorf("body\n got %s\nwant %s", last.Body, tt.wantBody)
			}
			if last.IfMatch != tt.wantIfMatch {
				t.Errorf("If-Match %q, want %q", last.IfMatch, tt.wantIfMatch)
			}
		})
	}
}

// createPoolHandler answers POST /1.0/storage-pools as the daemon would a
// driver this kernel cannot run.
func createPoolHandler(w http.ResponseWriter, r *http.Request) {
	var req api.StoragePoolsPost
	_ = json.NewDecoder(r.Body).Decode(&req)
	if req.Driver == "lvm" {
		fakeErr(w, http.StatusBadRequest, "storage driver lvm needs device-mapper, which this kernel lacks")
		return
	}
	fakeOK(nil, "")(w, r)
}

func TestParseVolume(t *testing.T) {
	tests := []struct{ arg, typ, name string }{
		{"data", "custom", "data"},
		{"custom/data", "custom", "data"},
		{"container/c1", "container", "c1"},
		{"virtual-machine/v1", "virtual-machine", "v1"},
		{"image/abc", "image", "abc"},
		// An unknown prefix is part of the name (which the daemon then
		// refuses), as in lxc.
		{"foo/bar", "custom", "foo/bar"},
		{"custom/", "custom", ""},
	}
	for _, tt := range tests {
		if typ, name := parseVolume(tt.arg); typ != tt.typ || name != tt.name {
			t.Errorf("parseVolume(%q) = %q, %q; want %q, %q", tt.arg, typ, name, tt.typ, tt.name)
		}
	}
}

// TestLaunchOnPool checks launch -s: the pool is checked first, and the
// instance gets a root disk on it, which -d can change.
func TestLaunchOnPool(t *testing.T) {
	const post = `{"architecture":"","config":null,"devices":{"root":%s},"ephemeral":false,"profiles":null,"stateful":false,` +
		`"description":"","name":"c1","source":{"type":"image","alias":"alpine"},"instance_type":"","type":"%s","start":true}`
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantErr   string
		wantCalls []string
		wantBody  string
	}{
		{
			name: "root on a pool", args: []string{"launch", "alpine", "c1", "-s", "fast"},
			wantCalls: []string{"GET /1.0/storage-pools/fast", "POST /1.0/instances", "GET /1.0/operations/op1/wait?timeout=-1"},
			wantBody:  fmt.Sprintf(post, `{"path":"/","pool":"fast","type":"disk"}`, "container"),
		},
		{
			name: "root on a pool with a size", args: []string{"launch", "alpine", "c1", "--storage=fast", "--vm", "-d", "root,size=2GiB"},
			wantCalls: []string{"GET /1.0/storage-pools/fast", "GET /1.0/profiles/default", "POST /1.0/instances", "GET /1.0/operations/op1/wait?timeout=-1"},
			wantBody:  fmt.Sprintf(post, `{"path":"/","pool":"fast","size":"2GiB","type":"disk"}`, "virtual-machine"),
		},
		{
			name: "missing pool", args: []string{"launch", "alpine", "c1", "-s", "ghost"}, wantCode: 1,
			wantErr:   "Error: storage pool \"ghost\" not found\n",
			wantCalls: []string{"GET /1.0/storage-pools/ghost"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeHangard(t, map[string]http.HandlerFunc{
				"GET /1.0/storage-pools/fast":  fakeOK(poolFast, ""),
				"GET /1.0/storage-pools/ghost": fakeFail(http.StatusNotFound, `storage pool "ghost" not found`),
				"GET /1.0/profiles/default": fakeOK(api.Profile{Name: "default", ProfilePut: api.ProfilePut{Devices: map[string]map[string]string{
					"root": {"type": "disk", "path": "/", "pool": "default"}}}}, ""),
				"POST /1.0/instances":          fakeOp("op1", map[string][]string{"instances": {"/1.0/instances/c1"}}),
				"GET /1.0/operations/op1/wait": fakeOpDone("op1", api.Success, "", nil),
			})
			code, _, errOut := runCLI(t, f.socket, "", tt.args...)
			if code != tt.wantCode || errOut != tt.wantErr {
				t.Errorf("code %d err %q; want %d %q", code, errOut, tt.wantCode, tt.wantErr)
			}
			if d := cmp.Diff(tt.wantCalls, f.calls()); d != "" {
				t.Fatalf("calls (-want +got):\n%s", d)
			}
			if tt.wantBody != "" {
				if got := f.request(t, "POST", "/1.0/instances").Body; got != tt.wantBody {
					t.Errorf("body\n got %s\nwant %s", got, tt.wantBody)
				}
			}
		})
	}
}
