package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// launchOptions are the flags of launch and init.
type launchOptions struct {
	config     []string
	devices    []string
	profiles   []string
	noProfiles bool
	ephemeral  bool
	vm         bool
	storage    string          // pool of the root disk
	registry   registryOptions // oci.go
}

// newLaunchCmd returns "launch" (create and start) or, when start is false,
// "init" (create only).
func newLaunchCmd(a *app, start bool) *cobra.Command {
	var opts launchOptions
	cmd := &cobra.Command{
		Use:   "launch [REMOTE:]IMAGE [[REMOTE:]NAME]",
		Short: "Create and start an instance from an image",
		Long: "Create and start an instance from an image.\n\n" +
			"IMAGE is an image alias or fingerprint (hangard tries the alias first), or an\n" +
			"OCI registry reference: oci:REFERENCE, or REGISTRY/REPOSITORY[:TAG|@DIGEST]\n" +
			"whose registry has a dot or a port (pulled first unless already stored).\n" +
			"Without NAME, hangard picks a random name.\n\n" +
			"REMOTE: creates the instance on that remote, from an image stored there.",
		Example: "  hangar launch alpine web1 -c limits.memory=512MiB\n" +
			"  hangar launch alpine prod:web1\n" +
			"  hangar launch alpine -p default -p big --ephemeral\n" +
			"  hangar launch alpine web2 -d eth0,ipv4.address=10.0.3.50\n" +
			"  hangar launch alpine web3 -s fast -d root,size=2GiB\n" +
			"  hangar launch docker.io/library/alpine:3.20 c1 -c oci.cmd='[\"sleep\",\"60\"]'\n" +
			"  hangar launch 127.0.0.1:5000/test/app:1 c2 --insecure",
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			args, err := a.launchRemote(args)
			if err != nil {
				return err
			}
			req, err := buildInstancesPost(args, opts, start)
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			auth, err := opts.registry.auth()
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			overrides, err := parseDeviceOverrides(opts.devices)
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			if opts.storage != "" || len(overrides) > 0 {
				c, err := a.client()
				if err != nil {
					return err
				}
				if opts.storage != "" {
					// As lxc: a missing pool is said before anything
					// is created.
					if _, _, err := c.GetStoragePool(cmd.Context(), opts.storage); err != nil {
						return err
					}
				}
				// Overrides apply to the root device -s made, too
				// (-s fast -d root,size=2GiB).
				if len(overrides) > 0 {
					if err := applyDeviceOverrides(cmd.Context(), c, &req, overrides); err != nil {
						return err
					}
				}
			}
			return a.createInstance(cmd, req, auth)
		},
	}
	if !start {
		cmd.Use = "init [REMOTE:]IMAGE [[REMOTE:]NAME]"
		cmd.Short = "Create an instance from an image without starting it"
		cmd.Long = "Create an instance from an image without starting it.\n\n" +
			"IMAGE is an image alias or fingerprint (hangard tries the alias first).\n" +
			"Without NAME, hangard picks a random name."
		cmd.Example = "  hangar init alpine web1\n  hangar init alpine web2 -d eth0,ipv4.address=10.0.3.50,mtu=1400"
		cmd.Aliases = []string{"create"}
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.config, "config", "c", nil, "config key=value to apply to the new instance (repeatable)")
	f.StringArrayVarP(&opts.devices, "device", "d", nil, "DEVICE,KEY=VALUE[,KEY=VALUE...]: override keys of a profile's device,\nor add a device with type=TYPE (repeatable)")
	f.StringArrayVarP(&opts.profiles, "profile", "p", nil, "profile to apply, replacing the default list (repeatable)")
	f.BoolVar(&opts.noProfiles, "no-profiles", false, "create the instance with no profiles")
	f.BoolVarP(&opts.ephemeral, "ephemeral", "e", false, "delete the instance when it stops")
	f.BoolVar(&opts.vm, "vm", false, "create a virtual machine instead of a container")
	f.StringVarP(&opts.storage, "storage", "s", "", "storage pool of the instance's root disk")
	opts.registry.addFlags(cmd)
	return cmd
}

// launchRemote resolves the REMOTE: prefixes of launch's image and name
// and returns the arguments without them. The instance goes where its
// name says, else where the image is, else to the default remote; the
// image must be on that remote, as hangar copies no image between
// remotes.
func (a *app) launchRemote(args []string) ([]string, error) {
	args = append([]string(nil), args...)
	conf, err := loadConfig()
	if err != nil && strings.Contains(args[0], ":") {
		return nil, err
	}
	imgRemote, image := imageRemote(conf, args[0])
	args[0] = image
	target := ""
	if len(args) > 1 {
		target, args[1] = splitRemote(args[1])
		if target == "" && imgRemote != "" && resolveRemote(conf, "") != imgRemote {
			target = resolveRemote(conf, "")
		}
	}
	if target == "" {
		target = imgRemote
	}
	if imgRemote != "" && resolveRemote(conf, imgRemote) != resolveRemote(conf, target) {
		return nil, fmt.Errorf("image %s is on remote %s and the instance would be on %s: hangar copies no image between remotes (create it on %s)",
			image, imgRemote, resolveRemote(conf, target), imgRemote)
	}
	if err := a.useRemote(target); err != nil {
		return nil, err
	}
	return args, nil
}

// buildInstancesPost turns launch's arguments into the POST /1.0/instances
// body.
func buildInstancesPost(args []string, opts launchOptions, start bool) (api.InstancesPost, error) {
	req := api.InstancesPost{
		Source: api.InstanceSource{Type: "image", Alias: args[0]},
		Type:   api.InstanceTypeContainer,
		Start:  start,
	}
	if server, name, ok := parseRegistryRef(args[0]); ok {
		req.Source = api.InstanceSource{Type: "image", Protocol: "oci", Server: registryServer(server, opts.registry.insecure), Alias: name}
	} else if opts.registry.insecure || opts.registry.creds != "" {
		return req, fmt.Errorf("--insecure and --creds apply to registry references only, not to the local image %q", args[0])
	}
	if len(args) > 1 {
		req.Name = args[1]
	}
	if opts.vm {
		req.Type = api.InstanceTypeVM
	}
	if opts.storage != "" {
		// lxc's root device: the instance's own, so it wins over the
		// profiles' root.
		req.Devices = map[string]map[string]string{
			"root": {"type": "disk", "path": "/", "pool": opts.storage},
		}
	}
	req.Ephemeral = opts.ephemeral
	if len(opts.config) > 0 {
		cfg, err := parseKeyValueList(opts.config)
		if err != nil {
			return req, err
		}
		req.Config = cfg
	}
	switch {
	case opts.noProfiles && len(opts.profiles) > 0:
		return req, fmt.Errorf("--no-profiles and --profile are mutually exclusive")
	case opts.noProfiles:
		// An empty list, not null: the daemon applies the default profile
		// only when the field is absent or null.
		req.Profiles = []string{}
	case len(opts.profiles) > 0:
		req.Profiles = opts.profiles
	}
	return req, nil
}

// createInstance sends the request, names the instance as soon as the daemon
// has (it picks the name when none was given) and waits for the operation.
func (a *app) createInstance(cmd *cobra.Command, req api.InstancesPost, auth client.RegistryAuth) error {
	c, err := a.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	name := req.Name
	if name != "" {
		fmt.Fprintf(a.out, "Creating %s\n", name)
	}
	op, err := c.CreateInstanceWithAuth(ctx, req, auth)
	if err != nil {
		return err
	}
	if name == "" {
		if names := client.OperationInstanceNames(op.Get()); len(names) > 0 {
			name = names[0]
			fmt.Fprintf(a.out, "Creating %s\n", name)
		}
	}
	if err := a.waitProgress(ctx, op, "Retrieving image"); err != nil {
		return err
	}
	if name == "" {
		// The daemon only said which name it picked in the final state.
		if names := client.OperationInstanceNames(op.Get()); len(names) > 0 {
			name = names[0]
			fmt.Fprintf(a.out, "Instance name is: %s\n", name)
		}
	}
	if name == "" {
		name = "the instance"
	}
	if req.Start {
		// One operation both creates and starts; it succeeded, so the
		// instance is up by now.
		fmt.Fprintf(a.out, "Starting %s\n", name)
	}
	return nil
}
