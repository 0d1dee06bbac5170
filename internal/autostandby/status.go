package autostandby

import "time"

// Reason says why an instance is in its auto-standby state (the seed's
// AutoStandbyStatusReason).
type Reason string

// Reasons, in the order Status checks them.
const (
	ReasonUnsupportedPlatform      Reason = "unsupported_platform"
	ReasonPolicyMissing            Reason = "policy_missing"
	ReasonPolicyDisabled           Reason = "policy_disabled"
	ReasonInstanceNotRunning       Reason = "instance_not_running"
	ReasonNetworkDisabled          Reason = "network_disabled"
	ReasonMissingIP                Reason = "missing_ip"
	ReasonHasVGPU                  Reason = "has_vgpu"
	ReasonActiveInboundConnections Reason = "active_inbound_connections"
	ReasonIdleTimeoutNotElapsed    Reason = "idle_timeout_not_elapsed"
	ReasonObserverError            Reason = "observer_error"
	ReasonReadyForStandby          Reason = "ready_for_standby"
)

// State is where an instance is in the controller's state machine (the
// seed's AutoStandbyStatusStatus).
type State string

// States.
const (
	StateUnsupported      State = "unsupported"
	StateDisabled         State = "disabled"
	StateIneligible       State = "ineligible"
	StateActive           State = "active"
	StateIdleCountdown    State = "idle_countdown"
	StateReadyForStandby  State = "ready_for_standby"
	StateStandbyRequested State = "standby_requested"
	StateError            State = "error"
)

// TrackingMode is how connections are observed: the host's conntrack
// table over netlink.
const TrackingMode = "conntrack_netlink"

// Status is one instance's auto-standby status: every field of the
// seed's AutoStandbyStatus, in Go types. Pointers are nil where the seed's
// field is null.
type Status struct {
	// ActiveInboundConnections counts the qualifying inbound TCP
	// connections of the last poll.
	ActiveInboundConnections int64
	// Configured: some autostandby.* key is set.
	Configured bool
	// Eligible: the policy applies to the instance as it is now (enabled,
	// running, with an address, observed without error); whether it is
	// idle is Reason's to say.
	Eligible bool
	// Enabled: autostandby.enabled is true.
	Enabled bool
	// Supported: the host can observe the instance's connections and put
	// it in standby (a VM on Linux; containers have no stateful stop).
	Supported    bool
	Reason       Reason
	State        State
	TrackingMode string
	// CountdownRemaining is the time left before standby, while counting
	// down (0 when ready).
	CountdownRemaining *time.Duration
	// IdleSince is when the instance was last seen become idle.
	IdleSince *time.Time
	// IdleTimeout is the policy's timeout as configured ("" without a
	// policy: null on the wire).
	IdleTimeout string
	// LastInboundActivityAt is the last poll that saw a qualifying
	// connection (or the wake-up that restored the instance).
	LastInboundActivityAt *time.Time
	// NextStandbyAt is when the controller will put the instance in
	// standby if it stays idle.
	NextStandbyAt *time.Time
	// HoldUntil is when the last Hold ends (not in the seed's status;
	// the edge may leave it out).
	HoldUntil *time.Time
}
