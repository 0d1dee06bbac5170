package instance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/driver/logtail"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/event"
)

// An instance's logs as line streams (StreamLog, the instances API's
// GET /instances/{id}/logs):
//
//   - LogApp: what its workload prints. The driver's console log: a
//     container's PID 1 writes it; a VM's workload writes a virtio-serial
//     port that QEMU appends to it, beside the serial console.
//   - LogVMM: the runtime's own log (QEMU's stdout and stderr; runc's log).
//   - LogHangar: hangar.log in the instance's log directory, one line per
//     thing the daemon did to the instance, written as its lifecycle
//     event is emitted (hangarLogEmitter: every event passes through it,
//     so no action is logged in one place and forgotten in another).
//
// The streaming itself (tail read backwards, follow on inotify, rotation
// and truncation) is package logtail's.

// LogSource names one of an instance's logs.
type LogSource string

// Log sources.
const (
	LogApp    LogSource = "app"    // the guest console: the workload's output
	LogVMM    LogSource = "vmm"    // QEMU's own log
	LogHangar LogSource = "hangar" // one line per action the daemon took
)

// StreamLog emits the last tail lines of an instance's log (tail < 0:
// all), then, with follow, new lines until ctx ends (it then returns nil)
// or the instance is deleted (a not-found error). Lines come in batches,
// without their newline; emit must copy what it keeps, and an error from
// it ends the stream.
func (s *Service) StreamLog(ctx context.Context, name string, source LogSource, tail int, follow bool, emit func(lines [][]byte) error) error {
	// Console output is as private as an exec's: the console log's right.
	if err := s.allow(ctx, name, canExec); err != nil {
		return err
	}
	switch source {
	case LogApp, LogVMM, LogHangar:
	default:
		return errdefs.Invalid("log source %q is not one of %s, %s, %s", source, LogApp, LogVMM, LogHangar)
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return err
	}
	rec, _, _ := s.snapshot(in)
	var path string
	if source == LogHangar {
		if s.cfg.LogDir == "" {
			return errdefs.NotImplemented("the daemon's instance log needs a log directory")
		}
		path = s.hangarLogPath(rec.ID)
	} else {
		lf, ok := s.driverOf(rec).(driver.LogFiler)
		if !ok {
			return errdefs.NotImplemented("this instance type keeps no %s log", source)
		}
		kind := driver.LogConsole
		if source == LogVMM {
			kind = driver.LogRuntime
		}
		if path, err = lf.LogFile(runtimeID(rec.ID), kind); err != nil {
			return fmt.Errorf("%s log of %s: %w", source, name, err)
		}
	}
	err = logtail.Stream(ctx, path, tail, follow, emit)
	if errors.Is(err, logtail.ErrGone) {
		return errdefs.NotFound("instance %q was deleted", name)
	}
	return err
}

// The daemon's log of an instance: hangar.log, and hangar.log.1 before it.
const (
	hangarLogName = "hangar.log"
	// hangarLogMax bounds hangar.log: past it, it becomes hangar.log.1
	// (replacing the one before) and a new one starts, so the two hold
	// at most twice this. Renaming, not truncating in place, keeps a
	// following reader exact: it finishes the old file, then reads the
	// new one from its start.
	hangarLogMax = 1 << 20
)

func (s *Service) hangarLogPath(id int64) string {
	return filepath.Join(s.logDir(id), hangarLogName)
}

// hangarLogEmitter is the Emitter the service emits through: before it
// passes an instance's event (or its snapshot's, or backup's) on, it
// appends the action to the instance's hangar.log.
type hangarLogEmitter struct {
	next Emitter
	s    *Service
	mu   sync.Mutex // one append (and rotation) at a time
	now  func() time.Time
}

// Lifecycle logs the event, then emits it.
func (h *hangarLogEmitter) Lifecycle(ctx context.Context, action string, e event.Entity, meta map[string]any) {
	h.log(e, action, meta)
	if h.next != nil {
		h.next.Lifecycle(ctx, action, e, meta)
	}
}

func (h *hangarLogEmitter) log(e event.Entity, action string, meta map[string]any) {
	if h.s.cfg.LogDir == "" || action == "instance-deleted" {
		return // the log goes with the instance
	}
	name, sub := e.Name, ""
	switch e.Kind {
	case event.EntityInstance:
	case event.EntityInstanceSnapshot, event.EntityInstanceBackup:
		name, sub, _ = strings.Cut(e.Name, "/")
	default:
		return
	}
	h.s.mu.RLock()
	in, ok := h.s.byName[ref{e.Project, name}]
	var id int64
	if ok {
		id = in.rec.ID
	}
	h.s.mu.RUnlock()
	if !ok {
		return
	}
	line := hangarLogLine(h.now(), action, sub, meta)
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := appendBounded(h.s.hangarLogPath(id), line, hangarLogMax); err != nil {
		h.s.log.Warn("write the instance's daemon log", "instance", name, "action", action, "err", err)
	}
}

// hangarLogLine renders one action: "TIME ACTION [NAME] [key=value...]",
// the action without LXD's "instance-" prefix, a stateful stop as
// "standby".
func hangarLogLine(t time.Time, action, sub string, meta map[string]any) []byte {
	a := strings.TrimPrefix(action, "instance-")
	if a == "stopped" && meta["stateful"] == true {
		a = "standby"
	}
	var b strings.Builder
	b.WriteString(t.UTC().Format(time.RFC3339Nano))
	b.WriteByte(' ')
	b.WriteString(a)
	if sub != "" {
		b.WriteByte(' ')
		b.WriteString(quoteIfNeeded(sub))
	}
	keys := make([]string, 0, len(meta))
	for k := range meta {
		if k != "stateful" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, quoteIfNeeded(fmt.Sprint(meta[k])))
	}
	b.WriteByte('\n')
	return []byte(b.String())
}

func quoteIfNeeded(v string) string {
	if v == "" || strings.ContainsAny(v, " \t\n\r\"=") || !strconv.CanBackquote(v) {
		return strconv.Quote(v)
	}
	return v
}

// appendBounded appends line to path, first moving a file that would grow
// past max to path.1.
func appendBounded(path string, line []byte, max int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	if st, err := os.Stat(path); err == nil && st.Size()+int64(len(line)) > max {
		if err := os.Rename(path, path+".1"); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(line)
	return errors.Join(err, f.Close())
}
