package instance

import (
	"context"
	"errors"
	"io"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// ConsoleLog returns what PID 1 wrote to stdout and stderr, bounded in size.
func (s *Service) ConsoleLog(ctx context.Context, name string) ([]byte, error) {
	if err := s.allow(ctx, name, canExec); err != nil {
		return nil, err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	rec, _, _ := s.snapshot(in)
	return s.driverOf(rec).ConsoleLog(ctx, runtimeID(rec.ID))
}

// ClearConsoleLog empties an instance's console log.
func (s *Service) ClearConsoleLog(ctx context.Context, name string) error {
	if err := s.allow(ctx, name, canExec); err != nil {
		return err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return err
	}
	rec, _, _ := s.snapshot(in)
	return s.driverOf(rec).ClearConsoleLog(ctx, runtimeID(rec.ID))
}

// AttachConsole attaches to a running instance's console (driver.ConsoleAttacher).
func (s *Service) AttachConsole(ctx context.Context, name string) (io.ReadWriteCloser, error) {
	if err := s.allow(ctx, name, canExec); err != nil {
		return nil, err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	rec, status, _ := s.snapshot(in)
	if status != StatusRunning && status != StatusFrozen {
		return nil, errdefs.Invalid("instance %q is not running", name)
	}
	ca, ok := s.driverOf(rec).(driver.ConsoleAttacher)
	if !ok {
		return nil, errdefs.NotImplemented("this instance type has no attachable console")
	}
	c, err := ca.AttachConsole(ctx, runtimeID(rec.ID))
	if errors.Is(err, driver.ErrNotRunning) {
		return nil, errdefs.Invalid("instance %q is not running", name)
	}
	return c, err
}
