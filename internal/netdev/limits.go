package netdev

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// The tc objects of a limit. One htb qdisc with one class, the default for
// all traffic, shapes a device's egress: htb rather than tbf because its
// class keeps the rate apart from the queue, so changing the rate is a
// class change, not a new qdisc.
var (
	htbRoot  = netlink.MakeHandle(1, 0)
	htbClass = netlink.MakeHandle(1, 1)
	ingressQ = netlink.MakeHandle(0xffff, 0)
)

// ifbAlias marks an ifb as made by this package for the link named after
// the prefix, so PruneLimits can find the ones whose link is gone.
const ifbAlias = "hangar-limits:"

// SetLimits limits the traffic of the instance NIC whose host side (a
// veth end or a tap) is called name, in bits per second; 0 removes a
// limit. As in LXD, ingress is traffic into the instance: the egress of
// the host side, shaped there. Egress is traffic out of the instance: the
// ingress of the host side, which tc can only police or redirect; this
// kernel has no police action, so it is redirected to an ifb of its own
// and shaped on the ifb's egress. Rates are rounded up to whole bytes
// per second. Setting the same limits again changes nothing.
func (h *Host) SetLimits(name string, ingress, egress uint64) error {
	if err := validName("name", name); err != nil {
		return err
	}
	l, err := linkByName(h.nl, name)
	if err != nil {
		return err
	}
	if l == nil {
		return errdefs.NotFound("interface %s not found", name)
	}
	if err := h.shape(l, ingress); err != nil {
		return fmt.Errorf("limit ingress of %s: %w", name, err)
	}
	if err := h.limitEgress(l, egress); err != nil {
		return fmt.Errorf("limit egress of %s: %w", name, err)
	}
	return nil
}

// shape makes l's egress an htb of rate bits per second, or removes the
// htb for 0.
func (h *Host) shape(l netlink.Link, rate uint64) error {
	if rate == 0 {
		has, err := h.hasHtb(l)
		if err != nil || !has {
			return err
		}
		q := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: htbRoot, Parent: netlink.HANDLE_ROOT})
		if err := h.nl.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove htb: %w", err)
		}
		return nil
	}
	has, err := h.hasHtb(l)
	if err != nil {
		return err
	}
	if !has { // htb cannot be changed in place: replace only another qdisc
		q := netlink.NewHtb(netlink.QdiscAttrs{LinkIndex: l.Attrs().Index, Handle: htbRoot, Parent: netlink.HANDLE_ROOT})
		q.Defcls = 1 // every packet to class 1:1
		if err := h.nl.QdiscReplace(q); err != nil {
			return fmt.Errorf("htb qdisc: %w", err)
		}
	}
	bits := (rate + 7) / 8 * 8 // netlink divides by 8: round up, not down
	c := netlink.NewHtbClass(netlink.ClassAttrs{LinkIndex: l.Attrs().Index, Parent: htbRoot, Handle: htbClass},
		netlink.HtbClassAttrs{Rate: bits, Ceil: bits})
	if err := h.nl.ClassReplace(c); err != nil {
		return fmt.Errorf("htb class: %w", err)
	}
	return nil
}

// hasHtb tells whether l's root qdisc is the htb shape makes.
func (h *Host) hasHtb(l netlink.Link) (bool, error) {
	qs, err := h.nl.QdiscList(l)
	if err != nil {
		return false, fmt.Errorf("list qdiscs: %w", err)
	}
	for _, q := range qs {
		if a := q.Attrs(); a.Parent == netlink.HANDLE_ROOT && a.Handle == htbRoot && q.Type() == "htb" {
			return true, nil
		}
	}
	return false, nil
}

// limitEgress redirects l's ingress to its ifb, shaped to rate bits per
// second; 0 removes both.
func (h *Host) limitEgress(l netlink.Link, rate uint64) error {
	name := l.Attrs().Name
	if rate == 0 {
		if err := h.delIngress(l); err != nil {
			return err
		}
		return h.deleteIfb(name)
	}
	ifb, err := h.ensureIfb(name)
	if err != nil {
		return err
	}
	if err := h.shape(ifb, rate); err != nil {
		return fmt.Errorf("ifb %s: %w", ifb.Attrs().Name, err)
	}
	if r, err := h.redirect(l); err != nil || r == ifb.Attrs().Index {
		return err // already redirected there, or the list failed
	}
	// Start from an empty ingress qdisc: a filter of an earlier ifb (or
	// anyone's) would send packets elsewhere first.
	if err := h.delIngress(l); err != nil {
		return err
	}
	if err := h.nl.QdiscAdd(&netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{
		LinkIndex: l.Attrs().Index, Handle: ingressQ, Parent: netlink.HANDLE_INGRESS}}); err != nil {
		return fmt.Errorf("ingress qdisc: %w", err)
	}
	f := &netlink.U32{ // no selector: matches every packet
		FilterAttrs: netlink.FilterAttrs{LinkIndex: l.Attrs().Index, Parent: ingressQ, Priority: 1,
			Protocol: unix.ETH_P_ALL},
		RedirIndex: ifb.Attrs().Index,
	}
	if err := h.nl.FilterAdd(f); err != nil {
		return fmt.Errorf("redirect to ifb: %w", err)
	}
	return nil
}

// ensureIfb returns the up ifb of the link called owner, made if missing.
func (h *Host) ensureIfb(owner string) (netlink.Link, error) {
	name := ifbName(owner)
	l, err := linkByName(h.nl, name)
	if err != nil {
		return nil, err
	}
	if l == nil {
		la := netlink.NewLinkAttrs()
		la.Name, la.Flags = name, net.FlagUp
		if err := h.nl.LinkAdd(&netlink.Ifb{LinkAttrs: la}); err != nil {
			return nil, fmt.Errorf("create ifb %s: %w", name, err)
		}
		if l, err = h.nl.LinkByName(name); err != nil {
			return nil, fmt.Errorf("look up ifb %s: %w", name, err)
		}
	} else if kind(l) != "ifb" {
		return nil, errdefs.Conflict("ifb %s: a link of that name exists and is a %s", name, kindName(kind(l)))
	}
	// The kernel ignores an alias given at creation: set it after.
	if alias := ifbAlias + owner; l.Attrs().Alias != alias {
		if err := h.nl.LinkSetAlias(l, alias); err != nil {
			return nil, fmt.Errorf("mark ifb %s: %w", name, err)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := h.nl.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("set ifb %s up: %w", name, err)
		}
	}
	return l, nil
}

// deleteIfb deletes the ifb of the link called owner, if there; a link
// of its name that is not an ifb is not this package's and is left.
func (h *Host) deleteIfb(owner string) error {
	l, err := linkByName(h.nl, ifbName(owner))
	if err != nil || l == nil || kind(l) != "ifb" {
		return err
	}
	if err := h.nl.LinkDel(l); err != nil && !notFound(err) {
		return fmt.Errorf("delete ifb %s: %w", l.Attrs().Name, err)
	}
	return nil
}

// delIngress removes l's ingress qdisc, and with it its filters.
func (h *Host) delIngress(l netlink.Link) error {
	qs, err := h.nl.QdiscList(l)
	if err != nil {
		return fmt.Errorf("list qdiscs: %w", err)
	}
	for _, q := range qs {
		if q.Attrs().Parent == netlink.HANDLE_INGRESS {
			if err := h.nl.QdiscDel(q); err != nil && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("remove ingress qdisc: %w", err)
			}
		}
	}
	return nil
}

// redirect returns the index of the device l's ingress is redirected to
// by a filter of this package, 0 for none.
func (h *Host) redirect(l netlink.Link) (int, error) {
	fs, err := h.nl.FilterList(l, ingressQ)
	if err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			return 0, nil // no ingress qdisc
		}
		return 0, fmt.Errorf("list ingress filters: %w", err)
	}
	if len(fs) != 1 {
		return 0, nil
	}
	if u, ok := fs[0].(*netlink.U32); ok && u.Priority == 1 && u.Sel != nil && len(u.Sel.Keys) == 1 &&
		u.Sel.Keys[0].Mask == 0 && len(u.Actions) == 1 {
		return u.RedirIndex, nil
	}
	return 0, nil
}

// Limits reads back the limits SetLimits put on the link called name, in
// bits per second; 0 is none.
func (h *Host) Limits(name string) (ingress, egress uint64, err error) {
	if err := validName("name", name); err != nil {
		return 0, 0, err
	}
	l, err := linkByName(h.nl, name)
	if err != nil {
		return 0, 0, err
	}
	if l == nil {
		return 0, 0, errdefs.NotFound("interface %s not found", name)
	}
	if ingress, err = h.rate(l); err != nil {
		return 0, 0, err
	}
	ifb, err := linkByName(h.nl, ifbName(name))
	if err != nil || ifb == nil {
		return ingress, 0, err
	}
	r, err := h.redirect(l)
	if err != nil || r != ifb.Attrs().Index {
		return ingress, 0, err
	}
	if egress, err = h.rate(ifb); err != nil {
		return 0, 0, err
	}
	return ingress, egress, nil
}

// rate reads the rate of l's htb class, in bits per second, 0 if none.
func (h *Host) rate(l netlink.Link) (uint64, error) {
	cs, err := h.nl.ClassList(l, 0)
	if err != nil {
		return 0, fmt.Errorf("list classes of %s: %w", l.Attrs().Name, err)
	}
	for _, c := range cs {
		if hc, ok := c.(*netlink.HtbClass); ok && hc.Handle == htbClass {
			return hc.Rate * 8, nil
		}
	}
	return 0, nil
}

// DeleteLimits removes the limits of the NIC whose host side is called
// name: its tc objects if the link is still there, and its ifb either
// way. It is for a stop that leaves the veth to go with the container's
// namespace (DeleteNetNS) rather than DeleteLink it and wait for the
// kernel. A NIC without limits is no error.
func (h *Host) DeleteLimits(name string) error {
	if err := validName("name", name); err != nil {
		return err
	}
	l, err := linkByName(h.nl, name)
	if err != nil {
		return err
	}
	if l != nil {
		if err := h.shape(l, 0); err != nil {
			return fmt.Errorf("limits of %s: %w", name, err)
		}
		if err := h.delIngress(l); err != nil {
			return fmt.Errorf("limits of %s: %w", name, err)
		}
	}
	return h.deleteIfb(name)
}

// PruneLimits deletes the ifbs of links that are gone: a veth goes with
// its container's namespace, and a daemon killed before it deleted the
// NIC leaves the ifb.
func (h *Host) PruneLimits() error {
	ls, err := h.nl.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	names := make(map[string]bool, len(ls))
	for _, l := range ls {
		names[l.Attrs().Name] = true
	}
	var errs []error
	for _, l := range ls {
		owner, ok := strings.CutPrefix(l.Attrs().Alias, ifbAlias)
		if !ok || kind(l) != "ifb" || names[owner] {
			continue
		}
		if err := h.nl.LinkDel(l); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("delete ifb %s: %w", l.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}

// ifbName is the name of the ifb of the link called owner: derived from
// it, so the ifb is found (and deleted) from the owner's name alone, even
// after the owner is gone. 12 hex digits of a hash keep it within 15 bytes.
func ifbName(owner string) string {
	sum := sha256.Sum256([]byte(owner))
	return "ifb" + hex.EncodeToString(sum[:6])
}
