package instance

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkPatchUnderFreeze measures config PATCH latency on one running
// instance while others freeze and unfreeze it, as a loaded daemon sees it:
// N patchers each PATCH a user.* key in a loop, and two freezers alternate
// freeze and unfreeze, each taking freezeDelay in the runtime (a cgroup
// freezer write under load). It reports the PATCH latency percentiles.
func BenchmarkPatchUnderFreeze(b *testing.B) {
	const freezeDelay = 3 * time.Millisecond
	for _, patchers := range []int{8, 64, 200} {
		b.Run(fmt.Sprintf("patchers=%d", patchers), func(b *testing.B) {
			s, drv, _, _ := newTestService(b)
			if err := launch(b, s, imageReq("c1")); err != nil {
				b.Fatal(err)
			}
			drv.freezeDelay = freezeDelay
			ctx := context.Background()
			stop := make(chan struct{})
			var freezers sync.WaitGroup
			for range 2 {
				freezers.Add(1)
				go func() {
					defer freezers.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						_ = s.Freeze(ctx, "c1")
						_ = s.Unfreeze(ctx, "c1")
					}
				}()
			}
			var next atomic.Int64
			lat := make([][]time.Duration, patchers)
			b.ResetTimer()
			var wg sync.WaitGroup
			for p := range patchers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						t0 := time.Now()
						if err := s.Patch(ctx, "c1", InstancePatch{Config: map[string]string{"user.k" + strconv.Itoa(p): strconv.FormatInt(i, 10)}}, ""); err != nil {
							b.Error(err)
							return
						}
						lat[p] = append(lat[p], time.Since(t0))
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
