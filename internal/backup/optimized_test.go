package backup

import (
	"errors"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

func TestParseOptimizedHeader(t *testing.T) {
	idx := &Index{Snapshots: []string{"s0"}}
	tests := []struct {
		name, yaml string
		ok         bool
		nested     []string
	}{
		{"hangard's", "subvolumes:\n- {path: /, snapshot: s0, readonly: true}\n- {path: /rootfs, snapshot: s0, readonly: true}\n- {path: /}\n- {path: /rootfs}\n", true, []string{"/rootfs"}},
		{"LXD's", "subvolumes:\n- {path: /, snapshot: s0}\n- {path: /}\n", true, nil},
		{"no root for the instance", "subvolumes:\n- {path: /, snapshot: s0}\n- {path: /rootfs}\n", false, nil},
		{"unknown snapshot", "subvolumes:\n- {path: /, snapshot: s0}\n- {path: /}\n- {path: /, snapshot: s9}\n", false, nil},
		{"climbing path", "subvolumes:\n- {path: /, snapshot: s0}\n- {path: /}\n- {path: /../x}\n", false, nil},
		{"relative path", "subvolumes:\n- {path: /, snapshot: s0}\n- {path: /}\n- {path: rootfs}\n", false, nil},
		{"not yaml", "subvolumes: [", false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := ParseOptimizedHeader([]byte(tc.yaml), idx)
			if !tc.ok {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err %v, want invalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := h.Nested(""); len(got) != len(tc.nested) || (len(got) > 0 && got[0] != tc.nested[0]) {
				t.Errorf("nested %q, want %q", got, tc.nested)
			}
		})
	}
}

func TestIDMapEqual(t *testing.T) {
	lxd, err := ParseLXDIDMap(`[{"Isuid":true,"Isgid":false,"Hostid":100000,"Nsid":0,"Maprange":65536},{"Isuid":false,"Isgid":true,"Hostid":100000,"Nsid":0,"Maprange":65536}]`)
	if err != nil {
		t.Fatal(err)
	}
	split := IDMap{{UID: true, GID: true, Host: 100000, Inside: 0, Size: 1000}, {UID: true, GID: true, Host: 101000, Inside: 1000, Size: 64536}}
	tests := []struct {
		name string
		a, b IDMap
		want bool
	}{
		{"same single range", SingleRange(100000, 65536), SingleRange(100000, 65536), true},
		{"LXD's uid and gid entries", lxd, SingleRange(100000, 65536), true},
		{"split but contiguous", split, SingleRange(100000, 65536), true},
		{"other host base", SingleRange(200000, 65536), SingleRange(100000, 65536), false},
		{"other size", SingleRange(100000, 1000), SingleRange(100000, 65536), false},
		{"uids only", IDMap{{UID: true, Host: 100000, Size: 65536}}, SingleRange(100000, 65536), false},
		{"nil and a map", nil, SingleRange(100000, 65536), false},
		{"nil and nil", nil, nil, true},
	}
	for _, tc := range tests {
		if got := tc.a.Equal(tc.b); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		if got := tc.b.Equal(tc.a); got != tc.want {
			t.Errorf("%s (swapped): %v, want %v", tc.name, got, tc.want)
		}
	}
}
