package instance

import "context"

// ConsoleLog returns what PID 1 wrote to stdout and stderr, bounded in size.
func (s *Service) ConsoleLog(ctx context.Context, name string) ([]byte, error) {
	in, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	rec, _, _ := s.snapshot(in)
	return s.driverOf(rec).ConsoleLog(ctx, runtimeID(rec.ID))
}

// ClearConsoleLog empties an instance's console log.
func (s *Service) ClearConsoleLog(ctx context.Context, name string) error {
	in, err := s.lookup(name)
	if err != nil {
		return err
	}
	rec, _, _ := s.snapshot(in)
	return s.driverOf(rec).ClearConsoleLog(ctx, runtimeID(rec.ID))
}
