package autostandby

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Instance is what the controller needs to know of one instance.
type Instance struct {
	Project, Name string
	// VM: only virtual machines have a stateful stop.
	VM bool
	// Running: the instance runs (not stopped, not frozen).
	Running bool
	// Standby: the instance is stopped with a saved state waiting on
	// disk (the core's Stateful), whoever stopped it: this controller, a
	// user's standby, or a daemon before a restart. A connection to it
	// wakes it when its policy is enabled.
	Standby bool
	// Config is the expanded config (the autostandby.* keys).
	Config map[string]string
	// HasNIC: the instance has a network interface at all.
	HasNIC bool
	// Addrs are the instance's addresses on managed networks: kept while
	// it is stopped (leases survive stops), so a standby instance's
	// address is known.
	Addrs  []netip.Addr
	HasGPU bool
}

// Core is the instance service as the controller uses it (the daemon
// adapts internal/instance to it).
type Core interface {
	// Instances lists every instance of every project, as the daemon.
	Instances(ctx context.Context) ([]Instance, error)
	// Instance reads one instance as ctx's caller: an error (not found,
	// forbidden) when the caller may not see it, like the core's Get.
	Instance(ctx context.Context, project, name string) (Instance, error)
	// Standby stops an instance statefully (its RAM saved), as the daemon.
	Standby(ctx context.Context, project, name string) error
	// Start starts (for a standby instance: restores) an instance, as the
	// daemon.
	Start(ctx context.Context, project, name string) error
	// Emit publishes a lifecycle event of the instance.
	Emit(ctx context.Context, project, name, action string, meta map[string]any)
}

// Config wires a Controller.
type Config struct {
	Core      Core
	Conntrack Conntrack
	// Interval is the poll period (default 1s); WakeInterval the faster
	// one used while some instance is in standby (default 100ms): a
	// client's SYN waits for the next poll, then for its own retransmit.
	Interval, WakeInterval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Controller runs the policy: see the package doc.
type Controller struct {
	cfg Config

	mu     sync.Mutex
	insts  map[ref]*target // the last list, by project and name
	tracks map[ref]*track
	listed time.Time // when insts was read
	// obsErr is the last conntrack dump's error (nil: it worked).
	obsErr error

	work sync.WaitGroup // standby and wake calls under way
}

type ref struct{ project, name string }

// target is a listed instance with its parsed policy.
type target struct {
	Instance
	pol    Policy
	polErr error
}

// phase is the controller's own view of an instance.
type phase int

const (
	phaseRunning          phase = iota // not in standby (or not to be woken)
	phaseStandbyRequested              // Standby under way
	phaseStandby                       // in standby, policy enabled: a knock wakes it
	phaseWaking                        // Start under way after a knock
)

// track is what the controller observed of one instance.
type track struct {
	phase        phase
	active       int64
	lastActivity time.Time
	idleSince    time.Time // zero while active or not observed
	holdUntil    time.Time
	retryAt      time.Time // no new standby or wake before
	// changedAt is when a standby or wake of the controller's ended: a
	// list read before it says less than the call's outcome.
	changedAt time.Time
}

// New makes a Controller; Run drives it.
func New(cfg Config) *Controller {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.WakeInterval <= 0 {
		cfg.WakeInterval = 100 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Controller{cfg: cfg, insts: map[ref]*target{}, tracks: map[ref]*track{}}
}

// Run polls until ctx ends, then waits for the standby and wake calls it
// started.
func (c *Controller) Run(ctx context.Context) {
	defer c.work.Wait()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.poll(ctx)
		t.Reset(c.nextPoll())
	}
}

// nextPoll is the fast period while an instance to be woken is in
// standby (a knock must be seen fast), else the slow one.
func (c *Controller) nextPoll() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tracks {
		if t.phase == phaseStandby {
			return c.cfg.WakeInterval
		}
	}
	return c.cfg.Interval
}

// poll reads the instances (at most once per Interval) and the conntrack
// table (once), updates every track and starts the standbys and wakes
// that are due.
func (c *Controller) poll(ctx context.Context) {
	now := c.cfg.Now()
	c.mu.Lock()
	stale := c.listed.IsZero() || now.Sub(c.listed) >= c.cfg.Interval
	c.mu.Unlock()
	if stale {
		list, err := c.cfg.Core.Instances(ctx)
		if err != nil {
			if ctx.Err() == nil {
				c.cfg.Log.Error("auto-standby: list instances", "err", err)
			}
		} else {
			c.setList(list, now)
		}
	}
	flows, err := c.cfg.Conntrack.TCPFlows(ctx)
	if err != nil && ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil && c.obsErr == nil {
		c.cfg.Log.Error("auto-standby: read conntrack", "err", err)
	}
	c.obsErr = err
	for r, in := range c.insts {
		t := c.tracks[r]
		if t == nil {
			t = &track{}
			c.tracks[r] = t
		}
		c.step(ctx, r, in, t, flows, err == nil, now)
	}
}

// setList replaces the instance list read from now on; tracks of
// instances gone go too.
func (c *Controller) setList(list []Instance, now time.Time) {
	insts := make(map[ref]*target, len(list))
	for _, in := range list {
		pol, err := ParsePolicy(in.Config)
		insts[ref{in.Project, in.Name}] = &target{Instance: in, pol: pol, polErr: err}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// A standby or wake under way, or one that ended after the list was
	// read, knows the instance's power state better than the list.
	for r, t := range c.tracks {
		in, ok := insts[r]
		switch {
		case !ok && t.phase != phaseStandbyRequested && t.phase != phaseWaking:
			delete(c.tracks, r)
		case !ok:
		case t.phase == phaseStandbyRequested:
			in.Running, in.Standby = true, false
		case t.phase == phaseWaking:
			in.Running, in.Standby = false, true
		case t.changedAt.IsZero() || t.changedAt.Before(now):
		case t.phase == phaseStandby:
			in.Running, in.Standby = false, true
		default: // woken
			in.Running, in.Standby = true, false
		}
	}
	c.insts, c.listed = insts, now
}

// step advances one instance's track by one poll; the caller holds c.mu.
func (c *Controller) step(ctx context.Context, r ref, in *target, t *track, flows []Flow, observed bool, now time.Time) {
	pol := in.pol
	enabled := in.polErr == nil && pol.Enabled && in.VM
	switch {
	case t.phase == phaseStandbyRequested || t.phase == phaseWaking:
		return // the call under way decides
	case !in.Running:
		if !in.Standby || !enabled {
			// Stopped without a saved state, or in a standby nobody
			// asked to wake (no enabled policy): nothing to do.
			*t = track{holdUntil: t.holdUntil}
			return
		}
		// In standby, whoever put it there (this controller, a user,
		// the daemon before a restart): a knock wakes it.
		if t.phase != phaseStandby {
			*t = track{phase: phaseStandby, holdUntil: t.holdUntil}
		}
		if !observed || now.Before(t.retryAt) {
			return
		}
		for _, f := range flows {
			if pol.wakes(f, in.Addrs) {
				c.wake(ctx, r, t, f, now)
				return
			}
		}
		return
	case t.phase == phaseStandby:
		// Started by someone else (a user's start or restore).
		t.phase = phaseRunning
		t.idleSince = now
	}
	if !observed {
		return
	}
	var n int64
	for _, f := range flows {
		if pol.qualifies(f, in.Addrs) {
			n++
		}
	}
	t.active = n
	if n > 0 {
		t.lastActivity, t.idleSince = now, time.Time{}
		return
	}
	if t.idleSince.IsZero() {
		t.idleSince = now
	}
	if !enabled || len(in.Addrs) == 0 || in.HasGPU {
		return
	}
	if next := t.nextStandby(pol); !now.Before(next) && !now.Before(t.retryAt) {
		c.standby(ctx, r, t, pol, now)
	}
}

// nextStandby is when an idle instance goes to standby: idle_timeout
// after it became idle, and not before a hold ends.
func (t *track) nextStandby(pol Policy) time.Time {
	next := t.idleSince.Add(pol.IdleTimeout)
	if t.holdUntil.After(next) {
		next = t.holdUntil
	}
	return next
}

// standby puts an idle instance in standby in the background (saving a
// VM's RAM takes seconds, and knocks must still be seen meanwhile); the
// caller holds c.mu.
func (c *Controller) standby(ctx context.Context, r ref, t *track, pol Policy, now time.Time) {
	t.phase = phaseStandbyRequested
	idle := now.Sub(t.idleSince)
	c.cfg.Log.Info("auto-standby: instance idle, putting it in standby", "project", r.project, "instance", r.name,
		"idle_timeout", pol.IdleTimeout, "idle_for", idle.Round(time.Millisecond))
	c.work.Add(1)
	go func() {
		defer c.work.Done()
		err := c.cfg.Core.Standby(ctx, r.project, r.name)
		c.mu.Lock()
		defer c.mu.Unlock()
		end := c.cfg.Now()
		if err != nil {
			// Running still (the core resumes a VM whose save failed):
			// count down afresh rather than retry at every poll.
			t.phase, t.idleSince, t.retryAt = phaseRunning, end, end.Add(pol.IdleTimeout)
			if ctx.Err() == nil {
				c.cfg.Log.Error("auto-standby: standby failed", "project", r.project, "instance", r.name, "err", err)
			}
			return
		}
		t.phase, t.active, t.idleSince, t.holdUntil, t.changedAt = phaseStandby, 0, time.Time{}, time.Time{}, end
		if in := c.insts[r]; in != nil {
			in.Running, in.Standby = false, true
		}
		c.cfg.Log.Info("auto-standby: instance in standby", "project", r.project, "instance", r.name, "took", end.Sub(now).Round(time.Millisecond))
		c.cfg.Core.Emit(context.WithoutCancel(ctx), r.project, r.name, "instance-auto-standby",
			map[string]any{"idle_timeout": pol.idleTimeoutString()})
	}()
}

// wake restores a standby instance a client knocked at, in the
// background; the caller holds c.mu. The client's SYN went nowhere (no
// one holds the instance's address); its retransmit reaches the restored
// instance, which keeps its address (its RAM is restored) and whose NIC
// start points the host's neighbour entry at it again.
func (c *Controller) wake(ctx context.Context, r ref, t *track, f Flow, now time.Time) {
	t.phase = phaseWaking
	client := netip.AddrPortFrom(f.Orig.Src, f.Orig.SrcPort).String()
	c.cfg.Log.Info("auto-standby: inbound connection to a standby instance, restoring it", "project", r.project, "instance", r.name,
		"client", client, "port", f.Reply.SrcPort)
	c.work.Add(1)
	go func() {
		defer c.work.Done()
		err := c.cfg.Core.Start(ctx, r.project, r.name)
		c.mu.Lock()
		defer c.mu.Unlock()
		end := c.cfg.Now()
		if err != nil && !errors.Is(err, errdefs.ErrConflict) {
			t.phase, t.retryAt = phaseStandby, end.Add(c.cfg.Interval)
			if ctx.Err() == nil {
				c.cfg.Log.Error("auto-standby: restore failed", "project", r.project, "instance", r.name, "err", err)
			}
			return
		}
		if err != nil {
			// Said to be running already; logged, as a conflict may hide
			// a start that failed another way.
			c.cfg.Log.Info("auto-standby: restore answered a conflict", "project", r.project, "instance", r.name, "err", err)
		}
		// Running (a conflict: someone started it first). The knock is
		// activity: the countdown starts over.
		t.phase, t.lastActivity, t.idleSince, t.changedAt = phaseRunning, end, end, end
		if in := c.insts[r]; in != nil {
			in.Running, in.Standby = true, false
		}
		c.cfg.Log.Info("auto-standby: instance restored", "project", r.project, "instance", r.name, "took", end.Sub(now).Round(time.Millisecond))
		c.cfg.Core.Emit(context.WithoutCancel(ctx), r.project, r.name, "instance-auto-wake", map[string]any{"client": client})
	}()
}

// Status returns an instance's auto-standby status; ctx's caller must be
// allowed to see the instance.
func (c *Controller) Status(ctx context.Context, project, name string) (Status, error) {
	in, err := c.cfg.Core.Instance(ctx, project, name)
	if err != nil {
		return Status{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.statusLocked(in), nil
}

// Hold keeps a running instance out of standby for one idle timeout from
// now (an idle countdown still has to run out after it). It is a
// conflict for an instance in standby or otherwise not running, and
// invalid without an enabled policy.
func (c *Controller) Hold(ctx context.Context, project, name string) (Status, error) {
	in, err := c.cfg.Core.Instance(ctx, project, name)
	if err != nil {
		return Status{}, err
	}
	pol, err := ParsePolicy(in.Config)
	if err != nil {
		return Status{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := ref{project, name}
	t := c.tracks[r]
	if t != nil && (t.phase == phaseStandbyRequested || t.phase == phaseStandby) {
		return Status{}, errdefs.Conflict("instance %q is in standby: restore it first", name)
	}
	if !in.Running {
		return Status{}, errdefs.Conflict("instance %q is not running: only a running instance can be held out of standby", name)
	}
	if !pol.Enabled {
		return Status{}, errdefs.Invalid("instance %q has no enabled auto-standby policy (set %s=true)", name, KeyEnabled)
	}
	if t == nil {
		t = &track{}
		c.tracks[r] = t
	}
	if until := c.cfg.Now().Add(pol.IdleTimeout); until.After(t.holdUntil) {
		t.holdUntil = until
	}
	c.cfg.Log.Info("auto-standby: hold", "project", project, "instance", name, "until", t.holdUntil)
	return c.statusLocked(in), nil
}

// statusLocked renders in's status from its track; the caller holds c.mu.
func (c *Controller) statusLocked(in Instance) Status {
	now := c.cfg.Now()
	pol, perr := ParsePolicy(in.Config)
	st := Status{
		Configured:   pol.Configured,
		Enabled:      perr == nil && pol.Enabled,
		Supported:    in.VM && c.cfg.Conntrack != nil,
		TrackingMode: TrackingMode,
	}
	if pol.Configured && perr == nil {
		st.IdleTimeout = pol.idleTimeoutString()
	}
	t := c.tracks[ref{in.Project, in.Name}]
	if t == nil {
		t = &track{}
	}
	if !t.lastActivity.IsZero() {
		st.LastInboundActivityAt = timePtr(t.lastActivity)
	}
	if !t.holdUntil.IsZero() && t.holdUntil.After(now) {
		st.HoldUntil = timePtr(t.holdUntil)
	}
	set := func(r Reason, s State) Status { st.Reason, st.State = r, s; return st }
	switch {
	case !st.Supported:
		return set(ReasonUnsupportedPlatform, StateUnsupported)
	case !pol.Configured:
		return set(ReasonPolicyMissing, StateDisabled)
	case !st.Enabled:
		return set(ReasonPolicyDisabled, StateDisabled)
	case t.phase == phaseStandbyRequested:
		return set(ReasonReadyForStandby, StateStandbyRequested)
	case !in.Running || t.phase == phaseStandby || t.phase == phaseWaking:
		return set(ReasonInstanceNotRunning, StateIneligible)
	case !in.HasNIC:
		return set(ReasonNetworkDisabled, StateIneligible)
	case len(in.Addrs) == 0:
		return set(ReasonMissingIP, StateIneligible)
	case in.HasGPU:
		return set(ReasonHasVGPU, StateIneligible)
	case c.obsErr != nil:
		return set(ReasonObserverError, StateError)
	}
	st.Eligible = true
	st.ActiveInboundConnections = t.active
	if t.active > 0 {
		return set(ReasonActiveInboundConnections, StateActive)
	}
	idle := t.idleSince
	if idle.IsZero() {
		idle = now // not polled yet: idle from now on
	}
	st.IdleSince = timePtr(idle)
	tt := *t
	tt.idleSince = idle
	next := tt.nextStandby(pol)
	st.NextStandbyAt = timePtr(next)
	left := max(next.Sub(now), 0)
	st.CountdownRemaining = &left
	if left > 0 {
		return set(ReasonIdleTimeoutNotElapsed, StateIdleCountdown)
	}
	return set(ReasonReadyForStandby, StateReadyForStandby)
}

func timePtr(t time.Time) *time.Time { return &t }
