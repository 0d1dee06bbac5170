package event

import (
	"context"
	"log/slog"
)

// NewLogHandler returns a slog.Handler that passes every record to next and,
// while some subscription receives logging events, also publishes it to hub
// as a "logging" event (LXD's `lxc monitor --type=logging`).
//
// Which records are published follows next: a record next is not enabled for
// never reaches this handler, as with LXD, where the event stream carries
// what the daemon logs. When nobody subscribes to logging, the extra cost per
// record is one atomic load.
func NewLogHandler(next slog.Handler, hub *Hub) slog.Handler {
	return &logHandler{next: next, hub: hub}
}

type logHandler struct {
	next   slog.Handler
	hub    *Hub
	attrs  []kv   // from WithAttrs, already flattened and prefixed
	prefix string // open groups, "a.b."
}

type kv struct{ k, v string }

func (h *logHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.next.Enabled(ctx, level)
}

func (h *logHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.next.Handle(ctx, r)
	if !h.hub.WantsLogging() {
		return err
	}
	m := make(map[string]string, len(h.attrs)+r.NumAttrs())
	for _, a := range h.attrs {
		m[a.k] = a.v
	}
	r.Attrs(func(a slog.Attr) bool {
		flatten(h.prefix, a, func(k, v string) { m[k] = v })
		return true
	})
	h.hub.Logging(levelName(r.Level), r.Message, m)
	// A failure of next is the caller's business; the event was still sent.
	return err
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	c := *h
	c.next = h.next.WithAttrs(attrs)
	// Full slice expression: siblings derived from h must not share the
	// appended tail.
	c.attrs = h.attrs[:len(h.attrs):len(h.attrs)]
	for _, a := range attrs {
		flatten(h.prefix, a, func(k, v string) { c.attrs = append(c.attrs, kv{k, v}) })
	}
	return &c
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.prefix = h.prefix + name + "."
	return &c
}

// flatten renders a as string key/value pairs, groups as dotted keys,
// following slog's rules: empty keys are dropped, except that an empty-keyed
// group is inlined.
func flatten(prefix string, a slog.Attr, emit func(k, v string)) {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, ga := range v.Group() {
			flatten(p, ga, emit)
		}
		return
	}
	if a.Key == "" {
		return
	}
	emit(prefix+a.Key, v.String())
}

// levelName maps slog levels to the names LXD uses in logging events.
func levelName(l slog.Level) string {
	switch {
	case l < slog.LevelInfo:
		return "debug"
	case l < slog.LevelWarn:
		return "info"
	case l < slog.LevelError:
		return "warning"
	default:
		return "error"
	}
}
