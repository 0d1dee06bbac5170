package container

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestParseNetDev(t *testing.T) {
	const header = "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	tests := []struct {
		name    string
		in      string
		want    map[string][16]int64
		wantErr bool
	}{
		{"loopback", header + "    lo:     100       2    0    0    0     0          0         0      100       2    0    0    0     0       0          0\n",
			map[string][16]int64{"lo": {100, 2, 0, 0, 0, 0, 0, 0, 100, 2}}, false},
		{"two", header + "lo: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 0\neth0: 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9 9\n",
			map[string][16]int64{"lo": {1, 2, 3, 4, 0, 0, 0, 0, 5, 6, 7, 8}, "eth0": {9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9}}, false},
		{"headers only", header, map[string][16]int64{}, false},
		{"no colon", header + "lo 1 2 3\n", nil, true},
		{"short", header + "lo: 1 2 3\n", nil, true},
		{"not a number", header + "lo: 1 2 3 4 0 0 0 0 5 6 7 8 0 0 0 x\n", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNetDev([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s: %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

// readNetwork of our own process enters our own namespace and comes back:
// it must find the loopback with its address, whatever else the host has.
func TestReadNetworkSelf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("setns needs root")
	}
	got, err := readNetwork(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	lo, ok := got["lo"]
	if !ok {
		t.Fatalf("no lo in %v", got)
	}
	if lo.Type != "loopback" || !lo.Up || lo.MTU == 0 {
		t.Errorf("lo = %+v", lo)
	}
	found := false
	for _, a := range lo.Addresses {
		if a.Family == "inet" && a.Address == "127.0.0.1" && a.PrefixLen == 8 && a.Scope == "local" {
			found = true
		}
	}
	if !found {
		t.Errorf("lo addresses %+v lack 127.0.0.1/8", lo.Addresses)
	}
	if _, err := readNetwork(1 << 30); err == nil {
		t.Error("a pid that does not exist read fine")
	}
}

// BenchmarkNetwork is one state read's network part for a running
// container: "cached" within ifaceTTL (counters read, interfaces reused),
// "fresh" entering the namespace each time, as every read did before.
func BenchmarkNetwork(b *testing.B) {
	e := newTestEnv(b)
	s := e.spec(false, "sleep", "1000")
	e.start(s)
	in := e.d.lookup(s.ID)
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.d.Network(context.Background(), s.ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fresh", func(b *testing.B) {
		for b.Loop() {
			if _, err := readNetwork(in.pid); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestIfaceCache: within ifaceTTL the interfaces are reused (a marker put
// in the cache shows) with counters read afresh; after it, read again.
func TestIfaceCache(t *testing.T) {
	var c ifaceCache
	t0 := time.Now()
	first, err := c.read(os.Getpid(), t0)
	if err != nil {
		t.Fatal(err)
	}
	lo, ok := first["lo"]
	if !ok {
		t.Fatalf("no lo in %v", first)
	}
	marked := c.ifaces["lo"]
	marked.MTU = -1
	c.ifaces["lo"] = marked
	if got, err := c.read(os.Getpid(), t0.Add(ifaceTTL/2)); err != nil || got["lo"].MTU != -1 {
		t.Fatalf("within the TTL: lo MTU %d, %v; want the cached -1", got["lo"].MTU, err)
	}
	if got, err := c.read(os.Getpid(), t0.Add(ifaceTTL)); err != nil || got["lo"].MTU != lo.MTU {
		t.Fatalf("after the TTL: lo MTU %d, %v; want %d read again", got["lo"].MTU, err, lo.MTU)
	}
}
