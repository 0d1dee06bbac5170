package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

func newConfigCmd(a *app) *cobra.Command {
	cmd := groupCmd("config", "Manage instance configuration")
	cmd.AddCommand(
		newConfigSetCmd(a),
		newConfigUnsetCmd(a),
		newConfigGetCmd(a),
		newConfigShowCmd(a),
		newConfigEditCmd(a),
		newDeviceCmd(a, instanceDevices),
		newTrustCmd(a),
	)
	return cmd
}

// configUpdater applies a change to the config of the named instance or
// profile with an ETag-guarded read-modify-write.
type configUpdater func(ctx context.Context, c *client.Client, name string, change func(map[string]string) (map[string]string, error)) error

func newConfigSetCmd(a *app) *cobra.Command {
	cmd := newSetCmd(a, "instance", updateInstanceConfig)
	cmd.Use = "set [NAME] KEY=VALUE...|KEY VALUE"
	cmd.Long += " Changed limits apply to a running instance at once;\nenvironment changes at its next start." +
		"\nWithout an instance name, the keys are the server's (core.https_address, core.trust_password, ...)."
	cmd.Example = "  hangar config set c1 limits.memory=512MiB limits.cpu=2\n" +
		"  hangar config set c1 user.motd 'hello world'\n" +
		"  hangar config set core.https_address 127.0.0.1:8443"
	cmd.Args = minArgs(1)
	instance := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if !serverKeys(args) {
			if err := minArgs(2)(cmd, args); err != nil {
				return err
			}
			return instance(cmd, args)
		}
		settings, err := parseKeyValues(args)
		if err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		return c.UpdateServerConfig(cmd.Context(), settings)
	}
	return cmd
}

// serverKeys tells whether config set/unset/get args name server keys
// rather than an instance: as lxc reads them, the first argument is then
// a key (instance names have no dots) or KEY=VALUE.
func serverKeys(args []string) bool {
	return len(args) > 0 && strings.ContainsAny(args[0], ".=")
}

func newConfigUnsetCmd(a *app) *cobra.Command {
	cmd := newUnsetCmd(a, "instance", updateInstanceConfig)
	cmd.Use = "unset [NAME] KEY"
	cmd.Args = rangeArgs(1, 2)
	instance := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 2 {
			return instance(cmd, args)
		}
		if !serverKeys(args) {
			return usageErrorf(cmd, "%q is not a server key: give an instance and a key", args[0])
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		return c.UpdateServerConfig(cmd.Context(), map[string]string{args[0]: ""})
	}
	return cmd
}

// newSetCmd is `set NAME KEY=VALUE...` for instances and profiles alike.
func newSetCmd(a *app, noun string, update configUpdater) *cobra.Command {
	return &cobra.Command{
		Use:   "set NAME KEY=VALUE...|KEY VALUE",
		Short: "Set " + noun + " configuration keys",
		Long:  "Set " + noun + " configuration keys. An empty value unsets the key.",
		Args:  minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			settings, err := parseKeyValues(args[1:])
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			for _, k := range sortedKeys(settings) {
				if settings[k] == "" {
					if err := checkUnsettable(k); err != nil {
						return err
					}
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			return update(cmd.Context(), c, args[0], func(cfg map[string]string) (map[string]string, error) {
				return applySettings(cfg, settings), nil
			})
		},
	}
}

// newUnsetCmd is `unset NAME KEY` for instances and profiles alike.
func newUnsetCmd(a *app, noun string, update configUpdater) *cobra.Command {
	return &cobra.Command{
		Use:   "unset NAME KEY",
		Short: "Unset " + the(noun) + " configuration key",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[1]
			if err := checkUnsettable(key); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			return update(cmd.Context(), c, args[0], func(cfg map[string]string) (map[string]string, error) {
				if _, ok := cfg[key]; !ok {
					return nil, fmt.Errorf("can't unset key '%s', it's not currently set", key)
				}
				return applySettings(cfg, map[string]string{key: ""}), nil
			})
		},
	}
}

// the puts the right article before a noun: "an instance", "a profile".
func the(noun string) string {
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// readOnlyPrefixes are the config keys hangard owns: image.* is copied
// from the image, volatile.* is daemon state. The daemon refuses a PUT that
// changes one, but keeps one that a PUT leaves out, so unsetting one would
// succeed without doing anything.
var readOnlyPrefixes = []string{"image.", "volatile."}

// checkUnsettable refuses to unset a read-only key, with the daemon's words
// for a read-only key.
func checkUnsettable(key string) error {
	for _, p := range readOnlyPrefixes {
		if strings.HasPrefix(key, p) {
			return fmt.Errorf("config key %q is read-only", key)
		}
	}
	return nil
}

// updateInstanceConfig changes an instance's local config.
func updateInstanceConfig(ctx context.Context, c *client.Client, name string, change func(map[string]string) (map[string]string, error)) error {
	return updateInstance(ctx, c, name, func(put *api.InstancePut) (err error) {
		put.Config, err = change(put.Config)
		return err
	})
}

// updateInstance changes an instance's writable part with a
// read-modify-write guarded by the ETag, so that a concurrent change is
// refused rather than silently overwritten, and waits for it.
func updateInstance(ctx context.Context, c *client.Client, name string, change func(*api.InstancePut) error) error {
	return updateInstanceFrom(ctx, c, name, func(_ *api.Instance, put *api.InstancePut) error { return change(put) })
}

// updateInstanceFrom is updateInstance for changes that depend on more than
// the writable part (the expanded devices, say): change also gets the
// instance as read.
func updateInstanceFrom(ctx context.Context, c *client.Client, name string, change func(*api.Instance, *api.InstancePut) error) error {
	inst, etag, err := c.GetInstance(ctx, name)
	if err != nil {
		return err
	}
	put := inst.InstancePut
	if err := change(inst, &put); err != nil {
		return err
	}
	op, err := c.UpdateInstance(ctx, name, put, etag)
	if err != nil {
		return err
	}
	return op.Wait(ctx)
}

func newConfigGetCmd(a *app) *cobra.Command {
	var expanded bool
	cmd := newGetCmd(a, "instance", func(ctx context.Context, c *client.Client, name string) (map[string]string, error) {
		inst, _, err := c.GetInstance(ctx, name)
		if err != nil {
			return nil, err
		}
		if expanded {
			return inst.ExpandedConfig, nil
		}
		return inst.Config, nil
	})
	cmd.Flags().BoolVarP(&expanded, "expanded", "e", false, "include the keys inherited from profiles")
	cmd.Use = "get [NAME] KEY"
	cmd.Args = rangeArgs(1, 2)
	instance := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 2 {
			return instance(cmd, args)
		}
		if !serverKeys(args) {
			return usageErrorf(cmd, "%q is not a server key: give an instance and a key", args[0])
		}
		c, err := a.client()
		if err != nil {
			return err
		}
		srv, _, err := c.GetServer(cmd.Context())
		if err != nil {
			return err
		}
		if v, ok := srv.Config[args[0]]; ok {
			fmt.Fprintln(a.out, v)
		} else {
			fmt.Fprintln(a.out)
		}
		return nil
	}
	return cmd
}

// newGetCmd is `get NAME KEY` for instances and profiles alike.
func newGetCmd(a *app, noun string, config func(ctx context.Context, c *client.Client, name string) (map[string]string, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME KEY",
		Short: "Print " + the(noun) + " configuration value",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			cfg, err := config(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			// An unset key prints an empty line, as in lxc.
			fmt.Fprintln(a.out, cfg[args[1]])
			return nil
		},
	}
}

func newConfigShowCmd(a *app) *cobra.Command {
	var expanded bool
	cmd := showCmd(a, &cobra.Command{Use: "show NAME", Short: "Show an instance's configuration as YAML"},
		func(ctx context.Context, c *client.Client, name string) (any, error) {
			inst, _, err := c.GetInstance(ctx, name)
			if err != nil {
				return nil, err
			}
			return instanceConfigView(inst, expanded), nil
		})
	cmd.Flags().BoolVarP(&expanded, "expanded", "e", false, "show the configuration with profiles applied")
	return cmd
}

// instanceConfigView is what config show prints and config edit edits: the
// writable part of the instance, optionally with profiles applied.
func instanceConfigView(inst *api.Instance, expanded bool) api.InstancePut {
	put := inst.InstancePut
	if expanded {
		put.Config = inst.ExpandedConfig
		put.Devices = inst.ExpandedDevices
	}
	if put.Config == nil {
		put.Config = map[string]string{}
	}
	if put.Devices == nil {
		put.Devices = map[string]map[string]string{}
	}
	if put.Profiles == nil {
		put.Profiles = []string{}
	}
	return put
}

func newConfigEditCmd(a *app) *cobra.Command {
	return editCmd(a, &cobra.Command{
		Use:   "edit NAME",
		Short: "Edit an instance's configuration as YAML",
		Long: "Edit an instance's configuration as YAML.\n\n" +
			"Opens $VISUAL, $EDITOR or vi; when standard input is not a terminal,\n" +
			"the new configuration is read from it instead.",
		Example: "  hangar config edit c1\n  hangar config show c1 | sed s/512MiB/1GiB/ | hangar config edit c1",
	}, editing[api.InstancePut]{
		what: func(name string) string { return "configuration of instance " + name },
		get: func(ctx context.Context, c *client.Client, name string) (api.InstancePut, string, error) {
			inst, etag, err := c.GetInstance(ctx, name)
			if err != nil {
				return api.InstancePut{}, "", err
			}
			return instanceConfigView(inst, false), etag, nil
		},
		put: func(ctx context.Context, c *client.Client, name string, put api.InstancePut, etag string) error {
			op, err := c.UpdateInstance(ctx, name, put, etag)
			if err != nil {
				return err
			}
			return op.Wait(ctx)
		},
	})
}
