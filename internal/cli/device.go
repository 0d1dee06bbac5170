package cli

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// devices maps device names to their configuration, as in api.InstancePut.
type devices = map[string]map[string]string

// deviceHolder is what `config device` and `profile device` edit: an
// instance's or a profile's own devices. One implementation of every
// device command serves both, as lxc's does; the holder says how to read
// and write its devices.
type deviceHolder struct {
	noun string // "instance" or "profile", for usage lines and help
	// inherits is set when the holder also has devices from profiles
	// (an instance): those cannot be changed on it, only overridden.
	inherits bool
	// get returns the holder's own devices and, for an instance, the ones
	// it has with its profiles applied.
	get func(ctx context.Context, c *client.Client, name string) (local, expanded devices, err error)
	// update lets change edit a copy of the holder's own devices (never
	// nil) and writes them back with the ETag they were read with, so a
	// concurrent change is refused rather than overwritten. Nothing is sent
	// when change fails.
	update func(ctx context.Context, c *client.Client, name string, change func(local, expanded devices) error) error
}

var instanceDevices = deviceHolder{
	noun:     "instance",
	inherits: true,
	get: func(ctx context.Context, c *client.Client, name string) (devices, devices, error) {
		inst, _, err := c.GetInstance(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		return inst.Devices, inst.ExpandedDevices, nil
	},
	update: func(ctx context.Context, c *client.Client, name string, change func(local, expanded devices) error) error {
		return updateInstanceFrom(ctx, c, name, func(inst *api.Instance, put *api.InstancePut) error {
			put.Devices = cloneDevices(put.Devices)
			return change(put.Devices, inst.ExpandedDevices)
		})
	},
}

var profileDevices = deviceHolder{
	noun: "profile",
	get: func(ctx context.Context, c *client.Client, name string) (devices, devices, error) {
		p, _, err := c.GetProfile(ctx, name)
		if err != nil {
			return nil, nil, err
		}
		return p.Devices, nil, nil
	},
	update: func(ctx context.Context, c *client.Client, name string, change func(local, expanded devices) error) error {
		return updateProfile(ctx, c, name, func(put *api.ProfilePut) error {
			put.Devices = cloneDevices(put.Devices)
			return change(put.Devices, nil)
		})
	},
}

// cloneDevices copies every device, so that changing one never changes
// what was read.
func cloneDevices(d devices) devices {
	out := make(devices, len(d))
	for name, cfg := range d {
		out[name] = maps.Clone(cfg)
	}
	return out
}

// lxcError is an error in lxc's words, capitals included, as scripts
// written for lxc match them.
type lxcError string

func (e lxcError) Error() string { return string(e) }

// The errors of the device commands.
const (
	errDeviceExists     lxcError = "The device already exists"
	errNoDevice         lxcError = "Device doesn't exist"
	errNoProfileDevice  lxcError = "The profile device doesn't exist"
	errProfileDevGet    lxcError = "Device from profile(s) cannot be retrieved for individual instance"
	errProfileDevSet    lxcError = "Device from profile(s) cannot be modified for individual instance. Override device or modify profile instead"
	errProfileDevRemove lxcError = "Device from profile(s) cannot be removed from individual instance. Override device or modify profile instead"
)

// ownDevice returns the holder's own device called name, or why it cannot
// be used: it does not exist, or it comes from a profile (inherited is the
// error to give then).
func ownDevice(local, expanded devices, name string, inherited lxcError) (map[string]string, error) {
	if d, ok := local[name]; ok {
		return d, nil
	}
	if _, ok := expanded[name]; ok {
		return nil, inherited
	}
	return nil, errNoDevice
}

func newDeviceCmd(a *app, h deviceHolder) *cobra.Command {
	cmd := groupCmd("device", "Manage "+the(h.noun)+"'s devices")
	cmd.AddCommand(
		newDeviceAddCmd(a, h),
		newDeviceGetCmd(a, h),
		newDeviceListCmd(a, h),
		newDeviceRemoveCmd(a, h),
		newDeviceSetCmd(a, h),
		newDeviceShowCmd(a, h),
		newDeviceUnsetCmd(a, h),
	)
	if h.inherits {
		cmd.AddCommand(newDeviceOverrideCmd(a, h))
	}
	return cmd
}

// usage writes a usage line for h: "add INSTANCE ..." or "add PROFILE ...".
func (h deviceHolder) usage(verb, rest string) string {
	return strings.TrimSpace(verb + " " + strings.ToUpper(h.noun) + " " + rest)
}

// live says when a change of h's devices reaches running instances.
func (h deviceHolder) live() string {
	if h.inherits {
		return "A running instance gets the change at once."
	}
	return "Running instances using the profile get the change at once."
}

func (h deviceHolder) showLong() string {
	if h.inherits {
		return "Show the instance's own devices as YAML; `hangar config show --expanded`\n" +
			"shows them with those from its profiles."
	}
	return "Show the profile's devices as YAML."
}

// example writes an example for h's command group: "hangar config device"
// for an instance, "hangar profile device" for a profile.
func (h deviceHolder) example(lines ...string) string {
	group, name := "hangar config device ", "c1"
	if !h.inherits {
		group, name = "hangar profile device ", "default"
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString("  " + group + strings.ReplaceAll(l, "NAME", name) + "\n")
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func newDeviceAddCmd(a *app, h deviceHolder) *cobra.Command {
	return &cobra.Command{
		Use:   h.usage("add", "DEVICE TYPE [KEY=VALUE...]"),
		Short: "Add a device to " + the(h.noun),
		Long:  "Add a device to " + the(h.noun) + ". " + h.live(),
		Example: h.example("add NAME eth1 nic network=hangarbr0 name=eth1",
			"add NAME web proxy listen=tcp:0.0.0.0:8080 connect=tcp:127.0.0.1:80"),
		Args: minArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, devName := args[0], args[1]
			dev := map[string]string{"type": args[2]}
			if len(args) > 3 {
				keys, err := parseKeyValueList(args[3:])
				if err != nil {
					return usageErrorf(cmd, "%v", err)
				}
				// A type= among the keys wins over TYPE, as in lxc.
				maps.Copy(dev, keys)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			err = h.update(cmd.Context(), c, name, func(local, _ devices) error {
				if _, ok := local[devName]; ok {
					return errDeviceExists
				}
				local[devName] = dev
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Device %s added to %s\n", devName, name)
			return nil
		},
	}
}

func newDeviceRemoveCmd(a *app, h deviceHolder) *cobra.Command {
	return &cobra.Command{
		Use:     h.usage("remove", "DEVICE..."),
		Aliases: []string{"rm"},
		Short:   "Remove devices from " + the(h.noun),
		Long: "Remove devices from " + the(h.noun) + ", all in one change: if one of\n" +
			"them cannot be removed, none is.",
		Example: h.example("remove NAME eth1 web"),
		Args:    minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, devNames := args[0], args[1:]
			c, err := a.client()
			if err != nil {
				return err
			}
			err = h.update(cmd.Context(), c, name, func(local, expanded devices) error {
				for _, d := range devNames {
					if _, err := ownDevice(local, expanded, d, errProfileDevRemove); err != nil {
						return err
					}
					delete(local, d)
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Device %s removed from %s\n", strings.Join(devNames, ", "), name)
			return nil
		},
	}
}

func newDeviceSetCmd(a *app, h deviceHolder) *cobra.Command {
	return &cobra.Command{
		Use:   h.usage("set", "DEVICE KEY=VALUE...|KEY VALUE"),
		Short: "Set device configuration keys",
		Long: "Set device configuration keys. An empty value unsets the key.\n" +
			"A single key may also be given as KEY VALUE. " + h.live(),
		Example: h.example("set NAME eth0 ipv4.address=10.0.3.50 limits.egress=10Mbit",
			"set NAME eth0 mtu 1400"),
		Args: minArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			keys, err := parseKeyValues(args[2:])
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			return setDeviceKeys(cmd.Context(), a, h, args[0], args[1], keys)
		},
	}
}

func newDeviceUnsetCmd(a *app, h deviceHolder) *cobra.Command {
	return &cobra.Command{
		Use:     h.usage("unset", "DEVICE KEY"),
		Short:   "Unset a device configuration key",
		Example: h.example("unset NAME eth0 ipv4.address"),
		Args:    exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			// As in lxc, unsetting is setting to "", and a key that is not
			// set is no error.
			return setDeviceKeys(cmd.Context(), a, h, args[0], args[1], map[string]string{args[2]: ""})
		},
	}
}

// setDeviceKeys applies keys (an empty value unsets) to the holder's own
// device devName.
func setDeviceKeys(ctx context.Context, a *app, h deviceHolder, name, devName string, keys map[string]string) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	return h.update(ctx, c, name, func(local, expanded devices) error {
		dev, err := ownDevice(local, expanded, devName, errProfileDevSet)
		if err != nil {
			return err
		}
		local[devName] = applySettings(dev, keys)
		return nil
	})
}

func newDeviceGetCmd(a *app, h deviceHolder) *cobra.Command {
	return &cobra.Command{
		Use:     h.usage("get", "DEVICE KEY"),
		Short:   "Print a device configuration value",
		Long:    "Print a device configuration value; an unset key prints an empty line.",
		Example: h.example("get NAME eth0 ipv4.address"),
		Args:    exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			local, expanded, err := h.get(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			dev, err := ownDevice(local, expanded, args[1], errProfileDevGet)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.out, dev[args[2]])
			return nil
		},
	}
}

func newDeviceShowCmd(a *app, h deviceHolder) *cobra.Command {
	return &cobra.Command{
		Use:   h.usage("show", ""),
		Short: "Show " + the(h.noun) + "'s devices as YAML",
		Long:  h.showLong(),
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			local, _, err := h.get(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			if local == nil {
				local = devices{} // "{}", not "null"
			}
			return renderYAML(a.out, local)
		},
	}
}

func newDeviceListCmd(a *app, h deviceHolder) *cobra.Command {
	return &cobra.Command{
		Use:     h.usage("list", ""),
		Aliases: []string{"ls"},
		Short:   "List " + the(h.noun) + "'s devices",
		Long:    "List the names of " + the(h.noun) + "'s own devices, one a line, in order.",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			local, _, err := h.get(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			// lxc prints them in map order, and an empty line for none;
			// sorted names and no line at all read better in scripts.
			for _, d := range sortedKeys(local) {
				fmt.Fprintln(a.out, d)
			}
			return nil
		},
	}
}

func newDeviceOverrideCmd(a *app, h deviceHolder) *cobra.Command {
	return &cobra.Command{
		Use:   h.usage("override", "DEVICE [KEY=VALUE...]"),
		Short: "Copy a device from the instance's profiles and override keys",
		Long: "Copy a device the instance has from its profiles into its own devices,\n" +
			"with the keys given changed (an empty value unsets). The profile's device\n" +
			"no longer applies to this instance; its own copy does.",
		Example: h.example("override NAME eth0 ipv4.address=10.0.3.50"),
		Args:    minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, devName := args[0], args[1]
			var keys map[string]string
			if len(args) > 2 {
				var err error
				if keys, err = parseKeyValueList(args[2:]); err != nil {
					return usageErrorf(cmd, "%v", err)
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			err = h.update(cmd.Context(), c, name, func(local, expanded devices) error {
				if _, ok := local[devName]; ok {
					return errDeviceExists
				}
				dev, ok := expanded[devName]
				if !ok {
					return errNoProfileDevice
				}
				local[devName] = applySettings(dev, keys)
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Device %s overridden for %s\n", devName, name)
			return nil
		},
	}
}

// parseDeviceOverrides parses launch's --device values,
// DEVICE,KEY=VALUE[,KEY=VALUE...], into the keys to set on each device.
// lxc takes one key a flag; several are allowed here, and a part without
// '=' continues the previous value, so list values such as
// ipv4.routes=10.1.0.0/24,10.2.0.0/24 keep their commas.
func parseDeviceOverrides(flags []string) (devices, error) {
	out := devices{}
	for _, f := range flags {
		parts := strings.Split(f, ",")
		dev := parts[0]
		if len(parts) < 2 || dev == "" || strings.Contains(dev, "=") || !strings.Contains(parts[1], "=") {
			return nil, fmt.Errorf("bad device override %q: expected DEVICE,KEY=VALUE[,KEY=VALUE...]", f)
		}
		if out[dev] == nil {
			out[dev] = map[string]string{}
		}
		var key string
		for _, p := range parts[1:] {
			k, v, ok := strings.Cut(p, "=")
			if !ok {
				out[dev][key] += "," + p
				continue
			}
			if k == "" {
				return nil, fmt.Errorf("bad device override %q: empty key", f)
			}
			key = k
			out[dev][key] = v
		}
	}
	return out, nil
}

// applyDeviceOverrides sets req.Devices from launch's --device overrides:
// each is the device of that name from the profiles the instance will have
// (the last profile having it wins, as the daemon expands them) with the
// keys changed, or a new device, which must then say its type.
func applyDeviceOverrides(ctx context.Context, c *client.Client, req *api.InstancesPost, overrides devices) error {
	profiles := req.Profiles
	if profiles == nil {
		// The daemon applies the default profile to a request without
		// a profile list.
		profiles = []string{"default"}
	}
	fromProfiles := devices{}
	for _, name := range profiles {
		p, _, err := c.GetProfile(ctx, name)
		if err != nil {
			return fmt.Errorf("load profile %q for device override: %w", name, err)
		}
		maps.Copy(fromProfiles, p.Devices)
	}
	out := cloneDevices(req.Devices)
	for _, name := range sortedKeys(overrides) {
		keys := overrides[name]
		base, ok := out[name]
		if !ok {
			base, ok = fromProfiles[name]
		}
		if !ok && keys["type"] == "" {
			if len(profiles) == 0 {
				return fmt.Errorf("cannot override device %q: the instance has no profiles; give type= to add a new device", name)
			}
			return fmt.Errorf("cannot override device %q: no such device in profiles %s; give type= to add a new device",
				name, strings.Join(profiles, ", "))
		}
		out[name] = applySettings(base, keys)
	}
	req.Devices = out
	return nil
}
