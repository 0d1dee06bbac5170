package instance

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// Containers and virtual machines share the instance API; what differs by
// type is chosen here: the driver (Config.Drivers), and the config keys
// that apply to one type only.

// typeOnlyKeys are config keys that mean something for one type only.
var typeOnlyKeys = map[string]Type{
	"security.secureboot": TypeVM,
	keyAgentSkip:          TypeVM,
	keyMemoryHotplug:      TypeVM,
	"security.privileged": TypeContainer,
	"limits.processes":    TypeContainer,
}

// driverFor returns the driver of an instance type. Create refuses types
// without one, so every stored instance has one.
func (s *Service) driverFor(typ Type) driver.Driver { return s.cfg.Drivers[typ] }

func (s *Service) driverOf(rec store.Instance) driver.Driver { return s.driverFor(Type(rec.Type)) }

// validateForType refuses keys of the other instance type, and VM memory
// below what a guest needs.
func (s *Service) validateForType(typ Type, cfg map[string]string) error {
	if typ == "" {
		typ = TypeContainer
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if only, ok := typeOnlyKeys[k]; ok && only != typ {
			return errdefs.Invalid("config key %q applies to %ss only, not to a %s", k, only, typ)
		}
	}
	if v := cfg["limits.memory"]; typ == TypeVM && v != "" {
		b, err := parseMemory(v, s.cfg.HostMemory)
		if err != nil {
			return errdefs.Invalid("limits.memory: %v", err)
		}
		if b < minVMMemory {
			return errdefs.Invalid("limits.memory: %s is below the %d MiB a virtual machine needs", v, minVMMemory>>20)
		}
	}
	if typ == TypeVM && cfg[keyMemoryHotplug] != "" {
		return s.checkHotplug(cfg)
	}
	return nil
}

// recoverDrivers asks every driver for what it still runs.
func (s *Service) recoverDrivers(ctx context.Context) (map[string]driver.State, error) {
	live := map[string]driver.State{}
	types := make([]Type, 0, len(s.cfg.Drivers))
	for typ := range s.cfg.Drivers {
		types = append(types, typ)
	}
	slices.Sort(types)
	seen := map[driver.Driver]bool{}
	for _, typ := range types {
		d := s.cfg.Drivers[typ]
		if seen[d] {
			continue // one driver serving two types answers once
		}
		seen[d] = true
		more, err := d.Recover(ctx)
		if err != nil {
			return nil, fmt.Errorf("recover %s instances: %w", typ, err)
		}
		for id, st := range more {
			live[id] = st
		}
	}
	return live, nil
}
