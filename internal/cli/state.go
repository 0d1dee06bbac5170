package cli

import (
	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// stateCommand describes one of the state-changing commands.
type stateCommand struct {
	use      string
	action   string
	short    string
	aliases  []string
	hasForce bool
	// hasStateful offers --stateful (a VM's standby and restore).
	hasStateful bool
}

var (
	stateStart    = stateCommand{use: "start", action: api.ActionStart, short: "Start instances"}
	stateStop     = stateCommand{use: "stop", action: api.ActionStop, short: "Stop instances", hasForce: true, hasStateful: true}
	stateRestart  = stateCommand{use: "restart", action: api.ActionRestart, short: "Restart instances", hasForce: true}
	stateFreeze   = stateCommand{use: "freeze", action: api.ActionFreeze, short: "Freeze (pause) instances", aliases: []string{"pause"}}
	stateUnfreeze = stateCommand{use: "unfreeze", action: api.ActionUnfreeze, short: "Unfreeze (resume) instances", aliases: []string{"resume"}}
)

func newStateCmd(a *app, sc stateCommand) *cobra.Command {
	var (
		force    bool
		timeout  int
		stateful bool
	)
	cmd := &cobra.Command{
		Use:     sc.use + " NAME...",
		Short:   sc.short,
		Aliases: sc.aliases,
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			req := api.InstanceStatePut{Action: sc.action, Timeout: timeout, Force: force, Stateful: stateful}
			return changeState(cmd, c, args, req)
		},
	}
	if sc.hasForce {
		cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the instance instead of asking it to shut down")
	}
	if sc.hasStateful {
		cmd.Flags().BoolVar(&stateful, "stateful", false, "save the VM's whole state (standby); the next start restores it")
	}
	cmd.Flags().IntVar(&timeout, "timeout", -1, "seconds to wait for a clean shutdown (-1: the daemon's default)")
	return cmd
}

// changeState asks for all the changes first, so that the daemon works on
// the instances in parallel, then waits for each.
func changeState(cmd *cobra.Command, c *client.Client, names []string, req api.InstanceStatePut) error {
	ctx := cmd.Context()
	ops := map[string]*client.Operation{}
	submitErrs := map[string]error{}
	for _, name := range names {
		op, err := c.UpdateInstanceState(ctx, name, req)
		if err != nil {
			submitErrs[name] = err
			continue
		}
		ops[name] = op
	}
	return forEach(names, func(name string) error {
		if err := submitErrs[name]; err != nil {
			return err
		}
		return ops[name].Wait(ctx)
	})
}
