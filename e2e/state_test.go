package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
)

// What a running container's answers hold that LXD always sends: its
// loopback with addresses and counters read from its own network
// namespace, the volatile keys with LXD's values, devices present.
func TestContainerStateFidelity(t *testing.T) {
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "busybox", "st1")
	// Traffic on the container's loopback (a refused connection still
	// sends and receives packets), so its counters must move.
	if out, errOut, code := d.hangar("exec", "st1", "--", "nc", "-w", "2", "127.0.0.1", "1"); code == 0 {
		t.Fatalf("nc to a closed port succeeded: %s %s", out, errOut)
	} else {
		t.Logf("nc: %s%s (exit %d)", out, errOut, code)
	}
	c := d.client()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	st, err := c.GetInstanceState(ctx, "st1")
	if err != nil {
		t.Fatal(err)
	}
	lo, ok := st.Network["lo"]
	if !ok {
		t.Fatalf("state network %+v has no lo", st.Network)
	}
	if lo.Type != "loopback" || lo.State != "up" || lo.Counters.PacketsReceived == 0 || lo.Counters.BytesSent == 0 {
		t.Errorf("lo = %+v", lo)
	}
	found := false
	for _, a := range lo.Addresses {
		found = found || (a.Family == "inet" && a.Address == "127.0.0.1" && a.Netmask == "8" && a.Scope == "local")
	}
	if !found {
		t.Errorf("lo addresses %+v lack 127.0.0.1/8", lo.Addresses)
	}
	// Its loopback and the default profile's eth0, nothing of the host's.
	if eth0, ok := st.Network["eth0"]; len(st.Network) != 2 || !ok || eth0.HostName == "" || eth0.Type != "broadcast" || eth0.State != "up" {
		t.Errorf("interfaces %v: the host's leaked in, or the container lacks its loopback or eth0", st.Network)
	}

	inst, _, err := c.GetInstance(ctx, "st1")
	if err != nil {
		t.Fatal(err)
	}
	const idmap = `[{"Isuid":true,"Isgid":false,"Hostid":1000000,"Nsid":0,"Maprange":65536},{"Isuid":false,"Isgid":true,"Hostid":1000000,"Nsid":0,"Maprange":65536}]`
	for k, want := range map[string]string{
		"volatile.idmap.base": "1000000", "volatile.idmap.next": idmap,
		"volatile.idmap.current": idmap, "volatile.last_state.idmap": idmap,
	} {
		if got := inst.Config[k]; got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if _, err := uuid.Parse(inst.Config["volatile.uuid"]); err != nil {
		t.Errorf("volatile.uuid %q: %v", inst.Config["volatile.uuid"], err)
	}
	if inst.Devices == nil || inst.ExpandedDevices == nil {
		t.Errorf("devices %v, expanded_devices %v: must be present", inst.Devices, inst.ExpandedDevices)
	}
}
