package driver

import "context"

// NetworkReader is implemented by drivers that can tell an instance's
// network interfaces as the instance sees them (the container driver
// reads its network namespace). A driver without it reports none.
type NetworkReader interface {
	// Network returns the interfaces of a running instance by name;
	// ErrNotRunning when it does not run.
	Network(ctx context.Context, id string) (map[string]NetInterface, error)
}

// NetInterface is one network interface inside an instance.
type NetInterface struct {
	Addresses []NetAddress
	Hwaddr    string
	MTU       int
	Up        bool
	Type      string // "loopback", "broadcast" or "point-to-point"
	// Counters since the interface was created.
	BytesReceived, BytesSent, PacketsReceived, PacketsSent   int64
	ErrorsReceived, ErrorsSent, DroppedReceived, DroppedSent int64
}

// NetAddress is one address of an interface.
type NetAddress struct {
	Family    string // "inet" or "inet6"
	Address   string
	PrefixLen int
	Scope     string // "local" (loopback), "link" or "global"
}
