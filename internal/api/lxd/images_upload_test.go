package lxd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/image"
	"github.com/hangar-dev/hangar/internal/operation"
)

// readingImages imports as the image store does: it reads the upload to
// its end (or until its ctx ends), failing as the store does when the read
// fails; refuseAfter > 0 refuses the upload after that many bytes, as a
// bomb is refused.
type readingImages struct {
	fakeImages
	refuseAfter int64
}

func (f readingImages) Import(ctx context.Context, r io.Reader, _ image.ImportMeta) (api.Image, error) {
	buf := make([]byte, 4096)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return api.Image{}, fmt.Errorf("%w: %w", errdefs.ErrCancelled, err)
		}
		k, err := r.Read(buf)
		n += int64(k)
		if f.refuseAfter > 0 && n >= f.refuseAfter {
			return api.Image{}, errdefs.Invalid("image expands beyond 1MiB")
		}
		if err == io.EOF {
			return api.Image{Fingerprint: fakeFP}, nil
		}
		if err != nil {
			return api.Image{}, fmt.Errorf("read upload: %w", err)
		}
	}
}

// cutBody yields n bytes, then fails as a body whose client went away.
type cutBody struct {
	n    int
	read int
}

func (b *cutBody) Read(p []byte) (int, error) {
	if b.read >= b.n {
		return 0, io.ErrUnexpectedEOF
	}
	k := min(len(p), b.n-b.read)
	b.read += k
	return k, nil
}

// logRecorder keeps the levels and messages logged.
type logRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

func (l *logRecorder) find(level slog.Level, msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.recs {
		if r.Level == level && strings.Contains(r.Message, msg) {
			return true
		}
	}
	return false
}

func (l *logRecorder) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if r.Level >= slog.LevelError {
			out = append(out, r.Message)
		}
	}
	return out
}

// countingBody is a body that says how much of it was read.
type countingBody struct {
	r    io.Reader
	read int
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read += n
	return n, err
}

// TestUploadInterrupted: a client that goes away mid-upload is logged at
// info, its operation ends cancelled and nothing answers 500; a refused
// upload is drained before the answer, so a client still sending reads it.
func TestUploadInterrupted(t *testing.T) {
	tests := []struct {
		name        string
		body        func() io.Reader
		cancel      bool // the client's request ends before the import reads
		refuseAfter int64
		wantStatus  int
		wantErr     string
		wantOp      api.StatusCode // 0: no operation expected in the answer
		wantLog     string         // an info line
		wantRead    int            // with a countingBody: bytes read, at least
	}{
		{name: "body cut short", body: func() io.Reader { return &cutBody{n: 100 << 10} },
			wantStatus: 400, wantErr: "upload interrupted after 102400 bytes: unexpected EOF", wantLog: "image upload interrupted by the client"},
		{name: "client gone before the body", body: func() io.Reader { return &cutBody{n: 1 << 20} }, cancel: true,
			wantStatus: 400, wantErr: "context canceled", wantLog: "image upload interrupted by the client"},
		{name: "whole upload", body: func() io.Reader { return strings.NewReader("a tarball") },
			wantStatus: 202, wantOp: api.Success},
		{name: "refused early is drained", body: func() io.Reader {
			return &countingBody{r: strings.NewReader(strings.Repeat("x", 3<<20))}
		}, refuseAfter: 8 << 10, wantStatus: 400, wantErr: "image expands beyond 1MiB", wantRead: 3 << 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logRecorder{}
			hub := event.New(100, "none")
			defer hub.Close()
			ops := operation.New(hub, time.Minute)
			defer ops.Close()
			s := &Server{Images: readingImages{refuseAfter: tc.refuseAfter}, Ops: ops, Events: hub, Log: slog.New(logs)}
			body := tc.body()
			req := httptest.NewRequest(http.MethodPost, "/1.0/images", body)
			req.Header.Set("Content-Type", "application/octet-stream")
			ctx, cancel := context.WithCancel(req.Context())
			defer cancel()
			if tc.cancel {
				cancel()
			}
			req = req.WithContext(ctx)
			rec := httptest.NewRecorder()
			s.createImage(rec, req)

			var env api.Response
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
				t.Fatalf("answer %q: %v", rec.Body.String(), err)
			}
			if rec.Code != tc.wantStatus || !strings.Contains(env.Error, tc.wantErr) {
				t.Errorf("answer %d %q, want %d containing %q", rec.Code, env.Error, tc.wantStatus, tc.wantErr)
			}
			if tc.wantLog != "" && !logs.find(slog.LevelInfo, tc.wantLog) {
				t.Errorf("no info line %q", tc.wantLog)
			}
			if errs := logs.errors(); len(errs) > 0 {
				t.Errorf("logged at error: %v", errs)
			}
			all := ops.List()
			if len(all) != 1 {
				t.Fatalf("%d operations", len(all))
			}
			switch {
			case tc.wantLog != "" && all[0].StatusCode != api.Cancelled:
				t.Errorf("interrupted upload's operation: %s (%s), want Cancelled", all[0].Status, all[0].Err)
			case tc.wantOp != 0 && all[0].StatusCode != tc.wantOp:
				t.Errorf("operation %s (%s), want %s", all[0].Status, all[0].Err, tc.wantOp)
			}
			if cb, ok := body.(*countingBody); ok && cb.read < tc.wantRead {
				t.Errorf("%d bytes of the refused body read before answering, want %d", cb.read, tc.wantRead)
			}
		})
	}
}
