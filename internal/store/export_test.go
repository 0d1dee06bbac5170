package store

import (
	"context"
	"fmt"
)

// AddProjectForTest stores a project row, for tests of what projects hold
// before the projects' own store methods exist here.
func AddProjectForTest(ctx context.Context, s *Store, name string) error {
	if _, err := s.w.ExecContext(ctx, "INSERT INTO projects (name) VALUES (?)", name); err != nil {
		return fmt.Errorf("add project %q: %w", name, err)
	}
	return nil
}
