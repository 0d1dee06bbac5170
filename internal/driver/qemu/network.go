package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

var _ driver.NetworkReader = (*Driver)(nil)

// netTTL is how long a VM's interfaces, counters included, are reused:
// each read is a round trip to the guest agent, and a listing of many
// instances must not make one per VM per request.
const netTTL = time.Second

// netTimeout bounds one read from the agent; a guest that does not answer
// in time (paused, busy) gets its last answer shown.
const netTimeout = 2 * time.Second

// netCache is one VM's interfaces as its agent last reported them. Its
// mutex is held across a read, so concurrent callers share one.
type netCache struct {
	mu     sync.Mutex
	at     time.Time
	ifaces map[string]driver.NetInterface
}

// Network returns the guest's interfaces, loopback included, as the guest
// agent reports them (addresses, MTU, state, counters). A VM without an
// agent (booted from a disk image) or with an agent that predates the
// request reports none: its host-side taps are what the network layer
// can show.
func (d *Driver) Network(ctx context.Context, id string) (map[string]driver.NetInterface, error) {
	v := d.get(id)
	if v == nil {
		return nil, driver.ErrNotRunning
	}
	ac := v.agentConn()
	if ac == nil || ac.agentVersion() < vmagent.VersionNet {
		return nil, nil
	}
	c := &v.net
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.ifaces != nil && now.Sub(c.at) < netTTL {
		return c.ifaces, nil
	}
	v.mu.Lock()
	running := v.state == stateRunning
	v.mu.Unlock()
	if !running && c.ifaces != nil {
		return c.ifaces, nil // a paused guest cannot answer
	}
	rctx, cancel := context.WithTimeout(ctx, netTimeout)
	defer cancel()
	ifaces, err := readGuestNetwork(rctx, ac)
	if err != nil {
		if d.get(id) != v {
			return nil, driver.ErrNotRunning
		}
		if c.ifaces != nil {
			d.log.Debug("guest network read failed, last one shown", "id", id, "err", err)
			return c.ifaces, nil
		}
		return nil, err
	}
	c.at, c.ifaces = now, ifaces
	return ifaces, nil
}

// readGuestNetwork asks the agent for the guest's interfaces.
func readGuestNetwork(ctx context.Context, ac *agentConn) (map[string]driver.NetInterface, error) {
	ch, q, err := ac.open()
	if err != nil {
		return nil, err
	}
	defer ac.release(ch)
	if err := ac.send(vmagent.MsgNetState, ch, nil); err != nil {
		return nil, err
	}
	f, err := q.pop(ctx)
	if err != nil {
		return nil, fmt.Errorf("guest network: %w", err)
	}
	if f.Type == vmagent.MsgError {
		return nil, fmt.Errorf("guest network: %w", agentError(f))
	}
	if f.Type != vmagent.MsgNetState {
		return nil, fmt.Errorf("guest network: unexpected reply %d", f.Type)
	}
	var st vmagent.NetState
	if err := json.Unmarshal(f.Payload, &st); err != nil {
		return nil, fmt.Errorf("guest network: %w", err)
	}
	out := make(map[string]driver.NetInterface, len(st.Interfaces))
	for _, i := range st.Interfaces {
		ni := driver.NetInterface{
			Addresses: make([]driver.NetAddress, 0, len(i.Addresses)),
			Hwaddr:    i.Hwaddr, MTU: i.MTU, Up: i.Up, Type: i.Type,
			BytesReceived: i.BytesReceived, BytesSent: i.BytesSent,
			PacketsReceived: i.PacketsReceived, PacketsSent: i.PacketsSent,
			ErrorsReceived: i.ErrorsReceived, ErrorsSent: i.ErrorsSent,
			DroppedReceived: i.DroppedReceived, DroppedSent: i.DroppedSent,
		}
		for _, a := range i.Addresses {
			ni.Addresses = append(ni.Addresses, driver.NetAddress{Family: a.Family, Address: a.Address, PrefixLen: a.PrefixLen, Scope: a.Scope})
		}
		out[i.Name] = ni
	}
	return out, nil
}

// invalidate makes the next read ask the agent: a NIC came or went.
func (c *netCache) invalidate() {
	c.mu.Lock()
	c.at = time.Time{}
	c.mu.Unlock()
}
