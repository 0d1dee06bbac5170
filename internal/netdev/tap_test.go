package netdev

import (
	"errors"
	"slices"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// TestCreateTap: a persistent tap on the bridge with the MTU, up; a second
// call keeps it; a call without bridge takes it off; a name held by
// another kind of link is a conflict; DeleteLink removes it.
func TestCreateTap(t *testing.T) {
	e := newEnv(t)
	e.bridge()
	tap := func() Interface {
		t.Helper()
		ifs, err := e.host.Interfaces()
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range ifs {
			if i.Name == "tapvm1" {
				return i
			}
		}
		t.Fatal("no tap")
		return Interface{}
	}
	for range 2 {
		if err := e.host.CreateTap("tapvm1", "hb0", 1450); err != nil {
			t.Fatal(err)
		}
	}
	first := tap()
	if first.Kind != "tuntap" || first.Type != "unknown" || first.Master != "hb0" || first.MTU != 1450 || !first.Up {
		t.Fatalf("tap %+v, want a tuntap on hb0, MTU 1450, up", first)
	}
	if err := e.host.CreateTap("tapvm1", "", 0); err != nil {
		t.Fatal(err)
	}
	if again := tap(); again.Index != first.Index || again.Master != "" || again.MTU != 1450 {
		t.Fatalf("tap %+v, want the same tap (index %d) off the bridge", again, first.Index)
	}

	if err := e.host.CreateTap("hb0", "", 0); !errors.Is(err, errdefs.ErrConflict) {
		t.Errorf("tap over a bridge: %v, want a conflict", err)
	}
	if err := e.host.CreateTap("tapvm2", "nobr", 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("tap on a missing bridge: %v, want not found", err)
	}
	if err := e.host.CreateTap("tap-name-too-long", "", 0); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("long name: %v, want invalid", err)
	}
	if err := e.host.CreateTap("tapvm2", "", 70000); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("MTU 70000: %v, want invalid", err)
	}
	for range 2 {
		if err := e.host.DeleteLink("tapvm1"); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := e.links(), []string{"hb0", "lo"}; !slices.Equal(got, want) {
		t.Errorf("links %v, want %v", got, want)
	}
}
