package instances

import (
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"time"

	wire "github.com/hangar-dev/hangar/api/instances"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/units"
)

// Config keys this dialect reads and writes (doc.go lists the mapping).
const (
	keyMemory         = "limits.memory"
	keyCPU            = "limits.cpu"
	keyHotplug        = "limits.memory.hotplug"
	keyEntrypoint     = "oci.entrypoint"
	keyCmd            = "oci.cmd"
	keyAgentSkip      = "agent.skip"
	keyCompression    = "snapshots.compression"
	keyASEnabled      = "autostandby.enabled"
	keyASIdle         = "autostandby.idle_timeout"
	keyASPorts        = "autostandby.ignore_destination_ports"
	keyASCIDRs        = "autostandby.ignore_source_cidrs"
	keyEgressEnabled  = "egress.enabled"
	keyEgressMode     = "egress.mode"
	prefixEnv         = "environment."
	prefixTag         = "user.tag."
	prefixCredential  = "credentials."
	keyImageReference = "image.oci.reference"
	keyImageDesc      = "image.description"
	nicName           = "eth0"
	rootName          = "root"
)

// Defaults of a create that does not say (the seed's server defaults),
// and the memory of a VM whose config names none (made elsewhere).
const (
	defaultMemory     = 1 << 30
	defaultVCPUs      = 2
	coreDefaultMemory = 512 << 20
)

// stateOf maps the core's status to the seed's eight states:
//
//	Starting                    -> Created (QEMU is being set up)
//	Running, workload not begun -> Initializing
//	Running                     -> Running
//	Freezing, Frozen            -> Paused
//	Stopping                    -> Shutdown
//	Stopped with saved state    -> Standby
//	Stopped                     -> Stopped
//	Error, anything else        -> Unknown (state_error says why)
func stateOf(in instance.Instance, st instance.State) (wire.State, string) {
	switch in.Status {
	case instance.StatusStarting:
		return wire.StateCreated, ""
	case instance.StatusRunning:
		if !st.WorkloadStarted {
			return wire.StateInitializing, ""
		}
		return wire.StateRunning, ""
	case instance.StatusFreezing, instance.StatusFrozen:
		return wire.StatePaused, ""
	case instance.StatusStopping:
		return wire.StateShutdown, ""
	case instance.StatusStopped:
		if in.Stateful {
			return wire.StateStandby, ""
		}
		return wire.StateStopped, ""
	case instance.StatusError:
		msg := "the instance is in error"
		if in.ExitMessage != "" {
			msg += ": " + in.ExitMessage
		}
		return wire.StateUnknown, msg
	}
	return wire.StateUnknown, "unknown status " + in.Status.String()
}

// render turns a core instance into the seed's Instance.
func render(f instance.Full, ips map[string]string) wire.Instance {
	in := f.Instance
	cfg := in.ExpandedConfig
	state, stateErr := stateOf(in, f.State)
	out := wire.Instance{
		ID:          in.ID,
		CreatedAt:   in.CreatedAt,
		Image:       cfg[keyImageReference],
		Name:        in.Name,
		State:       state,
		Env:         map[string]string{},
		Tags:        map[string]string{},
		ExitMessage: in.ExitMessage,
		HasSnapshot: state == wire.StateStandby,
		Hypervisor:  wire.HypervisorQEMU,
		Volumes:     []wire.VolumeMount{},
		AutoStandby: wire.AutoStandbyPolicy{IgnoreDestinationPorts: []int64{}, IgnoreSourceCidrs: []string{}},
	}
	if out.Image == "" {
		out.Image = cfg[keyImageDesc]
	}
	if stateErr != "" {
		out.StateError = &stateErr
	}
	if in.ExitCode != nil {
		c := int64(*in.ExitCode)
		out.ExitCode = &c
	}
	if !in.StartedAt.IsZero() {
		t := in.StartedAt
		out.StartedAt = &t
	}
	if !in.StoppedAt.IsZero() {
		t := in.StoppedAt
		out.StoppedAt = &t
	}
	for k, v := range in.Config { // the instance's own: not the profiles'
		if name, ok := strings.CutPrefix(k, prefixEnv); ok {
			out.Env[name] = v
		}
		if name, ok := strings.CutPrefix(k, prefixTag); ok {
			out.Tags[name] = v
		}
	}
	if n, err := units.ParseByteSize(cfg[keyMemory]); err == nil && n > 0 {
		out.Size = formatSize(n)
	} else if cfg[keyMemory] == "" {
		out.Size = formatSize(coreDefaultMemory)
	}
	if n, err := units.ParseByteSize(cfg[keyHotplug]); err == nil && n > 0 {
		out.HotplugSize = formatSize(n)
	}
	out.Vcpus = vcpusOf(cfg[keyCPU])
	if root := in.ExpandedDevices[rootName]; root != nil {
		if n, err := units.ParseByteSize(root["size"]); err == nil && n > 0 {
			out.OverlaySize = formatSize(n)
		}
		if n, err := units.ParseByteSize(root["limits.read"]); err == nil && n > 0 {
			out.DiskIoBps = formatIORate(n)
		}
	}
	out.Network = networkOf(in, f.State, ips)
	out.SnapshotPolicy.Compression = compressionOf(cfg[keyCompression])
	out.AutoStandby.Enabled = cfg[keyASEnabled] == "true"
	out.AutoStandby.IdleTimeout = cfg[keyASIdle]
	for p := range strings.SplitSeq(cfg[keyASPorts], ",") {
		if n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64); err == nil {
			out.AutoStandby.IgnoreDestinationPorts = append(out.AutoStandby.IgnoreDestinationPorts, n)
		}
	}
	for c := range strings.SplitSeq(cfg[keyASCIDRs], ",") {
		if c = strings.TrimSpace(c); c != "" {
			out.AutoStandby.IgnoreSourceCidrs = append(out.AutoStandby.IgnoreSourceCidrs, c)
		}
	}
	out.Volumes = volumesOf(in.ExpandedDevices)
	return out
}

// vcpusOf reads limits.cpu: a count, or a set ("0-3", "1,3") counted.
func vcpusOf(v string) int64 {
	if v == "" {
		return 1 // the core's default for a VM without limits.cpu
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	var n int64
	for part := range strings.SplitSeq(v, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.ParseInt(lo, 10, 64)
		b, err2 := strconv.ParseInt(hi, 10, 64)
		switch {
		case !isRange && err1 == nil:
			n++
		case isRange && err1 == nil && err2 == nil && b >= a:
			n += b - a + 1
		}
	}
	return n
}

// networkOf is the instance's eth0: ip is the address its network
// assigned (ips, by MAC), else the one the guest reports.
func networkOf(in instance.Instance, st instance.State, ips map[string]string) wire.InstanceNetwork {
	nic := in.ExpandedDevices[nicName]
	out := wire.InstanceNetwork{Name: "default"}
	if nic == nil || nic["type"] != "nic" {
		out.Name = ""
		return out
	}
	out.Enabled = true
	if b, err := strconv.ParseInt(strings.TrimSuffix(nic["limits.ingress"], "bit"), 10, 64); err == nil && b > 0 {
		out.BandwidthDownload = formatBandwidth(b)
	}
	if b, err := strconv.ParseInt(strings.TrimSuffix(nic["limits.egress"], "bit"), 10, 64); err == nil && b > 0 {
		out.BandwidthUpload = formatBandwidth(b)
	}
	if mac := in.Config["volatile."+nicName+".hwaddr"]; mac != "" {
		out.Mac = &mac
	}
	if out.Mac != nil {
		if ip, ok := ips[strings.ToLower(*out.Mac)]; ok && ip != "" {
			out.IP = &ip
			return out
		}
	}
	if ns, ok := st.Network[nicName]; ok {
		if out.Mac == nil && ns.Hwaddr != "" {
			mac := ns.Hwaddr
			out.Mac = &mac
		}
		for _, a := range ns.Addresses {
			if a.Family == "inet" && a.Scope == "global" {
				ip := a.Address
				out.IP = &ip
				break
			}
		}
	}
	return out
}

// volumesOf lists the custom volumes attached as disks (a disk with a
// pool and a source, other than the root).
func volumesOf(devs instance.Devices) []wire.VolumeMount {
	out := []wire.VolumeMount{}
	names := make([]string, 0, len(devs))
	for n := range devs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d := devs[n]
		if d["type"] != "disk" || d["source"] == "" || d["pool"] == "" || d["path"] == "/" {
			continue
		}
		out = append(out, wire.VolumeMount{MountPath: d["path"], VolumeID: d["source"], Readonly: d["readonly"] == "true"})
	}
	return out
}

// argv reads a JSON array config value (oci.entrypoint, oci.cmd).
func argvJSON(argv []string) string {
	b, _ := json.Marshal(argv) // []string always marshals
	return string(b)
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
