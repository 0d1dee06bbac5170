package cli

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// `hangar auth` manages access: groups of identities and the permissions
// they hold, with lxc 5.21's command shapes (lxc auth group ..., lxc auth
// identity group ...).

func newAuthCmd(a *app) *cobra.Command {
	cmd := groupCmd("auth", "Manage access: groups, their permissions and members")
	group := groupCmd("group", "Manage groups of identities")
	group.AddCommand(
		newAuthGroupCreateCmd(a),
		newAuthGroupListCmd(a),
		newAuthGroupShowCmd(a),
		newAuthGroupEditCmd(a),
		newAuthGroupRenameCmd(a),
		newAuthGroupDeleteCmd(a),
		newAuthPermissionCmd(a),
	)
	identity := groupCmd("identity", "Manage which groups identities are in")
	identityGroup := groupCmd("group", "Add identities to groups or remove them")
	identityGroup.AddCommand(newAuthIdentityGroupCmd(a, true), newAuthIdentityGroupCmd(a, false))
	identity.AddCommand(identityGroup)
	cmd.AddCommand(group, identity)
	return cmd
}

func newAuthGroupCreateCmd(a *app) *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a group",
		Long: "Create a group. When standard input is a pipe or a file, it is read as the\n" +
			"group's YAML (description, permissions, identities).",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.AuthGroupsPost{AuthGroupPost: api.AuthGroupPost{Name: args[0]}}
			if err := a.readBody(&req.AuthGroupPut); err != nil {
				return err
			}
			if cmd.Flags().Changed("description") {
				req.Description = description
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.CreateAuthGroup(cmd.Context(), req); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Group %s created\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "group description")
	return cmd
}

func newAuthGroupListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{Use: "list", Short: "List groups"}, listing[api.AuthGroup]{
		header: []string{"NAME", "DESCRIPTION", "PERMISSIONS", "IDENTITIES"},
		fetch: func(ctx context.Context, c *client.Client) ([]api.AuthGroup, error) {
			return c.GetAuthGroups(ctx)
		},
		compare: func(x, y api.AuthGroup) int { return strings.Compare(x.Name, y.Name) },
		row: func(g api.AuthGroup) []string {
			n := 0
			for _, ids := range g.Identities {
				n += len(ids)
			}
			return []string{g.Name, g.Description, strconv.Itoa(len(g.Permissions)), strconv.Itoa(n)}
		},
	})
}

func newAuthGroupShowCmd(a *app) *cobra.Command {
	return showCmd(a, &cobra.Command{Use: "show NAME", Short: "Show a group as YAML"},
		func(ctx context.Context, c *client.Client, name string) (any, error) {
			g, _, err := c.GetAuthGroup(ctx, name)
			if err != nil {
				return nil, err
			}
			return g, nil
		})
}

func newAuthGroupEditCmd(a *app) *cobra.Command {
	return editCmd(a, &cobra.Command{
		Use:   "edit NAME",
		Short: "Edit a group as YAML",
		Long: "Edit a group's description, permissions and identities as YAML.\n\n" +
			"Opens $VISUAL, $EDITOR or vi; when standard input is not a terminal,\n" +
			"the new group is read from it instead.",
	}, editing[api.AuthGroupPut]{
		what: func(name string) string { return "group " + name },
		get: func(ctx context.Context, c *client.Client, name string) (api.AuthGroupPut, string, error) {
			g, etag, err := c.GetAuthGroup(ctx, name)
			if err != nil {
				return api.AuthGroupPut{}, "", err
			}
			return g.Writable(), etag, nil
		},
		put: func(ctx context.Context, c *client.Client, name string, put api.AuthGroupPut, etag string) error {
			return c.UpdateAuthGroup(ctx, name, put, etag)
		},
	})
}

func newAuthGroupRenameCmd(a *app) *cobra.Command {
	return renameCmd(a, &cobra.Command{Use: "rename OLD NEW", Short: "Rename a group"},
		func(ctx context.Context, c *client.Client, from, to string) error {
			return c.RenameAuthGroup(ctx, from, to)
		})
}

func newAuthGroupDeleteCmd(a *app) *cobra.Command {
	return deleteCmd(a, &cobra.Command{Use: "delete NAME...", Short: "Delete groups"},
		func(ctx context.Context, c *client.Client, name string) error {
			return c.DeleteAuthGroup(ctx, name)
		})
}

// updateGroup changes a group with an ETag-guarded read-modify-write.
func updateGroup(ctx context.Context, c *client.Client, name string, change func(*api.AuthGroupPut) error) error {
	g, etag, err := c.GetAuthGroup(ctx, name)
	if err != nil {
		return err
	}
	put := g.Writable()
	if err := change(&put); err != nil {
		return err
	}
	return c.UpdateAuthGroup(ctx, name, put, etag)
}

// entityCollections is where each entity type lives below /1.0, as the
// server names entities in permissions.
var entityCollections = map[string]string{
	"project": "projects", "instance": "instances", "image": "images", "network": "networks",
	"profile": "profiles", "storage_pool": "storage-pools", "storage_volume": "storage-pools",
	"certificate": "certificates",
}

// projectScoped entity types live in a project: their URL says which.
var projectScoped = []string{"instance", "image", "network", "profile", "storage_volume"}

// parsePermission reads `ENTITY_TYPE [ENTITY_NAME] ENTITLEMENT [KEY=VALUE...]`
// (the server takes no name) into a permission, its entity named by URL
// as the server writes it back: project=P (default "default") for
// entities in a project, pool=POOL and type=TYPE (default custom) for a
// storage volume.
func parsePermission(args []string) (api.Permission, error) {
	if len(args) == 0 {
		return api.Permission{}, fmt.Errorf("missing the entity type")
	}
	typ := args[0]
	var name string
	rest := args[1:]
	if typ != "server" {
		if _, ok := entityCollections[typ]; !ok {
			return api.Permission{}, fmt.Errorf("unknown entity type %q (want server, %s)", typ, strings.Join(entityTypes(), ", "))
		}
		if len(rest) == 0 || strings.Contains(rest[0], "=") {
			return api.Permission{}, fmt.Errorf("missing the %s's name", typ)
		}
		name, rest = rest[0], rest[1:]
	}
	if len(rest) == 0 || strings.Contains(rest[0], "=") {
		return api.Permission{}, fmt.Errorf("missing the entitlement")
	}
	entitlement, rest := rest[0], rest[1:]
	opts := map[string]string{}
	if len(rest) > 0 {
		var err error
		if opts, err = parseKeyValueList(rest); err != nil {
			return api.Permission{}, err
		}
	}
	allowed := []string{}
	if slices.Contains(projectScoped, typ) {
		allowed = append(allowed, "project")
	}
	if typ == "storage_volume" {
		allowed = append(allowed, "pool", "type")
	}
	for k := range opts {
		if !slices.Contains(allowed, k) {
			return api.Permission{}, fmt.Errorf("%s takes no %s= (only %s)", typ, k, orNone(allowed))
		}
	}
	var ref string
	switch typ {
	case "server":
		ref = "/1.0"
	case "project", "storage_pool", "certificate":
		ref = "/1.0/" + entityCollections[typ] + "/" + url.PathEscape(name)
	case "storage_volume":
		if opts["pool"] == "" {
			return api.Permission{}, fmt.Errorf("a storage volume needs pool=POOL")
		}
		vt := opts["type"]
		if vt == "" {
			vt = "custom"
		}
		ref = "/1.0/storage-pools/" + url.PathEscape(opts["pool"]) + "/volumes/" + url.PathEscape(vt) + "/" + url.PathEscape(name)
	default:
		ref = "/1.0/" + entityCollections[typ] + "/" + url.PathEscape(name)
	}
	if slices.Contains(projectScoped, typ) {
		p := opts["project"]
		if p == "" {
			p = "default"
		}
		ref += "?project=" + url.QueryEscape(p)
	}
	return api.Permission{EntityType: typ, EntityReference: ref, Entitlement: entitlement}, nil
}

func entityTypes() []string {
	types := make([]string, 0, len(entityCollections))
	for t := range entityCollections {
		types = append(types, t)
	}
	slices.Sort(types)
	return types
}

func orNone(keys []string) string {
	if len(keys) == 0 {
		return "none"
	}
	return strings.Join(keys, "=, ") + "="
}

func newAuthPermissionCmd(a *app) *cobra.Command {
	cmd := groupCmd("permission", "Grant or revoke a group's permissions")
	for _, add := range []bool{true, false} {
		use, short := "add", "Grant a group an entitlement on an entity"
		if !add {
			use, short = "remove", "Revoke an entitlement of a group"
		}
		cmd.AddCommand(&cobra.Command{
			Use:   use + " GROUP ENTITY_TYPE [ENTITY_NAME] ENTITLEMENT [KEY=VALUE...]",
			Short: short,
			Long: "ENTITY_TYPE is server (which takes no ENTITY_NAME), project, instance, image,\n" +
				"network, profile, storage_pool, storage_volume or certificate. Entities in a\n" +
				"project take project=NAME (default: default); a storage volume also takes\n" +
				"pool=POOL and type=TYPE (default: custom).",
			Example: "  hangar auth group permission " + use + " ops server viewer\n" +
				"  hangar auth group permission " + use + " ops project team-a operator\n" +
				"  hangar auth group permission " + use + " ops instance c1 can_exec project=team-a",
			Args: minArgs(3),
			RunE: func(cmd *cobra.Command, args []string) error {
				perm, err := parsePermission(args[1:])
				if err != nil {
					return usageErrorf(cmd, "%v", err)
				}
				c, err := a.client()
				if err != nil {
					return err
				}
				group := args[0]
				return updateGroup(cmd.Context(), c, group, func(put *api.AuthGroupPut) error {
					i := slices.IndexFunc(put.Permissions, func(p api.Permission) bool { return samePermission(p, perm) })
					switch {
					case add && i >= 0:
						return fmt.Errorf("group %s already has %s on %s", group, perm.Entitlement, perm.EntityReference)
					case add:
						put.Permissions = append(put.Permissions, perm)
					case i < 0:
						return fmt.Errorf("group %s has no %s on %s", group, perm.Entitlement, perm.EntityReference)
					default:
						put.Permissions = slices.Delete(put.Permissions, i, i+1)
					}
					return nil
				})
			},
		})
	}
	return cmd
}

// samePermission compares permissions as the server stores them; URLs are
// compared unescaped, so that %2D and - are one.
func samePermission(x, y api.Permission) bool {
	if x.EntityType != y.EntityType || x.Entitlement != y.Entitlement {
		return false
	}
	ux, ex := url.Parse(x.EntityReference)
	uy, ey := url.Parse(y.EntityReference)
	if ex != nil || ey != nil {
		return x.EntityReference == y.EntityReference
	}
	return ux.Path == uy.Path && ux.Query().Encode() == uy.Query().Encode()
}

// parseIdentity reads METHOD/ID (tls/FINGERPRINT-OR-NAME, unix/NAME,
// token/NAME, user/NAME).
func parseIdentity(s string) (method, id string, err error) {
	method, id, ok := strings.Cut(s, "/")
	if !ok || id == "" {
		return "", "", fmt.Errorf("identity %q: want METHOD/ID, e.g. tls/FINGERPRINT", s)
	}
	switch method {
	case "tls", "unix", "token", "user":
		return method, id, nil
	}
	return "", "", fmt.Errorf("identity %q: unknown authentication method %q (want tls, unix, token or user)", s, method)
}

func newAuthIdentityGroupCmd(a *app, add bool) *cobra.Command {
	use, short := "add", "Put an identity in a group"
	if !add {
		use, short = "remove", "Take an identity out of a group"
	}
	return &cobra.Command{
		Use:   use + " METHOD/ID GROUP",
		Short: short,
		Long: "METHOD/ID names an identity: tls/ with a trusted certificate's fingerprint\n" +
			"(or a unique prefix of it, or its name), unix/, token/ or user/ (a local\n" +
			"user, `hangar user`) with a name.",
		Example: "  hangar auth identity group " + use + " tls/alice ops\n" +
			"  hangar auth identity group " + use + " user/bob ops",
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			method, id, err := parseIdentity(args[0])
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if method == "tls" && (add || len(id) != 64) {
				if id, err = certificateFingerprintOf(ctx, c, id); err != nil {
					return err
				}
			}
			group := args[1]
			return updateGroup(ctx, c, group, func(put *api.AuthGroupPut) error {
				if put.Identities == nil {
					put.Identities = map[string][]string{}
				}
				ids := put.Identities[method]
				i := slices.Index(ids, id)
				switch {
				case add && i >= 0:
					return fmt.Errorf("%s/%s is in group %s already", method, id, group)
				case add:
					put.Identities[method] = append(ids, id)
				case i < 0:
					return fmt.Errorf("%s/%s is not in group %s", method, id, group)
				default:
					put.Identities[method] = slices.Delete(ids, i, i+1)
				}
				return nil
			})
		},
	}
}
