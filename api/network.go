package api

// The network shapes of LXD 5.0's API (/1.0/networks and below), with
// LXD's JSON names, so that lxc and LXD's Go client read them unchanged.

// NetworkPut holds the fields a client may replace with PUT.
type NetworkPut struct {
	Config      map[string]string `json:"config" yaml:"config"`
	Description string            `json:"description" yaml:"description"`
}

// Network statuses, LXD's words.
const (
	NetworkStatusCreated = "Created"
	NetworkStatusErrored = "Errored"
)

// Network is /1.0/networks/{name}: a managed network, or a host interface
// (Managed false, no config).
type Network struct {
	NetworkPut `yaml:",inline"`
	Name       string   `json:"name" yaml:"name"`
	Type       string   `json:"type" yaml:"type"`
	UsedBy     []string `json:"used_by" yaml:"used_by"`
	Managed    bool     `json:"managed" yaml:"managed"`
	Status     string   `json:"status" yaml:"status"`
	Locations  []string `json:"locations" yaml:"locations"`
}

// NetworksPost is the body of POST /1.0/networks.
type NetworksPost struct {
	NetworkPut `yaml:",inline"`
	Name       string `json:"name" yaml:"name"`
	Type       string `json:"type" yaml:"type"`
}

// NetworkPost is the body of POST /1.0/networks/{name}: a rename.
type NetworkPost struct {
	Name string `json:"name" yaml:"name"`
}

// NetworkState is /1.0/networks/{name}/state: the live interface.
type NetworkState struct {
	Addresses []NetworkStateAddress `json:"addresses" yaml:"addresses"`
	Counters  NetworkStateCounters  `json:"counters" yaml:"counters"`
	Hwaddr    string                `json:"hwaddr" yaml:"hwaddr"`
	Mtu       int                   `json:"mtu" yaml:"mtu"`
	State     string                `json:"state" yaml:"state"` // "up" or "down"
	Type      string                `json:"type" yaml:"type"`
	Bond      *NetworkStateBond     `json:"bond" yaml:"bond"`
	Bridge    *NetworkStateBridge   `json:"bridge" yaml:"bridge"`
	VLAN      *NetworkStateVLAN     `json:"vlan" yaml:"vlan"`
}

// NetworkStateAddress is one address of a network's interface.
type NetworkStateAddress struct {
	Family  string `json:"family" yaml:"family"`
	Address string `json:"address" yaml:"address"`
	Netmask string `json:"netmask" yaml:"netmask"`
	Scope   string `json:"scope" yaml:"scope"`
}

// NetworkStateCounters are a network interface's traffic counters.
type NetworkStateCounters struct {
	BytesReceived   int64 `json:"bytes_received" yaml:"bytes_received"`
	BytesSent       int64 `json:"bytes_sent" yaml:"bytes_sent"`
	PacketsReceived int64 `json:"packets_received" yaml:"packets_received"`
	PacketsSent     int64 `json:"packets_sent" yaml:"packets_sent"`
}

// NetworkStateBond is a bond's state.
type NetworkStateBond struct {
	Mode           string   `json:"mode" yaml:"mode"`
	TransmitPolicy string   `json:"transmit_policy" yaml:"transmit_policy"`
	UpDelay        uint64   `json:"up_delay" yaml:"up_delay"`
	DownDelay      uint64   `json:"down_delay" yaml:"down_delay"`
	MIIFrequency   uint64   `json:"mii_frequency" yaml:"mii_frequency"`
	MIIState       string   `json:"mii_state" yaml:"mii_state"`
	LowerDevices   []string `json:"lower_devices" yaml:"lower_devices"`
}

// NetworkStateBridge is a bridge's state.
type NetworkStateBridge struct {
	ID            string   `json:"id" yaml:"id"`
	STP           bool     `json:"stp" yaml:"stp"`
	ForwardDelay  uint64   `json:"forward_delay" yaml:"forward_delay"`
	VLANDefault   uint64   `json:"vlan_default" yaml:"vlan_default"`
	VLANFiltering bool     `json:"vlan_filtering" yaml:"vlan_filtering"`
	UpperDevices  []string `json:"upper_devices" yaml:"upper_devices"`
}

// NetworkStateVLAN is a VLAN's state.
type NetworkStateVLAN struct {
	LowerDevice string `json:"lower_device" yaml:"lower_device"`
	VID         uint64 `json:"vid" yaml:"vid"`
}

// NetworkLease is one entry of /1.0/networks/{name}/leases.
type NetworkLease struct {
	Hostname string `json:"hostname" yaml:"hostname"`
	Hwaddr   string `json:"hwaddr" yaml:"hwaddr"`
	Address  string `json:"address" yaml:"address"`
	Type     string `json:"type" yaml:"type"` // static or dynamic
	Location string `json:"location" yaml:"location"`
}

// NetworkForwardPort is one port rule of a network forward.
type NetworkForwardPort struct {
	Description   string `json:"description" yaml:"description"`
	Protocol      string `json:"protocol" yaml:"protocol"`
	ListenPort    string `json:"listen_port" yaml:"listen_port"`
	TargetPort    string `json:"target_port" yaml:"target_port"`
	TargetAddress string `json:"target_address" yaml:"target_address"`
}

// NetworkForwardPut holds the fields of a forward a client may replace.
type NetworkForwardPut struct {
	Description string               `json:"description" yaml:"description"`
	Config      map[string]string    `json:"config" yaml:"config"`
	Ports       []NetworkForwardPort `json:"ports" yaml:"ports"`
}

// NetworkForwardsPost is the body of POST /1.0/networks/{name}/forwards.
type NetworkForwardsPost struct {
	NetworkForwardPut `yaml:",inline"`
	ListenAddress     string `json:"listen_address" yaml:"listen_address"`
}

// NetworkForward is /1.0/networks/{name}/forwards/{listen_address}.
type NetworkForward struct {
	NetworkForwardPut `yaml:",inline"`
	ListenAddress     string `json:"listen_address" yaml:"listen_address"`
	Location          string `json:"location" yaml:"location"`
}
