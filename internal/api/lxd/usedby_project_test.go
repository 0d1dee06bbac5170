package lxd

import "testing"

// TestUsedByProjectQuery: used_by entries of objects outside the default
// project keep LXD's ?project= query, unescaped, while the path segments
// are escaped.
func TestUsedByProjectQuery(t *testing.T) {
	for _, tt := range []struct {
		in, storage, network string
	}{
		{"instances/c1", "/1.0/instances/c1", "/1.0/instances/c1"},
		{"instances/c1?project=p1", "/1.0/instances/c1?project=p1", "/1.0/instances/c1?project=p1"},
		{"instances/a b?project=p1", "/1.0/instances/a%20b?project=p1", "/1.0/instances/a%20b?project=p1"},
		{"storage-pools/default/volumes/custom/v1?project=p1", "/1.0/storage-pools/default/volumes/custom/v1?project=p1", "/1.0/storage-pools/default%2Fvolumes%2Fcustom%2Fv1?project=p1"},
		{"/1.0/profiles/x?project=p1", "/1.0/profiles/x?project=p1", "/1.0/profiles/x?project=p1"},
	} {
		if got := storageUsedByURL(tt.in); got != tt.storage {
			t.Errorf("storageUsedByURL(%q) = %q, want %q", tt.in, got, tt.storage)
		}
		if got := usedByURL(tt.in); got != tt.network {
			t.Errorf("usedByURL(%q) = %q, want %q", tt.in, got, tt.network)
		}
	}
}
