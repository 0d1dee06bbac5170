package device

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/network"
)

// TestStandby: a VM's stateful stop keeps its NAT proxies' rules (same
// owner) and pins its addresses' neighbour entries to its MAC; whatever
// follows the standby (a start, a stateless stop or delete, a failed
// start, a daemon restart) leaves the host as it should.
func TestStandby(t *testing.T) {
	ctx := context.Background()
	in := vm()
	const owner = "proxy/hangar-8/web"
	devs := map[string]map[string]string{
		"eth0": nic("network", "br0"),
		"web":  proxyDev("listen", "tcp:0.0.0.0:8080", "connect", "tcp:0.0.0.0:80", "nat", "true"),
		"dns":  proxyDev("listen", "udp:192.0.2.1:53", "connect", "udp:10.0.3.53:53", "nat", "true"),
	}
	noWeb := maps.Clone(devs)
	delete(noWeb, "web")
	rules := []string{
		"proxy/hangar-8/dns udp 192.0.2.1:[53] -> 10.0.3.53:[53]",
		owner + " tcp 0.0.0.0:[8080] -> 10.0.3.2:[80]",
	}
	var mac string
	neigh := func(state string) []string {
		return []string{"br0 10.0.3.2 " + mac + " " + state, "br0 fd42::3:2 " + mac + " " + state}
	}
	tap := HostLinkName("hangar-8", "eth0")

	type step struct {
		op      string
		wantErr error
	}
	tests := []struct {
		name      string
		steps     []step
		wantRules []string
		wantNeigh string // state of the instance's entries
		wantLinks string // fakeLinks.left()
	}{
		{"stateful stop keeps the rules and pins the neighbours",
			[]step{{"standby", nil}}, rules, "permanent", ""},
		{"stateless stop removes the rules, pins nothing",
			[]step{{"stop", nil}}, nil, "stale", ""},
		{"start from standby replaces the rules in place",
			[]step{{"standby", nil}, {"start", nil}, {"started", nil}}, rules, "stale", "link " + tap},
		{"stateless stop after a wake removes them",
			[]step{{"standby", nil}, {"start", nil}, {"started", nil}, {"stop", nil}}, nil, "stale", ""},
		{"delete in standby clears both",
			[]step{{"standby", nil}, {"stop", nil}}, nil, "", ""},
		{"a failed start drops both",
			[]step{{"standby", nil}, {"failstart", errAny}}, nil, "", ""},
		{"a start whose run failed drops them",
			[]step{{"standby", nil}, {"start", nil}, {"stop", nil}}, nil, "stale", ""},
		{"a proxy removed in standby loses its rule at the start",
			[]step{{"standby", nil}, {"start-noweb", nil}}, rules[:1], "stale", "link " + tap},
		{"a NIC removed in standby is unpinned at the start",
			[]step{{"standby", nil}, {"start-nonic", nil}}, nil, "", ""},
		{"a daemon restart in standby puts both back",
			[]step{{"standby", nil}, {"restart", nil}, {"recover", nil}}, rules, "permanent", ""},
		{"restored after a restart, then deleted",
			[]step{{"standby", nil}, {"restart", nil}, {"recover", nil}, {"stop", nil}}, nil, "", ""},
		{"restored after a restart, then woken",
			[]step{{"standby", nil}, {"restart", nil}, {"recover", nil}, {"start", nil}, {"started", nil}}, rules, "stale", "link " + tap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			run, err := e.m.Start(ctx, in, devs)
			wantErr(t, err, nil)
			mac = run.NICs[0].Hwaddr
			wantErr(t, e.m.Started(ctx, in, devs), nil)
			wantLines(t, "rules running", e.nets.ruleLines(), rules)
			for _, s := range tt.steps {
				switch s.op {
				case "standby":
					err = e.m.Standby(ctx, in, devs)
				case "stop":
					err = e.m.Stop(ctx, in, devs)
				case "start":
					_, err = e.m.Start(ctx, in, devs)
				case "start-noweb":
					_, err = e.m.Start(ctx, in, noWeb)
				case "start-nonic":
					_, err = e.m.Start(ctx, in, map[string]map[string]string{})
				case "started":
					e.nets.ruleCalls = nil
					err = e.m.Started(ctx, in, devs)
					// In place: set again, never removed first.
					for _, c := range e.nets.ruleCalls {
						if strings.HasSuffix(c, " 0") {
							t.Errorf("a rule went before it was replaced: %q", e.nets.ruleCalls)
						}
					}
				case "failstart":
					e.lk.failTap[tap] = errors.New("tap: EBUSY")
					_, err = e.m.Start(ctx, in, devs)
				case "restart":
					// A new daemon: a fresh firewall, the kernel's
					// neighbour table as it was.
					e = e.restart()
					e.nets.rules = map[string][]network.ForwardRule{}
				case "recover":
					err = e.m.Standby(ctx, in, devs)
				}
				if p := errProblem(err, s.wantErr); p != "" {
					t.Fatalf("%s: %s", s.op, p)
				}
			}
			wantLines(t, "rules", e.nets.ruleLines(), tt.wantRules)
			var want []string
			if tt.wantNeigh != "" {
				want = neigh(tt.wantNeigh)
			}
			wantLines(t, "neighbours", e.lk.neighbours(), want)
			if left := e.lk.left(); left != tt.wantLinks {
				t.Fatalf("left on the host: %q, want %q", left, tt.wantLinks)
			}
		})
	}
}

// TestStandbyConflict: another owner's rule on the listen port (what the
// auto-standby adapter once kept) would make the start of the proxy fail;
// the rule kept in standby is the proxy's own, so the wake succeeds.
func TestStandbyConflict(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	in := vm()
	devs := map[string]map[string]string{
		"eth0": nic("network", "br0"),
		"web":  proxyDev("listen", "tcp:0.0.0.0:8080", "connect", "tcp:0.0.0.0:80", "nat", "true"),
	}
	_, err := e.m.Start(ctx, in, devs)
	wantErr(t, err, nil)
	wantErr(t, e.m.Started(ctx, in, devs), nil)
	wantErr(t, e.m.Standby(ctx, in, devs), nil)
	// A rule of another owner on the same port is refused: the fake
	// firewall checks overlaps as the real one does.
	wantErr(t, e.nets.SetProxyRules(ctx, "other", []network.ForwardRule{{Proto: "tcp", ListenPorts: []uint16{8080}}}), errAny, "8080")
	_, err = e.m.Start(ctx, in, devs)
	wantErr(t, err, nil)
	wantErr(t, e.m.Started(ctx, in, devs), nil)
}
