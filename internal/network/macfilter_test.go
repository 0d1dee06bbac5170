package network

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// filterFirewall records what the manager asks of the firewall: each Apply's
// state, or nil for a Remove. fail makes the next call fail.
type filterFirewall struct {
	calls []*FirewallState
	fail  bool
}

func (f *filterFirewall) Apply(st FirewallState) error {
	if f.fail {
		f.fail = false
		return errors.New("the kernel said no")
	}
	f.calls = append(f.calls, &st)
	return nil
}

func (f *filterFirewall) Remove() error {
	if f.fail {
		f.fail = false
		return errors.New("the kernel said no")
	}
	f.calls = append(f.calls, nil)
	return nil
}

// TestSetMACFilter: the NICs' filters are folded into the firewall state,
// sorted by owner, each change one Apply; setting the same filter again
// applies nothing; bad input and a failed Apply keep the last state; and a
// held firewall is applied once, at Recovered, with what was set meanwhile.
func TestSetMACFilter(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "hangar.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fw := &filterFirewall{}
	m := New(Config{Store: st, Dir: t.TempDir(), Host: newFakeHost(), Firewall: fw, HoldFirewall: true})
	if _, err := m.Start(ctx, false); err != nil {
		t.Fatal(err)
	}
	a := MACFilter{HostLink: "hgr0000000a", MAC: "00:16:3E:00:00:0A"}
	b := MACFilter{HostLink: "tap-b", MAC: "00:16:3e:00:00:0b"}
	wantA := MACFilter{Owner: "nic/h1/eth0", HostLink: a.HostLink, MAC: "00:16:3e:00:00:0a"}
	wantB := MACFilter{Owner: "nic/h2/eth0", HostLink: b.HostLink, MAC: b.MAC}

	steps := []struct {
		name  string
		do    func() error
		kind  error            // the error's kind; nil: none
		calls []*FirewallState // new firewall calls (nil element: Remove)
	}{
		{"held: recorded only", func() error { return m.SetMACFilter(ctx, "nic/h2/eth0", &b) }, nil, nil},
		{"held, another", func() error { return m.SetMACFilter(ctx, "nic/h1/eth0", &a) }, nil, nil},
		{"recovered: one Apply", func() error { return m.Recovered(ctx) }, nil,
			[]*FirewallState{{MACFilters: []MACFilter{wantA, wantB}}}},
		{"the same again", func() error { return m.SetMACFilter(ctx, "nic/h1/eth0", &a) }, nil, nil},
		{"bad MAC", func() error {
			return m.SetMACFilter(ctx, "nic/h3/eth0", &MACFilter{HostLink: "hgr3", MAC: "00:16:3e:00:00"})
		}, errdefs.ErrInvalidArgument, nil},
		{"multicast MAC", func() error {
			return m.SetMACFilter(ctx, "nic/h3/eth0", &MACFilter{HostLink: "hgr3", MAC: "01:00:5e:00:00:01"})
		}, errdefs.ErrInvalidArgument, nil},
		{"bad link", func() error {
			return m.SetMACFilter(ctx, "nic/h3/eth0", &MACFilter{HostLink: "a/b", MAC: "00:16:3e:00:00:03"})
		}, errdefs.ErrInvalidArgument, nil},
		{"failed Apply", func() error {
			fw.fail = true
			return m.SetMACFilter(ctx, "nic/h3/eth0", &MACFilter{HostLink: "hgr3", MAC: "00:16:3e:00:00:03"})
		}, errors.New(""), nil},
		{"removed", func() error { return m.SetMACFilter(ctx, "nic/h2/eth0", nil) }, nil,
			[]*FirewallState{{MACFilters: []MACFilter{wantA}}}},
		{"removed again: nothing to do", func() error { return m.SetMACFilter(ctx, "nic/h2/eth0", nil) }, nil, nil},
		{"the last one: no table", func() error { return m.SetMACFilter(ctx, "nic/h1/eth0", nil) }, nil,
			[]*FirewallState{nil}},
	}
	for _, s := range steps {
		before := len(fw.calls)
		err := s.do()
		switch {
		case s.kind == nil && err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case s.kind != nil && err == nil:
			t.Fatalf("%s: no error", s.name)
		case s.kind != nil && errors.Is(s.kind, errdefs.ErrInvalidArgument) && !errors.Is(err, s.kind):
			t.Fatalf("%s: %v, want a %v", s.name, err, s.kind)
		}
		if diff := cmp.Diff(s.calls, fw.calls[before:], cmpopts.EquateEmpty(), cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
			t.Errorf("%s: firewall calls (-want +got):\n%s", s.name, diff)
		}
	}
}
