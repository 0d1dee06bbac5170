package instances

import (
	"log/slog"
	"testing"

	"github.com/hangar-dev/hangar/internal/instance"
)

// BenchmarkStandbyRestoreEdge is what the edge adds to a standby and a
// restore: decoding, the state precheck, the core calls (a fake that
// costs nothing) and the Instance answer, through the whole handler
// (authentication and audit included). The target is that the instances
// API costs what the LXD API costs; this is the part only it pays.
func BenchmarkStandbyRestoreEdge(b *testing.B) {
	f := newFakeCore()
	f.add("web", instance.TypeVM, instance.StatusRunning, false, true)
	f.byName["web"].Config["volatile.eth0.hwaddr"] = "00:16:3e:00:00:01"
	h := (&Server{Core: f, Addresses: fakeAddresses{"00:16:3e:00:00:01": "10.0.0.5"}, Log: slog.New(slog.DiscardHandler)}).Handler()
	b.ReportAllocs()
	for b.Loop() {
		if rec := call(h, "POST", "/instances/web/standby", ""); rec.Code != 200 {
			b.Fatalf("standby: %d %s", rec.Code, rec.Body)
		}
		if rec := call(h, "POST", "/instances/web/restore", ""); rec.Code != 200 {
			b.Fatalf("restore: %d %s", rec.Code, rec.Body)
		}
		f.stops = f.stops[:0]
	}
}
