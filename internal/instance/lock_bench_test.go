package instance

import (
	"context"
	"fmt"
	"log/slog"

	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/event"
)

// BenchmarkPatchUnderFreeze measures config PATCH latency while the same
// instances are frozen and thawed, as a loaded daemon sees it: N patchers
// spread over 8 running instances each PATCH a user.* key in a loop, and one
// freezer per instance alternates freeze and unfreeze, each taking
// freezeDelay in the runtime (a freezer write under load; runc pause took
// far longer). Like API clients, each pauses think between its calls (a
// patcher in a tight loop would only measure sync.Mutex barging: it
// re-takes a lock before a waiting freezer wakes). It reports the PATCH
// latency percentiles; freezers=0 is the floor the same patchers reach
// alone.
func BenchmarkPatchUnderFreeze(b *testing.B) {
	const (
		freezeDelay = 3 * time.Millisecond
		think       = time.Millisecond
		instances   = 8
	)
	for _, bc := range []struct{ patchers, freezers int }{{8, 0}, {8, instances}, {64, instances}, {200, 0}, {200, instances}} {
		b.Run(fmt.Sprintf("patchers=%d/freezers=%d", bc.patchers, bc.freezers), func(b *testing.B) {
			s, drv, _, _ := newTestService(b)
			// Neither the fake event list (which would grow by millions)
			// nor logging is what is measured.
			s.cfg.Events, s.log = discardEvents{}, slog.New(slog.DiscardHandler)
			names := make([]string, instances)
			for i := range names {
				names[i] = fmt.Sprintf("c%d", i)
				if err := launch(b, s, imageReq(names[i])); err != nil {
					b.Fatal(err)
				}
			}
			drv.freezeDelay = freezeDelay
			ctx := context.Background()
			stop := make(chan struct{})
			var freezers sync.WaitGroup
			for f := range bc.freezers {
				freezers.Add(1)
				go func() {
					defer freezers.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						_ = s.Freeze(ctx, names[f%instances])
						time.Sleep(think)
						_ = s.Unfreeze(ctx, names[f%instances])
						time.Sleep(think)
					}
				}()
			}
			var next atomic.Int64
			lat := make([][]time.Duration, bc.patchers)
			b.ResetTimer()
			var wg sync.WaitGroup
			for p := range bc.patchers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					name, key := names[p%instances], "user.k"+strconv.Itoa(p%4)
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						t0 := time.Now()
						if err := s.Patch(ctx, name, Patch{Config: map[string]string{key: strconv.FormatInt(i, 10)}}, nil); err != nil {
							b.Error(err)
							return
						}
						lat[p] = append(lat[p], time.Since(t0))
						time.Sleep(think)
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(stop)
			freezers.Wait()
			all := slices.Concat(lat...)
			slices.Sort(all)
			pct := func(q float64) float64 {
				if len(all) == 0 {
					return 0
				}
				return float64(all[min(len(all)-1, int(q*float64(len(all))))].Microseconds()) / 1000
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(pct(1), "max-ms")
		})
	}
}

type discardEvents struct{}

func (discardEvents) Lifecycle(context.Context, string, event.Entity, map[string]any) {}
