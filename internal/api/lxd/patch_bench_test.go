package lxd

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkPatchInstance is one PATCH of a user.* key of a running
// instance through the whole edge: HTTP, decode, the core's checks, the
// SQLite write and the lifecycle event. Parallel clients, as the issue-10
// load drives it (bench/run --only patch).
func BenchmarkPatchInstance(b *testing.B) {
	ts, _ := newServer(b, &fakeDriver{running: map[string]int{}})
	const instances = 10
	for i := range instances {
		launch(b, ts, "c"+strconv.Itoa(i))
	}
	b.ReportAllocs()
	b.SetParallelism(8)
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := int(n.Add(1))
			body := `{"config":{"user.k` + strconv.Itoa(i%7) + `":"` + strconv.Itoa(i) + `"}}`
			req, _ := http.NewRequest("PATCH", ts.URL+"/1.0/instances/c"+strconv.Itoa(i%instances), strings.NewReader(body))
			resp, err := ts.Client().Do(req)
			if err != nil {
				b.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Fatalf("PATCH: %d", resp.StatusCode)
			}
		}
	})
}
