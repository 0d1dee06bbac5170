package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
)

func newCopyCmd(a *app) *cobra.Command {
	var (
		instanceOnly, stateless bool
		pool                    string
		config                  []string
	)
	cmd := &cobra.Command{
		Use:     "copy SOURCE[/SNAPSHOT] DESTINATION",
		Aliases: []string{"cp"},
		Short:   "Copy an instance or one of its snapshots to a new instance",
		Long: "Copy an instance (with its snapshots unless --instance-only) or one of its\n" +
			"snapshots to a new, stopped instance with its own identity (MAC addresses,\n" +
			"uuid). Within one storage pool the copy is the pool's native clone; with\n" +
			"-s POOL on another pool its content is streamed there.",
		Example: "  hangar copy web1 web2\n  hangar copy web1/snap0 web-old --instance-only -s fast",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			// Copies are stateless: hangard copies no RAM state, so
			// --stateless is accepted for lxc's sake and changes nothing.
			_ = stateless
			req := api.InstancesPost{Name: args[1]}
			if strings.Contains(args[1], "/") {
				return usageErrorf(cmd, "destination %q: an instance name, not a snapshot", args[1])
			}
			if len(config) > 0 {
				if req.Config, err = parseKeyValueList(config); err != nil {
					return usageErrorf(cmd, "%v", err)
				}
			}
			if pool != "" {
				if _, _, err := c.GetStoragePool(cmd.Context(), pool); err != nil {
					return err
				}
				req.Devices = map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": pool}}
			}
			op, err := c.CopyInstance(cmd.Context(), args[0], instanceOnly, req)
			if err != nil {
				return err
			}
			return op.Wait(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.BoolVar(&instanceOnly, "instance-only", false, "copy the instance without its snapshots")
	f.BoolVar(&stateless, "stateless", false, "copy without the running state (copies always are)")
	f.StringVarP(&pool, "storage", "s", "", "storage pool of the copy's root disk")
	f.StringArrayVarP(&config, "config", "c", nil, "config key=value to set on the copy (repeatable)")
	return cmd
}

func newForkCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "fork SOURCE NEW",
		Short: "Fork a running instance",
		Long: "Fork a running instance into a new one that runs at once.\n\n" +
			"A virtual machine's fork resumes from a point-in-time save of the\n" +
			"source's memory and disk: it runs the processes the source had, with its\n" +
			"own name, MAC addresses and uuid; the source pauses only for the save.\n" +
			"A container's fork is a clone of its root taken while the source is\n" +
			"frozen, started afresh: its processes do not carry over.",
		Example: "  hangar fork vm1 vm2",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			op, err := c.ForkInstance(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			if err := op.Wait(cmd.Context()); err != nil {
				return err
			}
			md := op.Get().Metadata
			carried, _ := md["processes"].(bool)
			pause, _ := md["pause_ms"].(float64)
			if carried {
				fmt.Fprintf(a.out, "Forked %s as %s: it runs the source's processes (source paused %.0f ms)\n", args[0], args[1], pause)
			} else {
				fmt.Fprintf(a.out, "Forked %s as %s from a clone of its root: processes do not carry over (source frozen %.0f ms)\n", args[0], args[1], pause)
			}
			return nil
		},
	}
}
