package autostandby

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fakeConntrack struct {
	mu    sync.Mutex
	flows []Flow
	err   error
	dumps int
}

func (f *fakeConntrack) TCPFlows(context.Context) ([]Flow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dumps++
	return slices.Clone(f.flows), f.err
}

func (f *fakeConntrack) set(err error, flows ...Flow) {
	f.mu.Lock()
	f.flows, f.err = flows, err
	f.mu.Unlock()
}

type fakeCore struct {
	mu         sync.Mutex
	insts      map[ref]*Instance
	hidden     map[ref]bool // the caller may not see these
	standbyErr error
	calls      []string
	events     []string
}

func (c *fakeCore) Instances(context.Context) ([]Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Instance
	for _, in := range c.insts {
		out = append(out, *in)
	}
	return out, nil
}

func (c *fakeCore) Instance(_ context.Context, project, name string) (Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.insts[ref{project, name}]
	if !ok || c.hidden[ref{project, name}] {
		return Instance{}, errdefs.NotFound("instance %q not found", name)
	}
	return *in, nil
}

func (c *fakeCore) Standby(_ context.Context, project, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "standby "+project+"/"+name)
	if c.standbyErr != nil {
		return c.standbyErr
	}
	in := c.insts[ref{project, name}]
	in.Running, in.Standby = false, true
	return nil
}

func (c *fakeCore) Start(_ context.Context, project, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, "start "+project+"/"+name)
	in := c.insts[ref{project, name}]
	in.Running, in.Standby = true, false
	return nil
}

func (c *fakeCore) Emit(_ context.Context, project, name, action string, _ map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, action+" "+project+"/"+name)
}

func (c *fakeCore) takeCalls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.calls
	c.calls = nil
	return out
}

var vmAddr = netip.MustParseAddr("10.99.0.5")

func vmInstance(cfg map[string]string) *Instance {
	return &Instance{Project: "default", Name: "vm1", VM: true, Running: true, Config: cfg, HasNIC: true, Addrs: []netip.Addr{vmAddr}}
}

type harness struct {
	clock *fakeClock
	ct    *fakeConntrack
	core  *fakeCore
	c     *Controller
}

func newHarness(insts ...*Instance) *harness {
	h := &harness{clock: &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}, ct: &fakeConntrack{},
		core: &fakeCore{insts: map[ref]*Instance{}, hidden: map[ref]bool{}}}
	for _, in := range insts {
		h.core.insts[ref{in.Project, in.Name}] = in
	}
	h.c = New(Config{Core: h.core, Conntrack: h.ct, Interval: time.Second, WakeInterval: 100 * time.Millisecond,
		Now: h.clock.Now, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return h
}

// poll runs one poll and waits for the calls it started.
func (h *harness) poll() {
	h.c.poll(context.Background())
	h.c.work.Wait()
}

func (h *harness) status(t *testing.T) Status {
	t.Helper()
	st, err := h.c.Status(context.Background(), "default", "vm1")
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

func inbound(state uint8) Flow {
	return flow("203.0.113.9", 40000, "198.51.100.1", 8080, "10.99.0.5", 80, state)
}

func TestStatusReasons(t *testing.T) {
	enabled := map[string]string{KeyEnabled: "true", KeyIdleTimeout: "10s"}
	for _, tc := range []struct {
		name     string
		in       *Instance
		obsErr   error
		flows    []Flow
		reason   Reason
		state    State
		eligible bool
	}{
		{"container", &Instance{Project: "default", Name: "vm1", Running: true, Config: enabled, HasNIC: true, Addrs: []netip.Addr{vmAddr}},
			nil, nil, ReasonUnsupportedPlatform, StateUnsupported, false},
		{"no policy", vmInstance(nil), nil, nil, ReasonPolicyMissing, StateDisabled, false},
		{"disabled", vmInstance(map[string]string{KeyEnabled: "false"}), nil, nil, ReasonPolicyDisabled, StateDisabled, false},
		{"stopped", func() *Instance { in := vmInstance(enabled); in.Running = false; return in }(), nil, nil, ReasonInstanceNotRunning, StateIneligible, false},
		{"no NIC", func() *Instance { in := vmInstance(enabled); in.HasNIC, in.Addrs = false, nil; return in }(), nil, nil, ReasonNetworkDisabled, StateIneligible, false},
		{"no address", func() *Instance { in := vmInstance(enabled); in.Addrs = nil; return in }(), nil, nil, ReasonMissingIP, StateIneligible, false},
		{"GPU", func() *Instance { in := vmInstance(enabled); in.HasGPU = true; return in }(), nil, nil, ReasonHasVGPU, StateIneligible, false},
		{"observer error", vmInstance(enabled), errors.New("netlink: operation not permitted"), nil, ReasonObserverError, StateError, false},
		{"active", vmInstance(enabled), nil, []Flow{inbound(TCPEstablished)}, ReasonActiveInboundConnections, StateActive, true},
		{"idle", vmInstance(enabled), nil, []Flow{flow("10.99.0.5", 1, "1.1.1.1", 443, "1.1.1.1", 443, TCPEstablished)}, ReasonIdleTimeoutNotElapsed, StateIdleCountdown, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(tc.in)
			h.ct.set(tc.obsErr, tc.flows...)
			h.poll()
			st := h.status(t)
			if st.Reason != tc.reason || st.State != tc.state || st.Eligible != tc.eligible || st.TrackingMode != TrackingMode {
				t.Fatalf("status = %s/%s eligible %v, want %s/%s eligible %v", st.State, st.Reason, st.Eligible, tc.state, tc.reason, tc.eligible)
			}
			if calls := h.core.takeCalls(); len(calls) > 0 {
				t.Fatalf("calls %v on a first poll", calls)
			}
		})
	}
}

// TestLifecycle walks one VM through active, idle countdown, a hold,
// standby, a knock that wakes it and a standby that fails.
func TestLifecycle(t *testing.T) {
	h := newHarness(vmInstance(map[string]string{KeyEnabled: "true", KeyIdleTimeout: "10s", KeyIgnorePorts: "22"}))
	ctx := context.Background()
	t0 := h.clock.Now()

	// A client is connected: active, no countdown.
	h.ct.set(nil, inbound(TCPEstablished), inbound(TCPEstablished))
	h.poll()
	st := h.status(t)
	if st.State != StateActive || st.ActiveInboundConnections != 2 || st.LastInboundActivityAt == nil || !st.LastInboundActivityAt.Equal(t0) ||
		st.IdleSince != nil || st.CountdownRemaining != nil || st.NextStandbyAt != nil || st.IdleTimeout != "10s" || !st.Configured || !st.Enabled || !st.Supported {
		t.Fatalf("active: %+v", st)
	}

	// It leaves; an ssh session (ignored port) stays: idle from now.
	h.clock.Advance(time.Second)
	idle := h.clock.Now()
	h.ct.set(nil, flow("203.0.113.9", 40001, "10.99.0.5", 22, "10.99.0.5", 22, TCPEstablished))
	h.poll()
	h.clock.Advance(4 * time.Second)
	h.poll()
	st = h.status(t)
	if st.State != StateIdleCountdown || st.Reason != ReasonIdleTimeoutNotElapsed || st.ActiveInboundConnections != 0 ||
		st.IdleSince == nil || !st.IdleSince.Equal(idle) || *st.CountdownRemaining != 6*time.Second || !st.NextStandbyAt.Equal(idle.Add(10*time.Second)) {
		t.Fatalf("countdown: %+v", st)
	}

	// A hold 5s into the countdown pushes standby to now+10s.
	held := h.clock.Now()
	st, err := h.c.Hold(ctx, "default", "vm1")
	if err != nil {
		t.Fatalf("Hold: %v", err)
	}
	if !st.NextStandbyAt.Equal(held.Add(10*time.Second)) || st.HoldUntil == nil {
		t.Fatalf("held: %+v", st)
	}
	h.clock.Advance(6 * time.Second) // the idle timeout ran out, the hold did not
	h.poll()
	if calls := h.core.takeCalls(); len(calls) > 0 {
		t.Fatalf("standby during a hold: %v", calls)
	}
	if st = h.status(t); st.State != StateIdleCountdown || *st.CountdownRemaining != 4*time.Second {
		t.Fatalf("held countdown: %+v", st)
	}

	// The hold ends: standby, once.
	h.clock.Advance(4 * time.Second)
	h.poll()
	if calls := h.core.takeCalls(); !slices.Equal(calls, []string{"standby default/vm1"}) {
		t.Fatalf("calls %v, want one standby", calls)
	}
	if st = h.status(t); st.State != StateIneligible || st.Reason != ReasonInstanceNotRunning {
		t.Fatalf("in standby: %+v", st)
	}
	if _, err := h.c.Hold(ctx, "default", "vm1"); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("Hold in standby = %v, want a conflict", err)
	}
	if d := h.c.nextPoll(); d != 100*time.Millisecond {
		t.Fatalf("poll period in standby %s, want the wake interval", d)
	}

	// Nothing knocks (a stale established entry, an ignored port, the
	// list refreshed): it stays in standby.
	h.ct.set(nil, inbound(TCPEstablished), flow("203.0.113.9", 40002, "10.99.0.5", 22, "10.99.0.5", 22, TCPSynSent))
	for range 3 {
		h.clock.Advance(time.Second)
		h.poll()
	}
	if calls := h.core.takeCalls(); len(calls) > 0 {
		t.Fatalf("woken without a knock: %v", calls)
	}

	// A SYN to the forward: restored, and the knock is activity.
	h.ct.set(nil, inbound(TCPSynSent))
	h.clock.Advance(100 * time.Millisecond)
	woke := h.clock.Now()
	h.poll()
	if calls := h.core.takeCalls(); !slices.Equal(calls, []string{"start default/vm1"}) {
		t.Fatalf("calls %v, want one start", calls)
	}
	st = h.status(t)
	if st.State != StateIdleCountdown || !st.LastInboundActivityAt.Equal(woke) || !st.NextStandbyAt.Equal(woke.Add(10*time.Second)) {
		t.Fatalf("after wake: %+v", st)
	}
	if d := h.c.nextPoll(); d != time.Second {
		t.Fatalf("poll period after wake %s, want the interval", d)
	}
	// The SYN entry is still there while the client's retransmit is
	// answered: it is activity now, not a second wake.
	h.clock.Advance(time.Second)
	h.poll()
	if calls := h.core.takeCalls(); len(calls) > 0 {
		t.Fatalf("calls %v after the wake", calls)
	}
	if st = h.status(t); st.State != StateActive {
		t.Fatalf("after wake with the connection: %+v", st)
	}

	// A standby that fails: logged, running, counting down afresh.
	h.core.mu.Lock()
	h.core.standbyErr = errdefs.Conflict("VM has 9p shares")
	h.core.mu.Unlock()
	h.ct.set(nil)
	h.poll()
	h.clock.Advance(10 * time.Second)
	h.poll()
	if calls := h.core.takeCalls(); !slices.Equal(calls, []string{"standby default/vm1"}) {
		t.Fatalf("calls %v, want a standby attempt", calls)
	}
	if st = h.status(t); st.State != StateIdleCountdown || *st.CountdownRemaining != 10*time.Second {
		t.Fatalf("after a failed standby: %+v", st)
	}
	h.clock.Advance(5 * time.Second)
	h.poll()
	if calls := h.core.takeCalls(); len(calls) > 0 {
		t.Fatalf("retried before a new idle timeout: %v", calls)
	}
	h.core.mu.Lock()
	events := slices.Clone(h.core.events)
	h.core.mu.Unlock()
	if want := []string{"instance-auto-standby default/vm1", "instance-auto-wake default/vm1"}; !slices.Equal(events, want) {
		t.Fatalf("events %v, want %v", events, want)
	}
}

// TestWakeScope: any instance in standby whose policy is enabled is
// woken by a knock, whoever put it in standby (a user through an API, a
// daemon before a restart); a standby without an enabled policy and a
// plain stop are not.
func TestWakeScope(t *testing.T) {
	enabled := map[string]string{KeyEnabled: "true", KeyIdleTimeout: "2s"}
	standby := func(cfg map[string]string, saved bool) *Instance {
		in := vmInstance(cfg)
		in.Running, in.Standby = false, saved
		return in
	}
	for _, tc := range []struct {
		name string
		// before: the instance as the controller first lists it; after
		// (nil: unchanged) as it is once the controller has seen it.
		before, after *Instance
		wake          bool
	}{
		{"user standby woken", vmInstance(enabled), standby(enabled, true), true},
		{"restart: in standby at the first list, woken", standby(enabled, true), nil, true},
		{"policy disabled: not woken", vmInstance(map[string]string{KeyEnabled: "false"}), standby(map[string]string{KeyEnabled: "false"}, true), false},
		{"no policy: not woken", standby(nil, true), nil, false},
		{"bad policy: not woken", standby(map[string]string{KeyEnabled: "true", KeyIdleTimeout: "soon"}, true), nil, false},
		{"stopped without a saved state: not woken", vmInstance(enabled), standby(enabled, false), false},
		{"container: not woken", func() *Instance { in := standby(enabled, true); in.VM = false; return in }(), nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(tc.before)
			h.poll()
			if tc.after != nil {
				h.core.mu.Lock()
				*h.core.insts[ref{"default", "vm1"}] = *tc.after
				h.core.mu.Unlock()
				h.clock.Advance(time.Second)
				h.poll()
			}
			if d, want := h.c.nextPoll(), map[bool]time.Duration{true: 100 * time.Millisecond, false: time.Second}[tc.wake]; d != want {
				t.Fatalf("poll period %s, want %s", d, want)
			}
			if _, err := h.c.Hold(context.Background(), "default", "vm1"); err == nil {
				t.Fatal("Hold of a stopped instance worked")
			}
			h.ct.set(nil, inbound(TCPSynSent))
			h.clock.Advance(100 * time.Millisecond)
			h.poll()
			var want []string
			if tc.wake {
				want = []string{"start default/vm1"}
			}
			if calls := h.core.takeCalls(); !slices.Equal(calls, want) {
				t.Fatalf("calls %v, want %v", calls, want)
			}
			// The knock is activity: a woken instance counts down from it.
			if st := h.status(t); tc.wake && (st.State != StateIdleCountdown || *st.CountdownRemaining != 2*time.Second) {
				t.Fatalf("after the wake: %+v", st)
			}
		})
	}
}

// TestStartedByOthers: an instance started by someone else after an
// auto-standby counts down again, from its start.
func TestStartedByOthers(t *testing.T) {
	in := vmInstance(map[string]string{KeyEnabled: "true", KeyIdleTimeout: "2s"})
	h := newHarness(in)
	h.poll()
	h.clock.Advance(2 * time.Second)
	h.poll()
	if calls := h.core.takeCalls(); !slices.Equal(calls, []string{"standby default/vm1"}) {
		t.Fatalf("calls %v, want a standby", calls)
	}
	h.core.mu.Lock()
	in.Running, in.Standby = true, false
	h.core.mu.Unlock()
	h.clock.Advance(time.Second)
	h.poll()
	if st := h.status(t); st.State != StateIdleCountdown || *st.CountdownRemaining != 2*time.Second {
		t.Fatalf("after a user's start: %+v", st)
	}
}

// TestStaleList: a list read before a standby of the controller's ended
// does not undo it (the instance stays to be woken), nor one read before
// a wake ended.
func TestStaleList(t *testing.T) {
	in := vmInstance(map[string]string{KeyEnabled: "true", KeyIdleTimeout: "2s"})
	h := newHarness(in)
	h.poll()
	h.clock.Advance(2 * time.Second)
	h.poll()
	h.core.takeCalls()
	// A list older than the standby: it says running.
	h.c.setList([]Instance{*vmInstance(in.Config)}, h.clock.Now().Add(-time.Millisecond))
	h.ct.set(nil, inbound(TCPSynSent))
	h.clock.Advance(100 * time.Millisecond)
	h.poll()
	if calls := h.core.takeCalls(); !slices.Equal(calls, []string{"start default/vm1"}) {
		t.Fatalf("calls %v, want the wake of an instance a stale list called running", calls)
	}
	// A list older than the wake: it says in standby; a knock is no
	// second wake.
	h.c.setList([]Instance{*standbyOf(in.Config)}, h.clock.Now().Add(-time.Millisecond))
	h.c.poll(context.Background())
	h.c.work.Wait()
	if calls := h.core.takeCalls(); len(calls) > 0 {
		t.Fatalf("calls %v after a stale list", calls)
	}
}

func standbyOf(cfg map[string]string) *Instance {
	in := vmInstance(cfg)
	in.Running, in.Standby = false, true
	return in
}

func TestAuthorizationAndBadInput(t *testing.T) {
	h := newHarness(vmInstance(map[string]string{KeyEnabled: "true"}))
	h.core.hidden[ref{"default", "vm1"}] = true
	if _, err := h.c.Status(context.Background(), "default", "vm1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Status of a hidden instance = %v, want not found", err)
	}
	if _, err := h.c.Hold(context.Background(), "default", "vm1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Hold of a hidden instance = %v, want not found", err)
	}
	if _, err := h.c.Status(context.Background(), "other", "vm1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Status in another project = %v, want not found", err)
	}
	h2 := newHarness(vmInstance(map[string]string{KeyEnabled: "false"}))
	if _, err := h2.c.Hold(context.Background(), "default", "vm1"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("Hold without an enabled policy = %v, want invalid", err)
	}
}

// TestOneDumpPerPoll: many instances, one conntrack read.
func TestOneDumpPerPoll(t *testing.T) {
	var insts []*Instance
	for i := range 20 {
		in := vmInstance(map[string]string{KeyEnabled: "true"})
		in.Name = "vm" + string(rune('a'+i))
		insts = append(insts, in)
	}
	h := newHarness(insts...)
	h.poll()
	h.poll()
	if h.ct.dumps != 2 {
		t.Fatalf("%d dumps for 2 polls of 20 instances", h.ct.dumps)
	}
}

// TestRunStops: Run ends with its context and leaves no call running.
func TestRunStops(t *testing.T) {
	h := newHarness(vmInstance(map[string]string{KeyEnabled: "true"}))
	h.c.cfg.Now = time.Now
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.c.Run(ctx); close(done) }()
	for {
		h.ct.mu.Lock()
		n := h.ct.dumps
		h.ct.mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
}
