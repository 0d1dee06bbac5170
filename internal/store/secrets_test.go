package store_test

import (
	"context"
	"testing"
)

// TestInstanceSecrets: values are set by key (others kept), read back,
// refused for an unknown instance or an empty key, and deleted with
// their instance.
func TestInstanceSecrets(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	in := newInstance("c1")
	wantKind(t, s.CreateInstance(ctx, &in), nil, "")
	other := newInstance("c2")
	wantKind(t, s.CreateInstance(ctx, &other), nil, "")

	steps := []struct {
		name string
		id   int64
		set  map[string]string
		kind error
		want map[string]string
	}{
		{"first", in.ID, map[string]string{"A": "a1", "B": "b1"}, nil, map[string]string{"A": "a1", "B": "b1"}},
		{"one replaced, the other kept", in.ID, map[string]string{"A": "a2"}, nil, map[string]string{"A": "a2", "B": "b1"}},
		{"nothing", in.ID, nil, nil, map[string]string{"A": "a2", "B": "b1"}},
		{"unknown instance", 9999, map[string]string{"A": "x"}, errNotFound, map[string]string{"A": "a2", "B": "b1"}},
		{"empty key", in.ID, map[string]string{"": "x"}, errInvalid, map[string]string{"A": "a2", "B": "b1"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			wantKind(t, s.SetInstanceSecrets(ctx, st.id, st.set), st.kind, "")
			got, err := s.InstanceSecrets(ctx, in.ID)
			wantKind(t, err, nil, "")
			diff(t, "secrets", got, st.want)
		})
	}
	wantKind(t, s.SetInstanceSecrets(ctx, other.ID, map[string]string{"A": "other"}), nil, "")
	wantKind(t, s.DeleteInstance(ctx, in.ID), nil, "")
	got, err := s.InstanceSecrets(ctx, in.ID)
	wantKind(t, err, nil, "")
	diff(t, "secrets after delete", got, map[string]string{})
	got, _ = s.InstanceSecrets(ctx, other.ID)
	diff(t, "the other instance's", got, map[string]string{"A": "other"})
}
