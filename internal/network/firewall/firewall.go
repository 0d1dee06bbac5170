package firewall

import (
	"errors"
	"fmt"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/userdata"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// TableName is the name of the firewall's tables: `inet hangar` (routing,
// NAT, forwards) and `bridge hangar` (MAC filters of bridge ports).
const TableName = "hangar"

var (
	inetTable   = &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}
	bridgeTable = &nftables.Table{Name: TableName, Family: nftables.TableFamilyBridge}
)

// Firewall is hangard's `inet hangar` and `bridge hangar` tables in one
// network namespace. Its methods are safe for concurrent use; each change
// is one atomic batch over both.
type Firewall struct {
	mu   sync.Mutex
	nsFd int // the namespace, pinned: the socket and the sysctls go there
	conn *nftables.Conn
}

// Option configures New.
type Option func(*config)

type config struct{ netns string }

// InNetNS opens the firewall in the network namespace at path
// (/proc/PID/ns/net, /run/netns/NAME, /proc/self/fd/N) instead of the
// calling process's own.
func InNetNS(path string) Option { return func(c *config) { c.netns = path } }

// New opens the firewall for the network namespace of the calling process
// (its main thread's: /proc/self/ns/net), or of the one InNetNS names. It
// reads the tables once, so a kernel without nftables or a caller without
// CAP_NET_ADMIN fails here and not at the first Apply. Close releases it.
func New(opts ...Option) (*Firewall, error) {
	c := config{netns: "/proc/self/ns/net"}
	for _, o := range opts {
		o(&c)
	}
	fd, err := unix.Open(c.netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open network namespace %s: %w", c.netns, err)
	}
	if typ, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE); err != nil || typ != unix.CLONE_NEWNET {
		unix.Close(fd)
		return nil, fmt.Errorf("%s is not a network namespace", c.netns)
	}
	f := &Firewall{nsFd: fd}
	if err := f.dial(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if _, err := f.conn.ListTablesOfFamily(nftables.TableFamilyINet); err != nil {
		f.Close()
		return nil, fmt.Errorf("nftables in %s: %w", c.netns, err)
	}
	return f, nil
}

// dial opens the netlink socket. It lasts: a socket made in another
// namespace costs a thread switch, and the batch of a hundred forwards is
// a few dozen microseconds of kernel work.
func (f *Firewall) dial() error {
	c, err := nftables.New(nftables.WithNetNSFd(f.nsFd), nftables.AsLasting(), nftables.WithSockOptions(bigBuffers))
	if err != nil {
		return fmt.Errorf("nftables netlink socket: %w", err)
	}
	f.conn = c
	return nil
}

// socketBuffer is the netlink socket's send and receive buffer. A batch
// is one sendmsg, and the kernel refuses one larger than the send buffer
// (212 KiB by default: some 700 forwards, or one port range of 8000
// ports mapped one to one). 16 MiB holds several full 1-65535 ranges;
// the memory is only used while a batch is in flight.
const socketBuffer = 16 << 20

// bigBuffers sets the buffers past net.core.[rw]mem_max, as the daemon
// has CAP_NET_ADMIN.
func bigBuffers(c *netlink.Conn) error {
	raw, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("netlink socket: %w", err)
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		for _, opt := range []int{unix.SO_SNDBUFFORCE, unix.SO_RCVBUFFORCE} {
			if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, opt, socketBuffer); e != nil {
				serr = fmt.Errorf("netlink socket buffer: %w", e)
				return
			}
		}
	})
	return errors.Join(err, serr)
}

// Close releases the socket and the namespace. The rules stay: they are
// the kernel's until Apply or Remove changes them.
func (f *Firewall) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var err error
	if f.conn != nil {
		err = f.conn.CloseLasting()
		f.conn = nil
	}
	if f.nsFd >= 0 {
		err = errors.Join(err, unix.Close(f.nsFd))
		f.nsFd = -1
	}
	return err
}

// Apply makes the tables exactly st in one netlink batch, which the
// kernel commits whole or not at all: the old tables are deleted and the
// new ones made in the same transaction, so no packet ever sees half a
// ruleset and whatever the tables held before (a daemon killed with -9
// included) is replaced, never added to. A table st has no rules for is
// not made; an empty st removes both. A State that does not validate
// returns an errdefs.ErrInvalidArgument (or ErrConflict for two forwards
// of one port, two filters of one link) and changes nothing.
func (f *Firewall) Apply(st State) error {
	st, err := st.validate()
	if err != nil {
		return err
	}
	return f.commit(build(st))
}

// Remove deletes both tables, where they exist.
func (f *Firewall) Remove() error { return f.commit(build(State{})) }

func (f *Firewall) commit(plans []tablePlan) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return errors.New("firewall is closed")
	}
	c := f.conn
	// Adding a table first makes its delete succeed whether or not it
	// existed; the batch then recreates it from nothing.
	for _, p := range plans {
		c.AddTable(p.table)
		c.DelTable(p.table)
	}
	setID := uint32(0) // ours, not the library's global counter
	for _, p := range plans {
		if len(p.rules) == 0 {
			continue
		}
		c.AddTable(p.table)
		chains := make(map[string]*nftables.Chain)
		for _, spec := range p.chains {
			for _, r := range p.rules {
				if r.chain != spec.name {
					continue
				}
				ch := &nftables.Chain{Name: spec.name, Table: p.table}
				if spec.hook != nil {
					ch.Type, ch.Hooknum, ch.Priority = spec.typ, spec.hook, spec.priority
					ch.Policy = ptr(nftables.ChainPolicyAccept)
				}
				chains[spec.name] = c.AddChain(ch)
				break
			}
		}
		for i, r := range p.rules {
			if r.set != nil {
				// Anonymous sets are named by the kernel from the
				// template; the id binds the set to the rule within
				// this batch.
				setID++
				s := &nftables.Set{
					Table: p.table, ID: setID, Name: "__set%d",
					Anonymous: true, Constant: true,
					KeyType: r.set.key, KeyByteOrder: binaryutil.BigEndian,
				}
				if r.set.isMap {
					s.Name, s.IsMap, s.DataType = "__map%d", true, r.set.data
				}
				if r.set.name != "" {
					// A named set's key byte order is what nft
					// prints it by: strings (ifname) are host order.
					s.Name, s.Anonymous, s.Constant = r.set.name, false, false
					s.KeyByteOrder = binaryutil.NativeEndian
				}
				if err := c.AddSet(s, r.set.elems); err != nil {
					return fmt.Errorf("nftables set for %s %s rule %d: %w", p.table.Name, r.chain, i, err)
				}
				r.lookup.SetName, r.lookup.SetID = s.Name, s.ID
			}
			nr := &nftables.Rule{Table: p.table, Chain: chains[r.chain], Exprs: r.exprs}
			if r.comment != "" {
				nr.UserData = userdata.AppendString(nil, userdata.TypeComment, r.comment)
			}
			c.AddRule(nr)
		}
	}
	if err := c.Flush(); err != nil {
		// A failed batch may leave replies unread on the socket; the
		// next call starts on a fresh one.
		_ = c.CloseLasting()
		f.conn = nil
		err = fmt.Errorf("nftables tables inet and bridge %s: %w", TableName, err)
		if derr := f.dial(); derr != nil {
			return errors.Join(err, derr)
		}
		return err
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
