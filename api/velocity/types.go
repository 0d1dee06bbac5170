// Package velocity holds the wire types of the /v/ API of seed 003 (the
// Velocity VM manager's REST API) and of that project's login (/u/auth):
// the JSON hangard's edge (internal/api/velocity) answers and the in-tree
// client (client/velocity) sends, with the seed's exact field names.
//
// The seed writes every count as a quoted placeholder ("cpus": "<CPU
// count>") and booleans bare: hangard answers numbers as JSON strings
// (Num) and, because a quoted placeholder does not settle the type a
// client sends, accepts a JSON number or a string holding one on input.
package velocity

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// State is a VM state as the seed names it.
type State string

// The seven states. Only STOPPED, RUNNING and PAUSED may be requested;
// the others are the hypervisor's in-between states.
const (
	StateStopped  State = "STOPPED"
	StateStarting State = "STARTING"
	StateRunning  State = "RUNNING"
	StatePausing  State = "PAUSING"
	StatePaused   State = "PAUSED"
	StateResuming State = "RESUMING"
	StateStopping State = "STOPPING"
)

// States lists every state, in the seed's order.
var States = []State{StateStopped, StateStarting, StateRunning, StatePausing, StatePaused, StateResuming, StateStopping}

// Requestable tells whether a user may ask for s.
func (s State) Requestable() bool {
	return s == StateStopped || s == StateRunning || s == StatePaused
}

// Media modes and NIC types.
const (
	ModeUSB    = "USB"
	ModeBlock  = "BLOCK"
	ModeVirtIO = "VIRTIO"

	NICNAT    = "NAT"
	NICBridge = "BRIDGE"

	// TypeEFI is the one VM type hangar makes here.
	TypeEFI = "EFI"
)

// Num is a whole number, written as a JSON string ("2") as the seed shows
// it, read from a string or a JSON number.
type Num int64

// MarshalJSON writes n as a JSON string.
func (n Num) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(n), 10) + `"`), nil
}

// UnmarshalJSON reads a JSON number or a string holding a whole number.
func (n *Num) UnmarshalJSON(b []byte) error {
	s := string(bytes.TrimSpace(b))
	if len(s) >= 2 && s[0] == '"' {
		var str string
		if err := json.Unmarshal(b, &str); err != nil {
			return err
		}
		s = str
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not a whole number", s)
	}
	*n = Num(v)
	return nil
}

// Error is every error's body (the project's APISPEC: {"error": "..."}).
type Error struct {
	Error string `json:"error"`
}

// AuthRequest is POST /u/auth.
type AuthRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// AuthKeyRequest is DELETE and PATCH /u/auth, and /v/nic/list.
type AuthKeyRequest struct {
	AuthKey string `json:"authkey"`
}

// AuthResponse is a new authkey and when it expires (a unix timestamp).
type AuthResponse struct {
	AuthKey string `json:"authkey"`
	Expires Num    `json:"expires"`
}

// VMListRequest is POST /v/vm/list.
type VMListRequest struct {
	AuthKey string `json:"authkey"`
	GID     string `json:"gid"`
}

// VMListEntry is one VM of a list.
type VMListEntry struct {
	VMID      string `json:"vmid"`
	Name      string `json:"name"`
	CPUs      Num    `json:"cpus"`
	MemoryMiB Num    `json:"memory_mib"`
	State     State  `json:"state"`
}

// VMList is POST /v/vm/list's answer.
type VMList struct {
	VMs []VMListEntry `json:"vms"`
}

// VMRequest is POST /v/vm and POST /v/vm/state.
type VMRequest struct {
	AuthKey string `json:"authkey"`
	VMID    string `json:"vmid"`
}

// Display is one display of a VM. The seed's field list calls the name
// "description"; its JSON examples, which hangard follows, "name".
type Display struct {
	Name   string `json:"name"`
	Width  Num    `json:"width"`
	Height Num    `json:"height"`
	PPI    Num    `json:"ppi"`
}

// Media is one attached medium.
type Media struct {
	MID      string `json:"mid"`
	Mode     string `json:"mode"`
	ReadOnly bool   `json:"readonly"`
}

// NIC is one network device; Host is the NICID of BRIDGE mode.
type NIC struct {
	Type string `json:"type"`
	Host string `json:"host,omitempty"`
}

// VM is POST /v/vm's answer.
type VM struct {
	VMID      string    `json:"vmid"`
	Name      string    `json:"name"`
	Type      string    `json:"type"`
	State     State     `json:"state"`
	CPUs      Num       `json:"cpus"`
	MemoryMiB Num       `json:"memory_mib"`
	Displays  []Display `json:"displays"`
	Media     []Media   `json:"media"`
	NICs      []NIC     `json:"nics"`
	Rosetta   bool      `json:"rosetta"`
	Autostart bool      `json:"autostart"`
}

// EFIRequest is PUT /v/vm/efi.
type EFIRequest struct {
	AuthKey   string    `json:"authkey"`
	Name      string    `json:"name"`
	GID       string    `json:"gid"`
	CPUs      Num       `json:"cpus"`
	MemoryMiB Num       `json:"memory_mib"`
	Displays  []Display `json:"displays"`
	Media     []Media   `json:"media"`
	NICs      []NIC     `json:"nics"`
	Rosetta   bool      `json:"rosetta"`
	Autostart bool      `json:"autostart"`
}

// Created is PUT /v/vm/efi's answer.
type Created struct {
	VMID string `json:"vmid"`
}

// StateRequest is PUT /v/vm/state.
type StateRequest struct {
	AuthKey string `json:"authkey"`
	VMID    string `json:"vmid"`
	State   State  `json:"state"`
	Force   bool   `json:"force"`
}

// VMState is the answer of both /v/vm/state methods.
type VMState struct {
	VMID  string `json:"vmid"`
	State State  `json:"state"`
}

// HostNIC is one host NIC an administrator made available for BRIDGE.
type HostNIC struct {
	NICID       string `json:"nicid"`
	Description string `json:"description"`
	Identifier  string `json:"identifier"`
}

// HostNICs is POST /v/nic/list's answer.
type HostNICs struct {
	HostNICs []HostNIC `json:"host_nics"`
}
