package instance

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/hangar-dev/hangar/internal/driver"
)

const unprivMap = `[{"Isuid":true,"Isgid":false,"Hostid":1000000,"Nsid":0,"Maprange":65536},{"Isuid":false,"Isgid":true,"Hostid":1000000,"Nsid":0,"Maprange":65536}]`

func TestIdmapJSON(t *testing.T) {
	tests := []struct {
		name string
		in   *driver.IDMap
		want string
	}{
		{"privileged", nil, "[]"},
		{"default map", &driver.IDMap{HostID: 1000000, Size: 65536}, unprivMap},
		{"other map", &driver.IDMap{HostID: 200000, Size: 1000}, `[{"Isuid":true,"Isgid":false,"Hostid":200000,"Nsid":0,"Maprange":1000},{"Isuid":false,"Isgid":true,"Hostid":200000,"Nsid":0,"Maprange":1000}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := idmapJSON(tt.in); got != tt.want {
				t.Fatalf("got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// The volatile keys a client reads: set at create, the maps following the
// privileged flag, current and last_state once started, the UUID stable.
func TestVolatileKeys(t *testing.T) {
	s, _, _, _ := newTestService(t)
	ctx := context.Background()
	unstarted := imageReq("c0")
	unstarted.Start = false
	priv := imageReq("p1")
	priv.Config = map[string]string{"security.privileged": "true"}
	for _, req := range []CreateRequest{imageReq("c1"), unstarted, priv} {
		if err := launch(t, s, req); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		want map[string]string // "" means absent
	}{
		{"c1", map[string]string{keyIdmapBase: "1000000", keyIdmapNext: unprivMap, keyIdmapCurrent: unprivMap, keyLastIdmap: unprivMap}},
		{"c0", map[string]string{keyIdmapBase: "1000000", keyIdmapNext: unprivMap, keyIdmapCurrent: "", keyLastIdmap: ""}},
		{"p1", map[string]string{keyIdmapBase: "0", keyIdmapNext: "[]", keyIdmapCurrent: "[]", keyLastIdmap: "[]"}},
	}
	uuids := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Get(ctx, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got.Config[k] != v {
					t.Errorf("%s = %q, want %q", k, got.Config[k], v)
				}
			}
			if _, err := uuid.Parse(got.Config[keyUUID]); err != nil {
				t.Errorf("volatile.uuid %q: %v", got.Config[keyUUID], err)
			}
			if got.Config["image.os"] != "busybox" {
				t.Errorf("image.os = %q: the image's properties are not copied", got.Config["image.os"])
			}
			uuids[tt.name] = got.Config[keyUUID]
		})
	}
	if uuids["c1"] == uuids["c0"] {
		t.Error("two instances share a UUID")
	}
	// Privileged off: the next start uses the shared map; the UUID stays.
	if err := s.Patch(ctx, "p1", Patch{Config: map[string]string{"security.privileged": "false"}}, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := s.Get(ctx, "p1")
	if got.Config[keyIdmapNext] != unprivMap || got.Config[keyIdmapBase] != "1000000" || got.Config[keyIdmapCurrent] != "[]" {
		t.Errorf("after unprivileging: next %s base %s current %s", got.Config[keyIdmapNext], got.Config[keyIdmapBase], got.Config[keyIdmapCurrent])
	}
	if got.Config[keyUUID] != uuids["p1"] {
		t.Errorf("uuid changed from %s to %s", uuids["p1"], got.Config[keyUUID])
	}
	// A client cannot set them.
	if err := s.Patch(ctx, "c1", Patch{Config: map[string]string{keyUUID: uuid.NewString()}}, nil); err == nil {
		t.Error("volatile.uuid was writable")
	}
}

// A record from before volatile.uuid gets one at load, saved at once.
func TestLoadBackfillsUUID(t *testing.T) {
	s, drv, db, _ := newTestService(t)
	if err := launch(t, s, imageReq("old")); err != nil {
		t.Fatal(err)
	}
	rec := db.instances[1]
	delete(rec.Config, keyUUID)
	db.instances[1] = rec
	s2 := New(Config{DB: db, Images: fakeImages{}, Storage: &fakeStorage{}, Drivers: map[Type]driver.Driver{TypeContainer: drv}, Events: &fakeEvents{}, Architecture: "x86_64"})
	if err := s2.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	got, _ := s2.Get(context.Background(), "old")
	if _, err := uuid.Parse(got.Config[keyUUID]); err != nil || db.instances[1].Config[keyUUID] != got.Config[keyUUID] {
		t.Fatalf("uuid %q (stored %q): %v", got.Config[keyUUID], db.instances[1].Config[keyUUID], err)
	}
}
