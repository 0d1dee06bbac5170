package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

func newNetworkCmd(a *app) *cobra.Command {
	cmd := groupCmd("network", "Manage networks")
	cmd.AddCommand(
		newNetworkListCmd(a),
		newNetworkShowCmd(a),
		newNetworkCreateCmd(a),
		newNetworkEditCmd(a),
		newNetworkSetCmd(a),
		newNetworkUnsetCmd(a),
		newNetworkGetCmd(a),
		newNetworkDeleteCmd(a),
		newNetworkRenameCmd(a),
		newNetworkInfoCmd(a),
		newNetworkListLeasesCmd(a),
		newNetworkAttachCmd(a),
		newNetworkDetachCmd(a),
		newNetworkForwardCmd(a),
	)
	return cmd
}

func newNetworkListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{Use: "list", Short: "List networks",
		Long: "List the managed networks and the host's interfaces, as lxc network list."}, networkListing)
}

var networkListing = listing[api.Network]{
	header: []string{"NAME", "TYPE", "MANAGED", "IPV4", "IPV6", "DESCRIPTION", "USED BY", "STATE"},
	fetch: func(ctx context.Context, c *client.Client) ([]api.Network, error) {
		nets, err := c.GetNetworks(ctx)
		if err != nil {
			return nil, err
		}
		// lxc leaves out what no instance can use.
		return slices.DeleteFunc(nets, func(n api.Network) bool {
			return n.Type == "loopback" || n.Type == "unknown"
		}), nil
	},
	compare: func(a, b api.Network) int { return strings.Compare(a.Name, b.Name) },
	row: func(n api.Network) []string {
		return []string{n.Name, n.Type, yesNo(n.Managed), n.Config["ipv4.address"], n.Config["ipv6.address"],
			n.Description, strconv.Itoa(len(n.UsedBy)), strings.ToUpper(n.Status)}
	},
}

func newNetworkShowCmd(a *app) *cobra.Command {
	return showCmd(a, &cobra.Command{Use: "show NAME", Short: "Show a network as YAML"},
		func(ctx context.Context, c *client.Client, name string) (any, error) {
			n, _, err := c.GetNetwork(ctx, name)
			if err != nil {
				return nil, err
			}
			v := *n
			v.NetworkPut = networkPutView(n.NetworkPut)
			if v.UsedBy == nil {
				v.UsedBy = []string{}
			}
			return v, nil
		})
}

// networkPutView fills a nil config so YAML shows "config: {}".
func networkPutView(put api.NetworkPut) api.NetworkPut {
	if put.Config == nil {
		put.Config = map[string]string{}
	}
	return put
}

func newNetworkCreateCmd(a *app) *cobra.Command {
	var typ, description string
	cmd := &cobra.Command{
		Use:   "create NAME [KEY=VALUE...]",
		Short: "Create a managed network",
		Long: "Create a managed network: a bridge (the default) with NAT, DHCP and DNS,\n" +
			"or a macvlan network over a host interface (parent=IFACE).\n\n" +
			"When standard input is a pipe or a file, it is read as the network's YAML\n" +
			"(config, description); KEY=VALUE arguments are added to it.",
		Example: "  hangar network create br1\n" +
			"  hangar network create br1 ipv4.address=10.10.0.1/24 ipv6.address=none\n" +
			"  hangar network create mv0 --type macvlan parent=eth0",
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.NetworksPost{Name: args[0], Type: typ}
			if err := a.readBody(&req.NetworkPut); err != nil {
				return err
			}
			if err := addSettings(cmd, &req.Config, args[1:]); err != nil {
				return err
			}
			if cmd.Flags().Changed("description") {
				req.Description = description
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.CreateNetwork(cmd.Context(), req); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Network %s created\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVarP(&typ, "type", "t", "", "network type: bridge (default) or macvlan")
	cmd.Flags().StringVar(&description, "description", "", "network description")
	return cmd
}

func newNetworkEditCmd(a *app) *cobra.Command {
	return editCmd(a, &cobra.Command{
		Use:   "edit NAME",
		Short: "Edit a network as YAML",
		Long: "Edit a managed network's description and config as YAML.\n\n" +
			"Opens $VISUAL, $EDITOR or vi; when standard input is not a terminal,\n" +
			"the new network is read from it instead.",
	}, editing[api.NetworkPut]{
		what: func(name string) string { return "network " + name },
		get: func(ctx context.Context, c *client.Client, name string) (api.NetworkPut, string, error) {
			n, etag, err := c.GetNetwork(ctx, name)
			if err != nil {
				return api.NetworkPut{}, "", err
			}
			return networkPutView(n.NetworkPut), etag, nil
		},
		put: func(ctx context.Context, c *client.Client, name string, put api.NetworkPut, etag string) error {
			return c.UpdateNetwork(ctx, name, put, etag)
		},
	})
}

func newNetworkSetCmd(a *app) *cobra.Command {
	cmd := newSetCmd(a, "network", updateNetworkConfig)
	cmd.Example = "  hangar network set hangarbr0 ipv4.nat=false dns.domain=lan"
	return cmd
}

func newNetworkUnsetCmd(a *app) *cobra.Command { return newUnsetCmd(a, "network", updateNetworkConfig) }

// updateNetworkConfig changes a managed network's config with an
// ETag-guarded read-modify-write.
func updateNetworkConfig(ctx context.Context, c *client.Client, name string, change func(map[string]string) (map[string]string, error)) error {
	n, etag, err := c.GetNetwork(ctx, name)
	if err != nil {
		return err
	}
	if !n.Managed {
		return fmt.Errorf("only managed networks can be modified (%s is a host interface)", name)
	}
	put := n.NetworkPut
	if put.Config, err = change(put.Config); err != nil {
		return err
	}
	return c.UpdateNetwork(ctx, name, put, etag)
}

func newNetworkGetCmd(a *app) *cobra.Command {
	return newGetCmd(a, "network", func(ctx context.Context, c *client.Client, name string) (map[string]string, error) {
		n, _, err := c.GetNetwork(ctx, name)
		if err != nil {
			return nil, err
		}
		return n.Config, nil
	})
}

func newNetworkDeleteCmd(a *app) *cobra.Command {
	return deleteCmd(a, &cobra.Command{Use: "delete NAME...", Short: "Delete managed networks"},
		func(ctx context.Context, c *client.Client, name string) error {
			if err := c.DeleteNetwork(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Network %s deleted\n", name)
			return nil
		})
}

func newNetworkRenameCmd(a *app) *cobra.Command {
	return renameCmd(a, &cobra.Command{Use: "rename OLD NEW", Short: "Rename a managed network"},
		func(ctx context.Context, c *client.Client, from, to string) error {
			if err := c.RenameNetwork(ctx, from, to); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Network %s renamed to %s\n", from, to)
			return nil
		})
}

func newNetworkInfoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "info NAME",
		Short: "Show a network's live state",
		Long:  "Show a network's interface: addresses, MTU, state and traffic counters, as lxc network info.",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.GetNetworkState(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return renderNetworkInfo(a.out, args[0], st)
		},
	}
}

// renderNetworkInfo prints what lxc network info prints.
func renderNetworkInfo(w io.Writer, name string, st *api.NetworkState) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("Name: %s", name)
	p("MAC address: %s", st.Hwaddr)
	p("MTU: %d", st.Mtu)
	p("State: %s", st.State)
	p("Type: %s", st.Type)
	if len(st.Addresses) > 0 {
		p("\nIP addresses:")
		for _, addr := range st.Addresses {
			p("  %s\t%s/%s (%s)", addr.Family, addr.Address, addr.Netmask, addr.Scope)
		}
	}
	p("\nNetwork usage:")
	p("  Bytes received: %s", formatBytes(st.Counters.BytesReceived))
	p("  Bytes sent: %s", formatBytes(st.Counters.BytesSent))
	p("  Packets received: %d", st.Counters.PacketsReceived)
	p("  Packets sent: %d", st.Counters.PacketsSent)
	if br := st.Bridge; br != nil {
		p("\nBridge:")
		p("  ID: %s", br.ID)
		p("  STP: %v", br.STP)
		p("  Forward delay: %d", br.ForwardDelay)
		p("  Default VLAN ID: %d", br.VLANDefault)
		p("  VLAN filtering: %v", br.VLANFiltering)
		p("  Upper devices: %s", strings.Join(br.UpperDevices, ", "))
	}
	if bond := st.Bond; bond != nil {
		p("\nBond:")
		p("  Mode: %s", bond.Mode)
		p("  Transmit policy: %s", bond.TransmitPolicy)
		p("  Up delay: %d", bond.UpDelay)
		p("  Down delay: %d", bond.DownDelay)
		p("  MII Frequency: %d", bond.MIIFrequency)
		p("  MII state: %s", bond.MIIState)
		p("  Lower devices: %s", strings.Join(bond.LowerDevices, ", "))
	}
	if vlan := st.VLAN; vlan != nil {
		p("\nVLAN:")
		p("  Lower device: %s", vlan.LowerDevice)
		p("  VLAN ID: %d", vlan.VID)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

var leaseListing = listing[api.NetworkLease]{
	header: []string{"HOSTNAME", "MAC ADDRESS", "IP ADDRESS", "TYPE"},
	compare: func(a, b api.NetworkLease) int {
		if c := strings.Compare(a.Hostname, b.Hostname); c != 0 {
			return c
		}
		return strings.Compare(a.Address, b.Address)
	},
	row: func(l api.NetworkLease) []string {
		return []string{l.Hostname, l.Hwaddr, l.Address, strings.ToUpper(l.Type)}
	},
}

func newNetworkListLeasesCmd(a *app) *cobra.Command {
	return listUnderCmd(a, &cobra.Command{Use: "list-leases NETWORK", Short: "List a network's DHCP leases and reserved addresses"},
		leaseListing, func(ctx context.Context, c *client.Client, name string) ([]api.NetworkLease, error) {
			return c.GetNetworkLeases(ctx, name)
		})
}

func newNetworkAttachCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "attach NETWORK INSTANCE [DEVICE] [IFNAME]",
		Short: "Attach a network to an instance",
		Long: "Add a nic device to an instance, named DEVICE (the network's name by\n" +
			"default), with IFNAME as the interface's name inside the instance.\n" +
			"A managed network is attached by name (network=NETWORK); a host\n" +
			"interface as the parent of a macvlan NIC, or a bridged one for a bridge.",
		Example: "  hangar network attach hangarbr0 c1 eth1 eth1",
		Args:    rangeArgs(2, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			netName, instName := args[0], args[1]
			devName := netName
			if len(args) > 2 {
				devName = args[2]
			}
			n, _, err := c.GetNetwork(ctx, netName)
			if err != nil {
				return err
			}
			dev := nicDevice(n)
			if len(args) > 3 {
				dev["name"] = args[3]
			}
			inst, etag, err := c.GetInstance(ctx, instName)
			if err != nil {
				return err
			}
			if _, ok := inst.Devices[devName]; ok {
				return fmt.Errorf("instance %s already has a device named %s", instName, devName)
			}
			// A PATCH adds the one device; the ETag makes it fail rather
			// than race a concurrent change that added the same name.
			patch := map[string]any{"devices": map[string]map[string]string{devName: dev}}
			return c.PatchInstance(ctx, instName, patch, etag)
		},
	}
}

// nicDevice is the device attach adds for network n, as lxc makes it.
func nicDevice(n *api.Network) map[string]string {
	if n.Managed {
		return map[string]string{"type": "nic", "network": n.Name}
	}
	nictype := "macvlan"
	if n.Type == "bridge" {
		nictype = "bridged"
	}
	return map[string]string{"type": "nic", "nictype": nictype, "parent": n.Name}
}

func newNetworkDetachCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "detach NETWORK INSTANCE [DEVICE]",
		Short: "Detach a network from an instance",
		Long: "Remove the instance's nic device on NETWORK; DEVICE names it when the\n" +
			"instance has more than one.",
		Args: rangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			netName, instName := args[0], args[1]
			devName := ""
			if len(args) > 2 {
				devName = args[2]
			}
			return updateInstance(cmd.Context(), c, instName, func(put *api.InstancePut) error {
				name, err := nicOn(put.Devices, netName, devName)
				if err != nil {
					return err
				}
				delete(put.Devices, name)
				return nil
			})
		},
	}
}

// nicOn finds the instance's nic device on network netName: the one named
// devName, or the only one.
func nicOn(devices map[string]map[string]string, netName, devName string) (string, error) {
	on := func(d map[string]string) bool {
		return d["type"] == "nic" && (d["network"] == netName || d["parent"] == netName)
	}
	if devName != "" {
		d, ok := devices[devName]
		switch {
		case !ok:
			return "", fmt.Errorf("the instance has no device named %s", devName)
		case !on(d):
			return "", fmt.Errorf("device %s is not a nic on network %s", devName, netName)
		}
		return devName, nil
	}
	for _, name := range sortedKeys(devices) {
		if !on(devices[name]) {
			continue
		}
		if devName != "" {
			return "", fmt.Errorf("more than one device is on network %s: give the device's name", netName)
		}
		devName = name
	}
	if devName == "" {
		return "", fmt.Errorf("no device of the instance is on network %s", netName)
	}
	return devName, nil
}
