package network

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

func TestParsePorts(t *testing.T) {
	tests := []struct {
		in   string
		want []uint16
		bad  bool
	}{
		{"80", []uint16{80}, false},
		{"1", []uint16{1}, false},
		{"65535", []uint16{65535}, false},
		{"80-83", []uint16{80, 81, 82, 83}, false},
		{"80,443,8000-8002", []uint16{80, 443, 8000, 8001, 8002}, false},
		{" 80 , 443", []uint16{80, 443}, false},
		{"80-80", []uint16{80}, false},
		{"", nil, true},
		{"0", nil, true},
		{"65536", nil, true},
		{"-1", nil, true},
		{"http", nil, true},
		{"80-", nil, true},
		{"-80", nil, true},
		{"90-80", nil, true},
		{"80,,81", nil, true},
		{"80,", nil, true},
	}
	for _, tt := range tests {
		got, err := parsePorts(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("parsePorts(%q) = %d ports, want an error", tt.in, len(got))
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parsePorts(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	// The whole range is allowed, once.
	if all, err := parsePorts("1-65535"); err != nil || len(all) != 65535 || all[65534] != 65535 {
		t.Errorf("parsePorts(1-65535): %d ports, %v", len(all), err)
	}
}

func TestForwardRules(t *testing.T) {
	f := Forward{Network: "br1", ListenAddress: "192.0.2.1",
		Config: map[string]string{"target_address": "10.0.3.9"},
		Ports: []ForwardPort{
			{Protocol: "tcp", ListenPort: "80,443", TargetAddress: "10.0.3.5"},
			{Protocol: "udp", ListenPort: "5000-5002", TargetPort: "6000-6002", TargetAddress: "10.0.3.6"},
			{Protocol: "tcp", ListenPort: "8080-8081", TargetPort: "80", TargetAddress: "10.0.3.7"},
		}}
	got, err := forwardRules(f)
	wantErr(t, err, nil)
	owner := "forward/br1/192.0.2.1"
	l := addr("192.0.2.1")
	want := []ForwardRule{
		{Owner: owner, Proto: "tcp", Listen: l, ListenPorts: []uint16{80, 443}, Target: addr("10.0.3.5"), TargetPorts: []uint16{80, 443}},
		{Owner: owner, Proto: "udp", Listen: l, ListenPorts: []uint16{5000, 5001, 5002}, Target: addr("10.0.3.6"), TargetPorts: []uint16{6000, 6001, 6002}},
		{Owner: owner, Proto: "tcp", Listen: l, ListenPorts: []uint16{8080, 8081}, Target: addr("10.0.3.7"), TargetPorts: []uint16{80}},
		// The default target takes every other port, both protocols.
		{Owner: owner, Proto: "tcp", Listen: l, Target: addr("10.0.3.9")},
		{Owner: owner, Proto: "udp", Listen: l, Target: addr("10.0.3.9")},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("rules\n got %+v\nwant %+v", got, want)
	}

	for _, bad := range []Forward{
		{Network: "br1", ListenAddress: "nope"},
		{Network: "br1", ListenAddress: "192.0.2.1", Ports: []ForwardPort{{Protocol: "tcp", ListenPort: "x", TargetAddress: "10.0.3.5"}}},
		{Network: "br1", ListenAddress: "192.0.2.1", Ports: []ForwardPort{{Protocol: "tcp", ListenPort: "80", TargetAddress: "x"}}},
		{Network: "br1", ListenAddress: "192.0.2.1", Config: map[string]string{"target_address": "x"}},
	} {
		if _, err := forwardRules(bad); err == nil {
			t.Errorf("forwardRules(%+v) accepted", bad)
		}
	}
}

// TestPutForward: what a network forward may be, and its rules in the
// firewall from create to delete.
func TestPutForward(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.create(t, "br1", map[string]string{"ipv4.address": "10.236.0.1/24", "ipv6.address": "fd93::1/64"})
	e.create(t, "br2", map[string]string{"ipv4.address": "10.237.0.1/24", "ipv6.address": "none"})
	wantErr(t, e.m.Create(ctx, CreateRequest{Name: "mv", Type: TypeMacvlan, Config: map[string]string{"parent": "eth0"}}), nil)
	port := func(proto, lp, tp, ta string) ForwardPort {
		return ForwardPort{Protocol: proto, ListenPort: lp, TargetPort: tp, TargetAddress: ta}
	}
	ok := Forward{Network: "br1", ListenAddress: "192.0.2.1", Config: map[string]string{"user.x": "1"},
		Ports: []ForwardPort{port("tcp", "80", "8080", "10.236.0.5"), port("udp", "80", "", "10.236.0.5")}}
	wantErr(t, e.m.PutForward(ctx, ok, false), nil)
	wantErr(t, e.m.PutForward(ctx, Forward{Network: "br2", ListenAddress: "192.0.2.2", Config: map[string]string{"target_address": "10.237.0.9"}}, false), nil)

	tests := []struct {
		name    string
		f       Forward
		replace bool
		kind    error
		words   []string
	}{
		{"unknown network", Forward{Network: "nope", ListenAddress: "192.0.2.9"}, false, errNotFound, []string{`"nope"`}},
		{"host interface", Forward{Network: "eth0", ListenAddress: "192.0.2.9"}, false, errInvalid, []string{"not managed"}},
		{"macvlan", Forward{Network: "mv", ListenAddress: "192.0.2.9"}, false, errInvalid, []string{`"mv"`, "bridge"}},
		{"listen not an address", Forward{Network: "br1", ListenAddress: "192.0.2"}, false, errInvalid, []string{"listen_address", `"192.0.2"`}},
		{"listen with zone", Forward{Network: "br1", ListenAddress: "fe80::1%eth0"}, false, errInvalid, []string{"listen_address"}},
		{"listen inside own subnet", Forward{Network: "br1", ListenAddress: "10.236.0.200"}, false, errInvalid, []string{"10.236.0.200", "own subnet"}},
		{"unknown key", Forward{Network: "br1", ListenAddress: "192.0.2.9", Config: map[string]string{"listen_port": "80"}}, false, errInvalid, []string{`"listen_port"`}},
		{"default target outside", Forward{Network: "br1", ListenAddress: "192.0.2.9", Config: map[string]string{"target_address": "10.237.0.5"}}, false, errInvalid, []string{"target_address", "10.237.0.5", `"br1"`}},
		{"default target not an address", Forward{Network: "br1", ListenAddress: "192.0.2.9", Config: map[string]string{"target_address": "c1"}}, false, errInvalid, []string{`"c1"`}},
		{"family mismatch", Forward{Network: "br1", ListenAddress: "2001:db8::1", Ports: []ForwardPort{port("tcp", "80", "", "10.236.0.5")}}, false, errInvalid, []string{"ports[0].target_address", "family"}},
		{"bad protocol", Forward{Network: "br1", ListenAddress: "192.0.2.9", Ports: []ForwardPort{port("sctp", "80", "", "10.236.0.5")}}, false, errInvalid, []string{"ports[0].protocol", `"sctp"`}},
		{"bad listen port", Forward{Network: "br1", ListenAddress: "192.0.2.9", Ports: []ForwardPort{port("tcp", "80", "", "10.236.0.5"), port("tcp", "0", "", "10.236.0.5")}}, false, errInvalid, []string{"ports[1].listen_port"}},
		{"bad target port", Forward{Network: "br1", ListenAddress: "192.0.2.9", Ports: []ForwardPort{port("tcp", "80", "99999", "10.236.0.5")}}, false, errInvalid, []string{"ports[0].target_port"}},
		{"target ports mismatch", Forward{Network: "br1", ListenAddress: "192.0.2.9", Ports: []ForwardPort{port("tcp", "80-82", "90-91", "10.236.0.5")}}, false, errInvalid, []string{"ports[0].target_port", "2 ports for 3"}},
		{"port target outside", Forward{Network: "br1", ListenAddress: "192.0.2.9", Ports: []ForwardPort{port("tcp", "80", "", "10.237.0.5")}}, false, errInvalid, []string{"ports[0].target_address"}},
		{"port forwarded twice", Forward{Network: "br1", ListenAddress: "192.0.2.9", Ports: []ForwardPort{port("tcp", "80-90", "", "10.236.0.5"), port("tcp", "85", "", "10.236.0.6")}}, false, errConflict, []string{"ports[1].listen_port", "85", "twice"}},
		{"listen taken by another network", Forward{Network: "br1", ListenAddress: "192.0.2.2"}, false, errConflict, []string{"192.0.2.2", `"br2"`}},
		{"listen exists", Forward{Network: "br1", ListenAddress: "192.0.2.1"}, false, errConflict, []string{"192.0.2.1"}},
		{"replace missing", Forward{Network: "br1", ListenAddress: "192.0.2.77"}, true, errNotFound, []string{"192.0.2.77"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, e.m.PutForward(ctx, tt.f, tt.replace), tt.kind, tt.words...)
		})
	}

	// Only the two good forwards are stored and in the firewall.
	fs, err := e.m.Forwards(ctx, "br1")
	wantErr(t, err, nil)
	if len(fs) != 1 || fs[0].ListenAddress != "192.0.2.1" || len(fs[0].Ports) != 2 {
		t.Fatalf("br1 forwards: %+v", fs)
	}
	wantForwards(t, e.fw.last(), []string{
		"forward/br1/192.0.2.1 tcp 192.0.2.1:[80] -> 10.236.0.5:[8080]",
		"forward/br1/192.0.2.1 udp 192.0.2.1:[80] -> 10.236.0.5:[80]",
		"forward/br2/192.0.2.2 tcp 192.0.2.2:[] -> 10.237.0.9:[]",
		"forward/br2/192.0.2.2 udp 192.0.2.2:[] -> 10.237.0.9:[]",
	})

	f, err := e.m.GetForward(ctx, "br1", "192.0.2.1")
	wantErr(t, err, nil)
	if f.Config["user.x"] != "1" {
		t.Fatalf("GetForward: %+v", f)
	}
	_, err = e.m.GetForward(ctx, "br1", "192.0.2.2")
	wantErr(t, err, errNotFound, "192.0.2.2")

	// Replacing takes the new ports, in the firewall too.
	ok.Ports = []ForwardPort{port("tcp", "2222", "22", "10.236.0.6")}
	wantErr(t, e.m.PutForward(ctx, ok, true), nil)
	wantForwards(t, e.fw.last(), []string{
		"forward/br1/192.0.2.1 tcp 192.0.2.1:[2222] -> 10.236.0.6:[22]",
		"forward/br2/192.0.2.2 tcp 192.0.2.2:[] -> 10.237.0.9:[]",
		"forward/br2/192.0.2.2 udp 192.0.2.2:[] -> 10.237.0.9:[]",
	})

	wantErr(t, e.m.DeleteForward(ctx, "br1", "192.0.2.1"), nil)
	wantErr(t, e.m.DeleteForward(ctx, "br1", "192.0.2.1"), errNotFound)
	// Deleting a network takes its forwards with it.
	wantErr(t, e.m.Delete(ctx, "br2"), nil)
	wantForwards(t, e.fw.last(), nil)
	if fs, _ := e.st.ListForwards(ctx, ""); len(fs) != 0 {
		t.Fatalf("forwards left: %+v", fs)
	}
	want := []string{
		"network-forward-created network-forward br1/192.0.2.1",
		"network-forward-created network-forward br2/192.0.2.2",
		"network-forward-updated network-forward br1/192.0.2.1",
		"network-forward-deleted network-forward br1/192.0.2.1",
	}
	var got []string
	for _, ev := range e.ev.all() {
		if slices.Contains(want, ev) {
			got = append(got, ev)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("forward events %v, want %v", e.ev.all(), want)
	}
}

// wantForwards compares a firewall state's forwards, one line each.
func wantForwards(t *testing.T, st FirewallState, want []string) {
	t.Helper()
	var got []string
	for _, r := range st.Forwards {
		got = append(got, fmtRule(r))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("firewall forwards\n got %q\nwant %q", got, want)
	}
}

func fmtRule(r ForwardRule) string {
	l := "*"
	if r.Listen.IsValid() {
		l = r.Listen.String()
	}
	return fmt.Sprintf("%s %s %s:%v -> %s:%v", r.Owner, r.Proto, l, r.ListenPorts, r.Target, r.TargetPorts)
}
