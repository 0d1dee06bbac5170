package cli

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

func newProjectCmd(a *app) *cobra.Command {
	cmd := groupCmd("project", "Manage projects")
	// Project commands name their project as an argument: they act from
	// the default project, so that a current project that was deleted
	// does not lock the user out of switching away from it.
	cmd.PersistentPreRun = func(*cobra.Command, []string) { a.noProject = true }
	cmd.AddCommand(
		newProjectCreateCmd(a),
		newProjectListCmd(a),
		newProjectShowCmd(a),
		newProjectSetCmd(a),
		newProjectUnsetCmd(a),
		newProjectGetCmd(a),
		newProjectEditCmd(a),
		newProjectRenameCmd(a),
		newProjectDeleteCmd(a),
		newProjectSwitchCmd(a),
		newProjectInfoCmd(a),
	)
	return cmd
}

// currentProject is the project commands act in: --project, else the
// one switch chose for this socket, else "default".
func (a *app) currentProject() string {
	if a.project != "" {
		return a.project
	}
	if conf, _ := loadConfig(); conf.Projects[a.currentProjectKey()] != "" {
		return conf.Projects[a.currentProjectKey()]
	}
	return "default"
}

func newProjectCreateCmd(a *app) *cobra.Command {
	var description, parent string
	cmd := &cobra.Command{
		Use:   "create NAME [KEY=VALUE...]",
		Short: "Create a project",
		Long: "Create a project. Features not given take LXD's defaults (features.images,\n" +
			"features.profiles and features.storage.volumes on). --parent nests the project\n" +
			"in another, whose limits then count this one's usage too.\n\n" +
			"When standard input is a pipe or a file, it is read as the project's YAML\n" +
			"(config, description).",
		Example: "  hangar project create team-a limits.instances=10\n  hangar project create dev --parent team-a",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.ProjectsPost{Name: args[0]}
			if err := a.readBody(&req.ProjectPut); err != nil {
				return err
			}
			if err := addSettings(cmd, &req.Config, args[1:]); err != nil {
				return err
			}
			if cmd.Flags().Changed("description") {
				req.Description = description
			}
			if cmd.Flags().Changed("parent") {
				req.Parent = &parent
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.CreateProject(cmd.Context(), req); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Project %s created\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "project description")
	cmd.Flags().StringVar(&parent, "parent", "", "project to nest the new one in")
	return cmd
}

func newProjectListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{Use: "list", Short: "List projects"}, listing[api.Project]{
		header: []string{"NAME", "IMAGES", "PROFILES", "STORAGE VOLUMES", "NETWORKS", "PARENT", "DESCRIPTION", "USED BY"},
		fetch: func(ctx context.Context, c *client.Client) ([]api.Project, error) {
			return c.GetProjects(ctx)
		},
		compare: func(x, y api.Project) int { return strings.Compare(x.Name, y.Name) },
		row: func(p api.Project) []string {
			name := p.Name
			if name == a.currentProject() {
				name += " (current)"
			}
			parent := ""
			if p.Parent != nil {
				parent = *p.Parent
			}
			return []string{name, yesNo(p.Config["features.images"] == "true"), yesNo(p.Config["features.profiles"] == "true"),
				yesNo(p.Config["features.storage.volumes"] == "true"), yesNo(p.Config["features.networks"] == "true"),
				parent, p.Description, strconv.Itoa(len(p.UsedBy))}
		},
	})
}

func newProjectShowCmd(a *app) *cobra.Command {
	return showCmd(a, &cobra.Command{Use: "show NAME", Short: "Show a project as YAML"},
		func(ctx context.Context, c *client.Client, name string) (any, error) {
			p, _, err := c.GetProject(ctx, name)
			if err != nil {
				return nil, err
			}
			v := *p
			if v.Config == nil {
				v.Config = map[string]string{}
			}
			if v.UsedBy == nil {
				v.UsedBy = []string{}
			}
			return v, nil
		})
}

// updateProjectConfig changes a project's config with an ETag-guarded
// read-modify-write; the parent is left alone.
func updateProjectConfig(ctx context.Context, c *client.Client, name string, change func(map[string]string) (map[string]string, error)) error {
	p, etag, err := c.GetProject(ctx, name)
	if err != nil {
		return err
	}
	put := api.ProjectPut{Description: p.Description, Config: p.Config}
	if put.Config, err = change(put.Config); err != nil {
		return err
	}
	return c.UpdateProject(ctx, name, put, etag)
}

func newProjectSetCmd(a *app) *cobra.Command {
	cmd := newSetCmd(a, "project", updateProjectConfig)
	cmd.Example = "  hangar project set team-a limits.instances=5 limits.memory=4GiB"
	return cmd
}

func newProjectUnsetCmd(a *app) *cobra.Command { return newUnsetCmd(a, "project", updateProjectConfig) }

func newProjectGetCmd(a *app) *cobra.Command {
	return newGetCmd(a, "project", func(ctx context.Context, c *client.Client, name string) (map[string]string, error) {
		p, _, err := c.GetProject(ctx, name)
		if err != nil {
			return nil, err
		}
		return p.Config, nil
	})
}

func newProjectEditCmd(a *app) *cobra.Command {
	return editCmd(a, &cobra.Command{
		Use:   "edit NAME",
		Short: "Edit a project as YAML",
		Long: "Edit a project as YAML (config, description, parent).\n\n" +
			"Opens $VISUAL, $EDITOR or vi; when standard input is not a terminal,\n" +
			"the new project is read from it instead.",
	}, editing[api.ProjectPut]{
		what: func(name string) string { return "project " + name },
		get: func(ctx context.Context, c *client.Client, name string) (api.ProjectPut, string, error) {
			p, etag, err := c.GetProject(ctx, name)
			if err != nil {
				return api.ProjectPut{}, "", err
			}
			put := p.ProjectPut
			if put.Config == nil {
				put.Config = map[string]string{}
			}
			return put, etag, nil
		},
		put: func(ctx context.Context, c *client.Client, name string, put api.ProjectPut, etag string) error {
			// A parent deleted from the YAML makes the project top-level.
			if put.Parent == nil {
				top := ""
				put.Parent = &top
			}
			return c.UpdateProject(ctx, name, put, etag)
		},
	})
}

func newProjectRenameCmd(a *app) *cobra.Command {
	return renameCmd(a, &cobra.Command{Use: "rename OLD NEW", Short: "Rename an empty project"},
		func(ctx context.Context, c *client.Client, from, to string) error {
			if err := c.RenameProject(ctx, from, to); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Project %s renamed to %s\n", from, to)
			// The current project follows its rename.
			if conf, err := loadConfig(); err == nil && conf.Projects[a.currentProjectKey()] == from {
				conf.Projects[a.currentProjectKey()] = to
				return saveConfig(conf)
			}
			return nil
		})
}

func newProjectDeleteCmd(a *app) *cobra.Command {
	return deleteCmd(a, &cobra.Command{Use: "delete NAME...", Short: "Delete empty projects"},
		func(ctx context.Context, c *client.Client, name string) error {
			if err := c.DeleteProject(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Project %s deleted\n", name)
			// Deleting the current project switches back to the default.
			if conf, err := loadConfig(); err == nil && conf.Projects[a.currentProjectKey()] == name {
				delete(conf.Projects, a.currentProjectKey())
				return saveConfig(conf)
			}
			return nil
		})
}

func newProjectSwitchCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "switch NAME",
		Short: "Make a project the current one",
		Long: "Make a project the one every command acts in on this daemon socket, until\n" +
			"switched again; --project overrides it for one command.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			name := args[0]
			if _, _, err := c.GetProject(cmd.Context(), name); err != nil {
				return err
			}
			conf, err := loadConfig()
			if err != nil {
				return err
			}
			if name == "default" {
				delete(conf.Projects, a.currentProjectKey())
			} else {
				conf.Projects[a.currentProjectKey()] = name
			}
			return saveConfig(conf)
		},
	}
}

func newProjectInfoCmd(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info NAME",
		Short: "Show a project's limits and usage",
		Long: "Show, per resource, the project's limit and what it uses; a nested project's\n" +
			"usage includes its children's.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(cmd, format, listFormats...); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			st, err := c.GetProjectState(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			names := make([]string, 0, len(st.Resources))
			for k := range st.Resources {
				names = append(names, k)
			}
			sort.Strings(names)
			rows := make([][]string, 0, len(names))
			for _, k := range names {
				r := st.Resources[k]
				limit, usage := "UNLIMITED", strconv.FormatInt(r.Usage, 10)
				if k == "memory" || k == "disk" {
					usage = formatBytes(r.Usage)
				}
				if r.Limit >= 0 {
					limit = strconv.FormatInt(r.Limit, 10)
					if k == "memory" || k == "disk" {
						limit = formatBytes(r.Limit)
					}
				}
				rows = append(rows, []string{strings.ToUpper(k), limit, usage})
			}
			return renderList(a.out, format, []string{"RESOURCE", "LIMIT", "USAGE"}, rows, st)
		},
	}
	addFormatFlag(cmd, &format)
	return cmd
}
