package instance

import (
	"context"
	"fmt"
	"slices"

	"github.com/hangar-dev/hangar/internal/driver"
)

// Running names a running instance for readers of its figures (package
// metrics): what to label them with and which runtime to ask.
type Running struct {
	Name    string
	Project string
	Type    Type
	// runtimeID is the driver's name for it.
	runtimeID string
}

// Running lists the instances of every project that run (frozen ones
// too: their processes and memory are there), by project and name. The list is a moment's: any may
// stop before it is read.
func (s *Service) Running(ctx context.Context) []Running {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Running, 0, len(s.byName))
	for r, in := range s.byName {
		if in.status != StatusRunning && in.status != StatusFrozen && in.status != StatusFreezing {
			continue
		}
		out = append(out, Running{Name: r.name, Project: r.project, Type: Type(in.rec.Type), runtimeID: runtimeID(in.rec.ID)})
	}
	slices.SortFunc(out, func(a, b Running) int {
		return compareRefs(ref{a.Project, a.Name}, ref{b.Project, b.Name})
	})
	return out
}

// Metrics reads a running instance's figures from its driver, its root
// filesystem named after its root disk device. driver.ErrNotRunning
// (wrapped) when it stopped since Running listed it; a driver that cannot
// read figures gives none.
func (s *Service) Metrics(ctx context.Context, r Running) (driver.Metrics, error) {
	mr, ok := s.driverFor(r.Type).(driver.MetricsReader)
	if !ok {
		return driver.Metrics{Processes: -1}, nil
	}
	m, err := mr.Metrics(ctx, r.runtimeID)
	if err != nil {
		return driver.Metrics{}, fmt.Errorf("metrics of %s: %w", r.Name, err)
	}
	for i, f := range m.Filesystem {
		if f.Device == "" {
			m.Filesystem[i].Device = s.rootDevice(ref{r.Project, r.Name})
		}
	}
	return m, nil
}

// rootDevice is the name of an instance's root disk device ("root" when
// it cannot be told).
func (s *Service) rootDevice(r ref) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	in, ok := s.byName[r]
	if !ok {
		return "root"
	}
	views, _ := s.profileViewsLocked(profileRefs(in.rec))
	root, err := rootDiskOf(expandDevices(in.rec.Devices, views))
	if err != nil || root.Device == "" {
		return "root"
	}
	return root.Device
}
