package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

func newProfileCmd(a *app) *cobra.Command {
	cmd := groupCmd("profile", "Manage profiles")
	cmd.AddCommand(
		newProfileListCmd(a),
		newProfileShowCmd(a),
		newProfileCreateCmd(a),
		newProfileEditCmd(a),
		newProfileDeleteCmd(a),
		newProfileAssignCmd(a),
		newProfileAddCmd(a),
		newProfileRemoveCmd(a),
		newProfileSetCmd(a),
		newProfileUnsetCmd(a),
		newProfileGetCmd(a),
		newProfileRenameCmd(a),
		newProfileCopyCmd(a),
		newDeviceCmd(a, profileDevices),
	)
	return cmd
}

func newProfileListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{Use: "list", Short: "List profiles"}, profileListing)
}

var profileListing = listing[api.Profile]{
	header: []string{"NAME", "DESCRIPTION", "USED BY"},
	fetch: func(ctx context.Context, c *client.Client) ([]api.Profile, error) {
		return c.GetProfiles(ctx)
	},
	compare: func(a, b api.Profile) int { return strings.Compare(a.Name, b.Name) },
	row: func(p api.Profile) []string {
		return []string{p.Name, p.Description, strconv.Itoa(len(p.UsedBy))}
	},
}

func newProfileShowCmd(a *app) *cobra.Command {
	return showCmd(a, &cobra.Command{Use: "show NAME", Short: "Show a profile as YAML"},
		func(ctx context.Context, c *client.Client, name string) (any, error) {
			p, _, err := c.GetProfile(ctx, name)
			if err != nil {
				return nil, err
			}
			return profileView(p), nil
		})
}

// profileView fills nil maps so YAML shows "config: {}" rather than null.
func profileView(p *api.Profile) api.Profile {
	v := *p
	v.ProfilePut = profilePutView(p.ProfilePut)
	if v.UsedBy == nil {
		v.UsedBy = []string{}
	}
	return v
}

func profilePutView(put api.ProfilePut) api.ProfilePut {
	if put.Config == nil {
		put.Config = map[string]string{}
	}
	if put.Devices == nil {
		put.Devices = map[string]map[string]string{}
	}
	return put
}

func newProfileCreateCmd(a *app) *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a profile",
		Long: "Create a profile.\n\n" +
			"When standard input is a pipe or a file, it is read as the profile's YAML\n" +
			"(config, description, devices).",
		Example: "  hangar profile create big\n  hangar profile create big < big.yaml",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.ProfilesPost{Name: args[0]}
			if err := a.readBody(&req.ProfilePut); err != nil {
				return err
			}
			if cmd.Flags().Changed("description") {
				req.Description = description
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.CreateProfile(cmd.Context(), req); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Profile %s created\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "profile description")
	return cmd
}

func newProfileEditCmd(a *app) *cobra.Command {
	return editCmd(a, &cobra.Command{
		Use:   "edit NAME",
		Short: "Edit a profile as YAML",
		Long: "Edit a profile as YAML.\n\n" +
			"Opens $VISUAL, $EDITOR or vi; when standard input is not a terminal,\n" +
			"the new profile is read from it instead.",
	}, editing[api.ProfilePut]{
		what: func(name string) string { return "profile " + name },
		get: func(ctx context.Context, c *client.Client, name string) (api.ProfilePut, string, error) {
			p, etag, err := c.GetProfile(ctx, name)
			if err != nil {
				return api.ProfilePut{}, "", err
			}
			return profilePutView(p.ProfilePut), etag, nil
		},
		put: func(ctx context.Context, c *client.Client, name string, put api.ProfilePut, etag string) error {
			return c.UpdateProfile(ctx, name, put, etag)
		},
	})
}

func newProfileDeleteCmd(a *app) *cobra.Command {
	return deleteCmd(a, &cobra.Command{Use: "delete NAME...", Short: "Delete profiles"},
		func(ctx context.Context, c *client.Client, name string) error {
			if err := c.DeleteProfile(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Profile %s deleted\n", name)
			return nil
		})
}

func newProfileAssignCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "assign INSTANCE PROFILES",
		Aliases: []string{"apply"},
		Short:   "Replace an instance's profiles",
		Long: "Replace an instance's profiles with a comma-separated list, in order.\n" +
			"An empty list (\"\") removes every profile.",
		Example: "  hangar profile assign c1 default,big\n  hangar profile assign c1 \"\"",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			profiles := splitProfiles(args[1])
			c, err := a.client()
			if err != nil {
				return err
			}
			err = updateInstanceProfiles(cmd.Context(), c, args[0], func([]string) ([]string, error) { return profiles, nil })
			if err != nil {
				return err
			}
			if len(profiles) == 0 {
				fmt.Fprintf(a.out, "All profiles removed from %s\n", args[0])
			} else {
				fmt.Fprintf(a.out, "Profiles %s applied to %s\n", strings.Join(profiles, ","), args[0])
			}
			return nil
		},
	}
}

// splitProfiles splits "a,b" into its names; "" is the empty list.
func splitProfiles(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newProfileAddCmd(a *app) *cobra.Command {
	return profileMembershipCmd(a, "add INSTANCE PROFILE", "Add a profile to an instance", "Profile %s added to %s\n",
		func(cur []string, profile, inst string) ([]string, error) {
			if slices.Contains(cur, profile) {
				return nil, fmt.Errorf("profile %s is already applied to %s", profile, inst)
			}
			return append(slices.Clone(cur), profile), nil
		})
}

func newProfileRemoveCmd(a *app) *cobra.Command {
	return profileMembershipCmd(a, "remove INSTANCE PROFILE", "Remove a profile from an instance", "Profile %s removed from %s\n",
		func(cur []string, profile, inst string) ([]string, error) {
			if !slices.Contains(cur, profile) {
				return nil, fmt.Errorf("profile %s isn't currently applied to %s", profile, inst)
			}
			return slices.DeleteFunc(slices.Clone(cur), func(p string) bool { return p == profile }), nil
		})
}

// profileMembershipCmd is `add` or `remove INSTANCE PROFILE`: change
// returns the instance's new profile list, done is printed with the
// profile and the instance.
func profileMembershipCmd(a *app, use, short, done string, change func(cur []string, profile, inst string) ([]string, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			inst, profile := args[0], args[1]
			err = updateInstanceProfiles(cmd.Context(), c, inst, func(cur []string) ([]string, error) {
				return change(cur, profile, inst)
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, done, profile, inst)
			return nil
		},
	}
}

// updateInstanceProfiles changes an instance's profile list with an
// ETag-guarded read-modify-write.
func updateInstanceProfiles(ctx context.Context, c *client.Client, name string, change func([]string) ([]string, error)) error {
	return updateInstance(ctx, c, name, func(put *api.InstancePut) (err error) {
		put.Profiles, err = change(put.Profiles)
		return err
	})
}

func newProfileSetCmd(a *app) *cobra.Command {
	cmd := newSetCmd(a, "profile", updateProfileConfig)
	cmd.Example = "  hangar profile set big limits.memory=2GiB"
	return cmd
}

func newProfileUnsetCmd(a *app) *cobra.Command { return newUnsetCmd(a, "profile", updateProfileConfig) }

// updateProfileConfig changes a profile's config with an ETag-guarded
// read-modify-write.
func updateProfileConfig(ctx context.Context, c *client.Client, name string, change func(map[string]string) (map[string]string, error)) error {
	return updateProfile(ctx, c, name, func(put *api.ProfilePut) (err error) {
		put.Config, err = change(put.Config)
		return err
	})
}

// updateProfile changes a profile's writable part with a read-modify-write
// guarded by the ETag, so that a concurrent change is refused rather than
// silently overwritten.
func updateProfile(ctx context.Context, c *client.Client, name string, change func(*api.ProfilePut) error) error {
	p, etag, err := c.GetProfile(ctx, name)
	if err != nil {
		return err
	}
	put := p.ProfilePut
	if err := change(&put); err != nil {
		return err
	}
	return c.UpdateProfile(ctx, name, put, etag)
}

func newProfileGetCmd(a *app) *cobra.Command {
	return newGetCmd(a, "profile", func(ctx context.Context, c *client.Client, name string) (map[string]string, error) {
		p, _, err := c.GetProfile(ctx, name)
		if err != nil {
			return nil, err
		}
		return p.Config, nil
	})
}

func newProfileRenameCmd(a *app) *cobra.Command {
	return renameCmd(a, &cobra.Command{Use: "rename OLD NEW", Short: "Rename a profile"},
		func(ctx context.Context, c *client.Client, from, to string) error {
			if err := c.RenameProfile(ctx, from, to); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Profile %s renamed to %s\n", from, to)
			return nil
		})
}

func newProfileCopyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "copy SOURCE TARGET",
		Aliases: []string{"cp"},
		Short:   "Copy a profile",
		Args:    exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			p, _, err := c.GetProfile(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return c.CreateProfile(cmd.Context(), api.ProfilesPost{Name: args[1], ProfilePut: p.ProfilePut})
		},
	}
}
