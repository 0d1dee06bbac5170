package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// consoleCheckInterval is how often running containers' console logs are
// checked against the bound.
const consoleCheckInterval = time.Second

func (d *Driver) consolePath(id string) string { return filepath.Join(d.dir, id, "console.log") }

// runcLogFile is runc's own log (its --log), in the instance's directory.
const runcLogFile = "runc.log"

// LogFile returns the path of a container's console log or of runc's log
// (driver.LogFiler).
func (d *Driver) LogFile(id string, kind driver.LogKind) (string, error) {
	if err := validID(id); err != nil {
		return "", err
	}
	switch kind {
	case driver.LogConsole:
		return d.consolePath(id), nil
	case driver.LogRuntime:
		return filepath.Join(d.instanceDir(id), runcLogFile), nil
	}
	return "", errdefs.Invalid("unknown log kind %d", kind)
}

var _ driver.LogFiler = (*Driver)(nil)

// openConsole opens console.log for PID 1's stdout and stderr, rotating it
// first if a previous run left it over the bound. It returns the file and its
// size, where this run's output starts.
func (d *Driver) openConsole(id string) (*os.File, int64, error) {
	path := d.consolePath(id)
	d.consoleMu.Lock()
	defer d.consoleMu.Unlock()
	if err := d.rotateIfLarge(path); err != nil {
		return nil, 0, err
	}
	// O_APPEND: every write lands at the current end, so truncation by
	// the rotation makes the writer continue at offset 0.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// ConsoleLog returns console.log.1 followed by console.log: the output of
// PID 1 (all runs), at most about 2×ConsoleLogMax plus one second of output.
// An instance that never ran has an empty log.
func (d *Driver) ConsoleLog(ctx context.Context, id string) ([]byte, error) {
	if err := validID(id); err != nil {
		return nil, fmt.Errorf("console log %s: %w", id, err)
	}
	path := d.consolePath(id)
	d.consoleMu.Lock()
	defer d.consoleMu.Unlock()
	var out []byte
	for _, p := range []string{path + ".1", path} {
		b, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("console log %s: %w", id, err)
		}
		out = append(out, b...)
	}
	return out, nil
}

// ClearConsoleLog empties the console log. A running PID 1 keeps writing at
// the new end.
func (d *Driver) ClearConsoleLog(ctx context.Context, id string) error {
	if err := validID(id); err != nil {
		return fmt.Errorf("clear console log %s: %w", id, err)
	}
	path := d.consolePath(id)
	d.consoleMu.Lock()
	defer d.consoleMu.Unlock()
	for _, p := range []string{path + ".1", path} {
		if err := os.Truncate(p, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("clear console log %s: %w", id, err)
		}
	}
	return nil
}

// consoleLoop bounds the console logs of running containers. PID 1 writes
// straight to the file (no process of ours copies it), so the bound is kept
// by checking sizes every consoleCheckInterval.
func (d *Driver) consoleLoop() {
	defer close(d.loopDone)
	t := time.NewTicker(consoleCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stopLoop:
			return
		case <-t.C:
		}
		d.mu.Lock()
		ids := make([]string, 0, len(d.insts))
		for id := range d.insts {
			ids = append(ids, id)
		}
		d.mu.Unlock()
		for _, id := range ids {
			d.consoleMu.Lock()
			err := d.rotateIfLarge(d.consolePath(id))
			d.consoleMu.Unlock()
			if err != nil {
				d.log.Warn("rotate console log", "id", id, "err", err)
			}
		}
	}
}

// rotateIfLarge moves the last ConsoleLogMax bytes of an oversized
// console.log to console.log.1 and truncates console.log. The file is
// copied, not renamed: the writer's descriptor would follow a rename.
// Output written between the copy and the truncation is lost; the window is
// one copy of at most ConsoleLogMax bytes. Caller holds consoleMu.
func (d *Driver) rotateIfLarge(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	size := fi.Size()
	if size <= d.logMax {
		return nil
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".1.tmp"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, io.NewSectionReader(src, size-d.logMax, d.logMax))
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path+".1")
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Truncate(path, 0)
}
