package network

import (
	"context"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/auth"
)

// Authorizer is what the manager asks before it acts: every exported
// method an edge calls starts with one check, so no dialect can forget
// it. internal/auth implements it; a nil Authorizer allows everything and
// is for this package's unit tests only (the daemon always wires one).
type Authorizer interface {
	Check(ctx context.Context, o auth.Object, e auth.Entitlement) error
	CanView(ctx context.Context, o auth.Object) bool
}

// allow checks e on the network name of ctx's scope project (host
// interfaces are the default project's, as their listing).
func (m *Manager) allow(ctx context.Context, name string, e auth.Entitlement) error {
	if m.cfg.Authorizer == nil {
		return nil
	}
	return m.cfg.Authorizer.Check(ctx, auth.Network(scope(ctx), name), e)
}

// allowCreate checks that ctx may create networks where its project
// keeps them.
func (m *Manager) allowCreate(ctx context.Context) error {
	if m.cfg.Authorizer == nil {
		return nil
	}
	return m.cfg.Authorizer.Check(ctx, auth.Project(scope(ctx)), auth.CanCreateNetworks)
}

// viewable keeps the networks ctx may see, in order.
func (m *Manager) viewable(ctx context.Context, nets []Network) []Network {
	if m.cfg.Authorizer == nil {
		return nets
	}
	p := scope(ctx)
	out := nets[:0]
	for _, n := range nets {
		if m.cfg.Authorizer.CanView(ctx, auth.Network(p, n.Name)) {
			out = append(out, n)
		}
	}
	return out
}

// inUse is the refusal of a change to a network in use. users is every
// user (Users as the daemon: a user the caller cannot see still holds
// the network), shown what the caller may see of them: the others are
// counted, not named, so another project's names do not leak.
func inUse(users, shown []string) string {
	hidden := len(users) - len(shown)
	switch {
	case hidden <= 0:
		return strings.Join(users, ", ")
	case len(shown) == 0:
		return strconv.Itoa(hidden) + " object(s) in projects you cannot see"
	}
	return strings.Join(shown, ", ") + " and " + strconv.Itoa(hidden) + " object(s) in projects you cannot see"
}

// users returns every user of network (whoever asks) and those the
// caller may see.
func (m *Manager) users(ctx context.Context, network string) (all, shown []string, err error) {
	all, err = m.cfg.Users(auth.AsDaemon(ctx), network)
	if err != nil || len(all) == 0 {
		return all, all, err
	}
	shown, err = m.cfg.Users(ctx, network)
	return all, shown, err
}
