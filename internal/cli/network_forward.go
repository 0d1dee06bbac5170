package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// Network forwards, as lxc network forward: a listen address of the host
// whose ports (or all traffic) go to instance addresses on the network.

func newNetworkForwardCmd(a *app) *cobra.Command {
	cmd := groupCmd("forward", "Manage network forwards")
	cmd.AddCommand(
		newForwardListCmd(a),
		newForwardShowCmd(a),
		newForwardCreateCmd(a),
		newForwardDeleteCmd(a),
		newForwardPortCmd(a),
	)
	return cmd
}

var forwardListing = listing[api.NetworkForward]{
	header:  []string{"LISTEN ADDRESS", "DESCRIPTION", "DEFAULT TARGET ADDRESS", "PORTS"},
	compare: func(a, b api.NetworkForward) int { return strings.Compare(a.ListenAddress, b.ListenAddress) },
	row: func(f api.NetworkForward) []string {
		return []string{f.ListenAddress, f.Description, f.Config["target_address"], strconv.Itoa(len(f.Ports))}
	},
}

func newForwardListCmd(a *app) *cobra.Command {
	return listUnderCmd(a, &cobra.Command{Use: "list NETWORK", Aliases: []string{"ls"}, Short: "List a network's forwards"},
		forwardListing, func(ctx context.Context, c *client.Client, name string) ([]api.NetworkForward, error) {
			return c.GetNetworkForwards(ctx, name)
		})
}

func newForwardShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show NETWORK LISTEN_ADDRESS",
		Short: "Show a network forward as YAML",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			f, _, err := c.GetNetworkForward(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			v := *f
			if v.Config == nil {
				v.Config = map[string]string{}
			}
			if v.Ports == nil {
				v.Ports = []api.NetworkForwardPort{}
			}
			return renderYAML(a.out, v)
		},
	}
}

func newForwardCreateCmd(a *app) *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "create NETWORK LISTEN_ADDRESS [KEY=VALUE...]",
		Short: "Create a network forward",
		Long: "Create a forward of LISTEN_ADDRESS, an address of the host, on NETWORK.\n" +
			"target_address=ADDRESS sends every port to an instance address; ports are\n" +
			"added with `hangar network forward port add`.\n\n" +
			"When standard input is a pipe or a file, it is read as the forward's YAML\n" +
			"(description, config, ports).",
		Example: "  hangar network forward create hangarbr0 192.0.2.10\n" +
			"  hangar network forward create hangarbr0 192.0.2.10 target_address=10.0.3.5",
		Args: minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.NetworkForwardsPost{ListenAddress: args[1]}
			if err := a.readBody(&req.NetworkForwardPut); err != nil {
				return err
			}
			if err := addSettings(cmd, &req.Config, args[2:]); err != nil {
				return err
			}
			if cmd.Flags().Changed("description") {
				req.Description = description
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.CreateNetworkForward(cmd.Context(), args[0], req); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Network forward %s created\n", args[1])
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "forward description")
	return cmd
}

func newForwardDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NETWORK LISTEN_ADDRESS",
		Aliases: []string{"rm"},
		Short:   "Delete a network forward",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteNetworkForward(cmd.Context(), args[0], args[1]); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Network forward %s deleted\n", args[1])
			return nil
		},
	}
}

func newForwardPortCmd(a *app) *cobra.Command {
	cmd := groupCmd("port", "Manage the ports of a network forward")
	cmd.AddCommand(newForwardPortAddCmd(a), newForwardPortRemoveCmd(a))
	return cmd
}

func newForwardPortAddCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "add NETWORK LISTEN_ADDRESS PROTOCOL LISTEN_PORTS TARGET_ADDRESS [TARGET_PORTS]",
		Short: "Add ports to a network forward",
		Long: "Forward PROTOCOL (tcp or udp) LISTEN_PORTS (80, 80-90 or 80,443) of the\n" +
			"forward's listen address to TARGET_ADDRESS, on the same ports or on\n" +
			"TARGET_PORTS (one, or as many as LISTEN_PORTS).",
		Example: "  hangar network forward port add hangarbr0 192.0.2.10 tcp 80 10.0.3.5 8080",
		Args:    rangeArgs(5, 6),
		RunE: func(cmd *cobra.Command, args []string) error {
			port := api.NetworkForwardPort{Protocol: args[2], ListenPort: args[3], TargetAddress: args[4]}
			if len(args) > 5 {
				port.TargetPort = args[5]
			}
			return updateForward(cmd.Context(), a, args[0], args[1], func(put *api.NetworkForwardPut) error {
				put.Ports = append(put.Ports, port)
				return nil
			})
		},
	}
}

func newForwardPortRemoveCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "remove NETWORK LISTEN_ADDRESS [PROTOCOL] [LISTEN_PORTS]",
		Short: "Remove ports from a network forward",
		Long: "Remove the port rule matching PROTOCOL and LISTEN_PORTS (each, when given);\n" +
			"when several match, --force removes them all.",
		Args: rangeArgs(2, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			return updateForward(cmd.Context(), a, args[0], args[1], func(put *api.NetworkForwardPut) (err error) {
				put.Ports, err = removePorts(put.Ports, args[2:], force)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "remove every port rule that matches")
	return cmd
}

// removePorts drops the port rules matching filter (protocol, then listen
// ports); more than one match is an error unless force is set.
func removePorts(ports []api.NetworkForwardPort, filter []string, force bool) ([]api.NetworkForwardPort, error) {
	match := func(p api.NetworkForwardPort) bool {
		return (len(filter) < 1 || p.Protocol == filter[0]) && (len(filter) < 2 || p.ListenPort == filter[1])
	}
	kept := make([]api.NetworkForwardPort, 0, len(ports))
	removed := 0
	for _, p := range ports {
		if match(p) {
			removed++
			continue
		}
		kept = append(kept, p)
	}
	switch {
	case removed == 0:
		return nil, errors.New("no matching port rule found")
	case removed > 1 && !force:
		return nil, fmt.Errorf("%d port rules match: use --force to remove them all", removed)
	}
	return kept, nil
}

// updateForward changes a forward with an ETag-guarded read-modify-write.
func updateForward(ctx context.Context, a *app, network, listen string, change func(*api.NetworkForwardPut) error) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	f, etag, err := c.GetNetworkForward(ctx, network, listen)
	if err != nil {
		return err
	}
	put := f.NetworkForwardPut
	if err := change(&put); err != nil {
		return err
	}
	return c.UpdateNetworkForward(ctx, network, f.ListenAddress, put, etag)
}
