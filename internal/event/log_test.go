package event

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
)

func TestLogHandlerPublishesOnlyWhenSubscribed(t *testing.T) {
	h := New(64, "")
	var out bytes.Buffer
	log := slog.New(NewLogHandler(slog.NewTextHandler(&out, nil), h))

	log.Info("nobody listening")
	if ev := h.Publish("probe", nil); ev.Sequence != 1 {
		t.Fatalf("a log record was published with no logging subscriber (probe is %d)", ev.Sequence)
	}

	// A subscriber to other types does not count.
	other, err := h.Subscribe([]string{api.EventTypeLifecycle}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	log.Info("still nobody")
	if ev := h.Publish("probe", nil); ev.Sequence != 2 {
		t.Fatalf("published for a lifecycle-only subscriber (probe is %d)", ev.Sequence)
	}

	s, err := h.Subscribe([]string{api.EventTypeLogging}, 0)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("now heard")
	ev := recv(t, s)
	var md api.EventLogging
	if err := json.Unmarshal(ev.Metadata, &md); err != nil {
		t.Fatal(err)
	}
	if md.Message != "now heard" || md.Level != "info" {
		t.Errorf("metadata %+v", md)
	}

	s.Close()
	log.Info("gone again")
	if ev := h.Publish("probe", nil); ev.Sequence != 4 {
		t.Fatalf("published after the logging subscriber left (probe is %d)", ev.Sequence)
	}
	// next saw every record regardless.
	if n := strings.Count(out.String(), "\n"); n != 4 {
		t.Errorf("next handler got %d records, want 4:\n%s", n, out.String())
	}
}

func TestLogHandlerRecords(t *testing.T) {
	type logFn func(l *slog.Logger)
	tests := []struct {
		name string
		log  logFn
		want api.EventLogging
	}{
		{"debug", func(l *slog.Logger) { l.Debug("d") }, api.EventLogging{Message: "d", Level: "debug", Context: map[string]string{}}},
		{"warn", func(l *slog.Logger) { l.Warn("w", "n", 3) }, api.EventLogging{Message: "w", Level: "warning", Context: map[string]string{"n": "3"}}},
		{"error", func(l *slog.Logger) { l.Error("e", "err", "boom") }, api.EventLogging{Message: "e", Level: "error", Context: map[string]string{"err": "boom"}}},
		{"custom high level", func(l *slog.Logger) { l.Log(context.Background(), slog.LevelError+4, "x") }, api.EventLogging{Message: "x", Level: "error", Context: map[string]string{}}},
		{"with attrs and groups", func(l *slog.Logger) {
			l.With("instance", "c1").WithGroup("req").With("id", 7).Info("m", "path", "/1.0", slog.Group("tls", "v", 13), slog.Group("", "inl", true), "", "dropped")
		}, api.EventLogging{Message: "m", Level: "info", Context: map[string]string{
			"instance": "c1", "req.id": "7", "req.path": "/1.0", "req.tls.v": "13", "req.inl": "true",
		}}},
		{"empty group name is a no-op", func(l *slog.Logger) { l.WithGroup("").Info("m", "k", "v") }, api.EventLogging{Message: "m", Level: "info", Context: map[string]string{"k": "v"}}},
		{"log valuer resolved", func(l *slog.Logger) { l.Info("m", "secret", redacted{}) }, api.EventLogging{Message: "m", Level: "info", Context: map[string]string{"secret": "***"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(64, "")
			s, err := h.Subscribe([]string{api.EventTypeLogging}, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var out bytes.Buffer
			next := slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})
			tt.log(slog.New(NewLogHandler(next, h)))
			var got api.EventLogging
			if err := json.Unmarshal(recv(t, s).Metadata, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
			if out.Len() == 0 {
				t.Error("next handler got nothing")
			}
		})
	}
}

// Sibling loggers derived from one parent must not see each other's attrs.
func TestLogHandlerSiblingsIndependent(t *testing.T) {
	h := New(64, "")
	s, err := h.Subscribe(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := slog.New(NewLogHandler(slog.NewTextHandler(&bytes.Buffer{}, nil), h)).With("a", 1)
	l1 := base.With("b", 2)
	l2 := base.With("c", 3)
	l1.Info("one")
	l2.Info("two")
	for _, want := range []map[string]string{{"a": "1", "b": "2"}, {"a": "1", "c": "3"}} {
		var got api.EventLogging
		if err := json.Unmarshal(recv(t, s).Metadata, &got); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got.Context); diff != "" {
			t.Errorf("context (-want +got):\n%s", diff)
		}
	}
}

// Records below next's level are neither written nor published.
func TestLogHandlerFollowsNextLevel(t *testing.T) {
	h := New(64, "")
	s, err := h.Subscribe(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	log := slog.New(NewLogHandler(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelWarn}), h))
	log.Info("filtered")
	log.Warn("kept")
	var got api.EventLogging
	if err := json.Unmarshal(recv(t, s).Metadata, &got); err != nil {
		t.Fatal(err)
	}
	if got.Message != "kept" {
		t.Errorf("first published record %q, want kept", got.Message)
	}
}

type redacted struct{}

func (redacted) LogValue() slog.Value { return slog.StringValue("***") }
