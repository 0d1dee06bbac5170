package lxd

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkListInstancesFull is the daemon's half of `hangar list` at 1000
// instances (1 running, 999 stopped): GET /1.0/instances?recursion=2 from
// the handler's start to the last byte of its answer, without the socket.
func BenchmarkListInstancesFull(b *testing.B) {
	ts, srv := newServer(b, &fakeDriver{running: map[string]int{}})
	for i := range 1000 {
		body := fmt.Sprintf(`{"name":"c%04d","source":{"type":"image","alias":"busybox"},"start":%t}`, i, i == 0)
		resp, err := http.Post(ts.URL+"/1.0/instances", "application/json", strings.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			b.Fatalf("create c%04d: %d", i, resp.StatusCode)
		}
		op := resp.Header.Get("Location")
		resp, err = http.Get(ts.URL + op + "/wait?timeout=10")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
	}
	h := srv.Handler()
	req := httptest.NewRequest(http.MethodGet, "/1.0/instances?recursion=2", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("list: %d %s", rec.Code, rec.Body.String())
	}
	b.SetBytes(int64(rec.Body.Len()))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		rec := discardRecorder{header: http.Header{}}
		h.ServeHTTP(&rec, req)
		if rec.code != http.StatusOK {
			b.Fatalf("list: %d", rec.code)
		}
	}
}

// discardRecorder is a ResponseWriter that keeps the status and drops the
// body, so that the benchmark measures the handler, not a growing buffer.
type discardRecorder struct {
	header http.Header
	code   int
}

func (d *discardRecorder) Header() http.Header { return d.header }
func (d *discardRecorder) WriteHeader(code int) {
	if d.code == 0 {
		d.code = code
	}
}
func (d *discardRecorder) Write(p []byte) (int, error) {
	if d.code == 0 {
		d.code = http.StatusOK
	}
	return len(p), nil
}
