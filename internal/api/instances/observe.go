package instances

import (
	"context"
	"net/http"
	"strconv"
	"time"

	wire "github.com/hangar-dev/hangar/api/instances"
	"github.com/hangar-dev/hangar/internal/instance"
)

// Wait's timeout: the seed's default and cap.
const (
	defaultWait = 60 * time.Second
	maxWait     = 5 * time.Minute
	// waitRecheck is how often Wait looks again between events: not
	// every change publishes one (the guest agent reporting the
	// workload started is a field of the state, not an event).
	waitRecheck = 250 * time.Millisecond
)

// Default tail of logs (hypeman's).
const defaultTail = 100

func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fieldErr(name, "%q: want true or false", v)
	}
	return b, nil
}

// onlyParams refuses query parameters the route does not take.
func onlyParams(r *http.Request, names ...string) error {
	for k := range r.URL.Query() {
		known := false
		for _, n := range names {
			known = known || k == n
		}
		if !known {
			return fieldErr(k, "unknown query parameter")
		}
	}
	return nil
}

// logs is GET /instances/{id}/logs as Server-Sent Events: each line is
// one event "data: LINE\n\n", flushed per batch the core emits.
func (s *Server) logs(w http.ResponseWriter, r *http.Request, name string) {
	if err := onlyParams(r, "follow", "tail", "source"); err != nil {
		writeError(w, err)
		return
	}
	follow, err := boolParam(r, "follow")
	if err != nil {
		writeError(w, err)
		return
	}
	tail := defaultTail
	if v := r.URL.Query().Get("tail"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, fieldErr("tail", "%q: a whole number >= 0", v))
			return
		}
		tail = n
	}
	var src instance.LogSource
	switch v := r.URL.Query().Get("source"); v {
	case "", wire.LogSourceApp:
		src = instance.LogApp
	case wire.LogSourceVMM:
		src = instance.LogVMM
	case wire.LogSourceHypeman:
		src = instance.LogHangar
	default:
		writeError(w, fieldErr("source", "%q: want app, vmm or hypeman", v))
		return
	}
	flusher, _ := w.(http.Flusher)
	started := false
	buf := make([]byte, 0, 64<<10)
	err = s.Core.StreamLog(r.Context(), name, src, tail, follow, func(lines [][]byte) error {
		if !started {
			started = true
			h := w.Header()
			h.Set("Content-Type", "text/event-stream")
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
		}
		buf = buf[:0]
		for _, l := range lines {
			buf = append(buf, "data: "...)
			buf = append(buf, l...)
			buf = append(buf, '\n', '\n')
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	})
	switch {
	case err != nil && !started:
		writeError(w, err)
	case !started:
		// Nothing to send and the stream ended: an empty stream.
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
	case err != nil && r.Context().Err() == nil:
		// Mid-stream: the status is sent; end the stream with an error
		// event so the client knows it was cut, not finished.
		_, _ = w.Write([]byte("event: error\ndata: " + sseLine(err.Error()) + "\n\n"))
	}
}

// sseLine keeps a message on one SSE data line.
func sseLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '\n' || c == '\r' {
			b[i] = ' '
		}
	}
	return string(b)
}

// stat is GET /instances/{id}/stat?path=P&follow_links=B.
func (s *Server) stat(w http.ResponseWriter, r *http.Request, name string) {
	if err := onlyParams(r, "path", "follow_links"); err != nil {
		writeError(w, err)
		return
	}
	p := r.URL.Query().Get("path")
	if err := checkGuestPath("path", p); err != nil {
		writeError(w, err)
		return
	}
	follow, err := boolParam(r, "follow_links")
	if err != nil {
		writeError(w, err)
		return
	}
	pi, err := s.Core.StatPath(r.Context(), name, p, follow)
	if err != nil {
		writeError(w, err)
		return
	}
	out := wire.PathInfo{Exists: pi.Exists, IsDir: pi.IsDir, IsFile: pi.IsFile, IsSymlink: pi.IsSymlink,
		Mode: int64(pi.Mode), Size: pi.Size, Error: strPtr(pi.Err)}
	if pi.IsSymlink {
		out.LinkTarget = strPtr(pi.LinkTarget)
	}
	writeJSON(w, http.StatusOK, out)
}

// stats is GET /instances/{id}/stats.
func (s *Server) stats(w http.ResponseWriter, r *http.Request, name string) {
	st, err := s.Core.VMStats(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	in, err := s.Core.Get(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	out := wire.InstanceStats{
		AllocatedMemoryBytes: st.AllocatedMemory, AllocatedVcpus: int64(st.VCPUs), CPUSeconds: st.CPUSeconds,
		InstanceID: in.ID, InstanceName: in.Name, MemoryRssBytes: st.MemoryRSS, MemoryVmsBytes: st.MemoryVMS,
		NetworkRxBytes: st.NetRx, NetworkTxBytes: st.NetTx,
	}
	if st.AllocatedMemory > 0 {
		ratio := float64(st.MemoryRSS) / float64(st.AllocatedMemory)
		out.MemoryUtilizationRatio = &ratio
	}
	writeJSON(w, http.StatusOK, out)
}

// wait is GET /instances/{id}/wait?state=S&timeout=D: it answers when
// the instance is in S, when it is Unknown (an error state: waiting on
// would not help), or when the timeout passes (timed_out). It wakes on
// the instance's lifecycle events and looks again every waitRecheck.
func (s *Server) wait(w http.ResponseWriter, r *http.Request, name string) {
	if err := onlyParams(r, "state", "timeout"); err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	if q.Get("state") == "" {
		writeError(w, fieldErr("state", "required"))
		return
	}
	want, err := parseState("state", q.Get("state"))
	if err != nil {
		writeError(w, err)
		return
	}
	timeout := defaultWait
	if v := q.Get("timeout"); v != "" {
		if timeout, err = parseDuration("timeout", v, 0); err != nil {
			writeError(w, err)
			return
		}
		timeout = min(timeout, maxWait)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	var wake <-chan struct{}
	if s.Events != nil {
		if sub, err := s.Events.Subscribe([]string{"lifecycle"}, 0); err == nil {
			defer sub.Close()
			ch := make(chan struct{}, 1)
			wake = ch
			go func() {
				for range sub.C() {
					select {
					case ch <- struct{}{}:
					default:
					}
				}
			}()
		}
	}
	tick := time.NewTicker(waitRecheck)
	defer tick.Stop()
	for {
		st, msg, err := s.stateNow(context.WithoutCancel(ctx), name)
		if err != nil {
			writeError(w, err)
			return
		}
		if st == want || st == wire.StateUnknown {
			writeJSON(w, http.StatusOK, wire.WaitForStateResponse{State: st, StateError: strPtr(msg)})
			return
		}
		select {
		case <-ctx.Done():
			if r.Context().Err() != nil {
				return // the client left
			}
			writeJSON(w, http.StatusOK, wire.WaitForStateResponse{State: st, TimedOut: true, StateError: strPtr(msg)})
			return
		case <-wake:
		case <-tick.C:
		}
	}
}
