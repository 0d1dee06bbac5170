package instance

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// An instance's log files, served under /1.0/instances/NAME/logs:
//
//	console.log                    PID 1's output (the driver keeps it)
//	exec-output/exec_<op>.stdout   recorded output of an exec (record-output)
//	exec-output/exec_<op>.stderr
//
// Recorded outputs live in Config.LogDir/<runtime id>/exec-output, so a
// rename keeps them and a delete removes them.

const (
	consoleLogName = "console.log"
	execOutputDir  = "exec-output"
)

func (s *Service) logDir(id int64) string {
	return filepath.Join(s.cfg.LogDir, runtimeID(id))
}

// ExecOutput is where a recorded exec writes.
type ExecOutput struct {
	Stdout, Stderr *os.File
	// StdoutName and StderrName are the files' names among the
	// instance's exec outputs (ExecOutputs, OpenExecOutput).
	StdoutName, StderrName string
}

// Close closes both files.
func (o *ExecOutput) Close() error {
	return errors.Join(o.Stdout.Close(), o.Stderr.Close())
}

// CreateExecOutput creates the two files of a recorded exec named base.
func (s *Service) CreateExecOutput(ctx context.Context, name, base string) (*ExecOutput, error) {
	if err := s.allow(ctx, name, canExec); err != nil {
		return nil, err
	}
	if s.cfg.LogDir == "" {
		return nil, errdefs.NotImplemented("recording exec output needs a log directory")
	}
	if err := validLogName(base); err != nil {
		return nil, err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	rec, _, _ := s.snapshot(in)
	dir := filepath.Join(s.logDir(rec.ID), execOutputDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("exec output: %w", err)
	}
	out := &ExecOutput{}
	for _, f := range []struct {
		file **os.File
		name *string
		ext  string
	}{{&out.Stdout, &out.StdoutName, ".stdout"}, {&out.Stderr, &out.StderrName, ".stderr"}} {
		fh, err := os.OpenFile(filepath.Join(dir, base+f.ext), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			if out.Stdout != nil {
				out.Stdout.Close()
			}
			return nil, fmt.Errorf("exec output: %w", err)
		}
		*f.file = fh
		*f.name = base + f.ext
	}
	return out, nil
}

// Logs lists an instance's log files (the top level of its logs).
func (s *Service) Logs(ctx context.Context, name string) ([]string, error) {
	if err := s.allow(ctx, name, canView); err != nil {
		return nil, err
	}
	if _, err := s.lookup(ctx, name); err != nil {
		return nil, err
	}
	return []string{consoleLogName}, nil
}

// Log returns a top-level log file's content.
func (s *Service) Log(ctx context.Context, name, file string) ([]byte, error) {
	if err := s.allow(ctx, name, canView); err != nil {
		return nil, err
	}
	if file != consoleLogName {
		return nil, errdefs.NotFound("log file %q not found", file)
	}
	return s.ConsoleLog(ctx, name)
}

// DeleteLog empties or removes a top-level log file.
func (s *Service) DeleteLog(ctx context.Context, name, file string) error {
	if err := s.allow(ctx, name, canEdit); err != nil {
		return err
	}
	if file != consoleLogName {
		return errdefs.NotFound("log file %q not found", file)
	}
	return s.ClearConsoleLog(ctx, name)
}

// ExecOutputs lists an instance's recorded exec outputs, by name.
func (s *Service) ExecOutputs(ctx context.Context, name string) ([]string, error) {
	if err := s.allow(ctx, name, canExec); err != nil {
		return nil, err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return nil, err
	}
	rec, _, _ := s.snapshot(in)
	if s.cfg.LogDir == "" {
		return []string{}, nil
	}
	entries, err := os.ReadDir(filepath.Join(s.logDir(rec.ID), execOutputDir))
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list exec outputs of %s: %w", name, err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Type().IsRegular() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// OpenExecOutput opens one recorded exec output.
func (s *Service) OpenExecOutput(ctx context.Context, name, file string) (*os.File, error) {
	if err := s.allow(ctx, name, canExec); err != nil {
		return nil, err
	}
	p, err := s.execOutputPath(ctx, name, file)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound("exec output %q not found", file)
	}
	return f, err
}

// DeleteExecOutput removes one recorded exec output.
func (s *Service) DeleteExecOutput(ctx context.Context, name, file string) error {
	if err := s.allow(ctx, name, canExec); err != nil {
		return err
	}
	p, err := s.execOutputPath(ctx, name, file)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.NotFound("exec output %q not found", file)
	}
	return err
}

func (s *Service) execOutputPath(ctx context.Context, name, file string) (string, error) {
	if err := validLogName(file); err != nil {
		return "", err
	}
	in, err := s.lookup(ctx, name)
	if err != nil {
		return "", err
	}
	rec, _, _ := s.snapshot(in)
	if s.cfg.LogDir == "" {
		return "", errdefs.NotFound("exec output %q not found", file)
	}
	return filepath.Join(s.logDir(rec.ID), execOutputDir, file), nil
}

// validLogName accepts a plain file name: no directories, no dot files.
func validLogName(n string) error {
	if n == "" || strings.ContainsAny(n, "/\\\x00") || strings.HasPrefix(n, ".") || len(n) > 255 {
		return errdefs.Invalid("log file name %q is not valid", n)
	}
	return nil
}

// removeLogs deletes an instance's log directory.
func (s *Service) removeLogs(id int64) error {
	if s.cfg.LogDir == "" {
		return nil
	}
	return os.RemoveAll(s.logDir(id))
}
