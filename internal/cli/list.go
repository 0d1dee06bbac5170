package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

func newListCmd(a *app) *cobra.Command {
	cmd := listCmd(a, &cobra.Command{
		Use:   "list [REMOTE:][FILTER...]",
		Short: "List instances",
		Long: "List instances.\n\n" +
			"A FILTER is either a name, matched as a prefix or as a regular expression\n" +
			"against the whole name, or key=value, where key is one of name, status,\n" +
			"type, architecture, location or a config key (\"user.\" may be left out),\n" +
			"and value is matched exactly or as a regular expression. Filters add up.",
		Example: "  hangar list\n  hangar list web status=running\n  hangar list --format json\n  hangar list prod:",
	}, instanceListing)
	run := cmd.RunE
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			remote, rest, err := listRemoteArg(args[0])
			if err != nil {
				return err
			}
			if err := a.useRemote(remote); err != nil {
				return err
			}
			args = args[1:]
			if rest != "" {
				args = append([]string{rest}, args...)
			}
		}
		return run(cmd, args)
	}
	return cmd
}

// listRemoteArg reads list's first argument as lxc does: "REMOTE:" or
// "REMOTE:FILTER" names a remote; a key=value filter whose value holds a
// colon does not.
func listRemoteArg(arg string) (remote, filter string, err error) {
	r, f, ok := strings.Cut(arg, ":")
	if !ok || strings.Contains(r, "=") {
		return "", arg, nil
	}
	if r == "" {
		return "", "", fmt.Errorf("%q: empty remote name before the colon", arg)
	}
	return r, f, nil
}

var instanceListing = listing[api.InstanceFull]{
	header: []string{"NAME", "STATE", "IPV4", "IPV6", "TYPE", "SNAPSHOTS"},
	// One recursion=2 request brings the state (addresses) too.
	fetch: func(ctx context.Context, c *client.Client) ([]api.InstanceFull, error) {
		return c.GetInstancesFull(ctx, "")
	},
	fetchJSON: func(ctx context.Context, c *client.Client) (json.RawMessage, error) {
		return c.GetInstancesFullJSON(ctx, "")
	},
	sortKey: "name",
	filter:  filterInstances,
	compare: func(a, b api.InstanceFull) int { return strings.Compare(a.Name, b.Name) },
	row: func(inst api.InstanceFull) []string {
		return []string{
			inst.Name,
			strings.ToUpper(inst.Status),
			strings.Join(instanceAddresses(inst.State, "inet"), "\n"),
			strings.Join(instanceAddresses(inst.State, "inet6"), "\n"),
			instanceTypeLabel(inst.Instance),
			strconv.Itoa(len(inst.Snapshots)),
		}
	},
}

// instanceTypeLabel is lxc's TYPE column: "CONTAINER (EPHEMERAL)".
func instanceTypeLabel(inst api.Instance) string {
	t := strings.ToUpper(instanceTypeOr(inst.Type))
	if inst.Ephemeral {
		t += " (EPHEMERAL)"
	}
	return t
}

// instanceTypeOr is an instance or image type, "container" when the
// daemon leaves it out.
func instanceTypeOr(t string) string {
	if t == "" {
		return api.InstanceTypeContainer
	}
	return t
}

// instanceAddresses lists an instance's global addresses of one family as
// "ADDRESS (INTERFACE)", newest-looking first like lxc (reverse sorted),
// leaving out loopback and link-local ones.
func instanceAddresses(st *api.InstanceState, family string) []string {
	if st == nil {
		return nil
	}
	var out []string
	for ifname, nic := range st.Network {
		if nic.Type == "loopback" || ifname == "lo" {
			continue
		}
		for _, addr := range nic.Addresses {
			if addr.Family != family || addr.Scope == "link" || addr.Scope == "local" {
				continue
			}
			out = append(out, fmt.Sprintf("%s (%s)", addr.Address, ifname))
		}
	}
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

// filterInstances keeps the instances that match every filter.
func filterInstances(insts []api.InstanceFull, filters []string) []api.InstanceFull {
	if len(filters) == 0 {
		return insts
	}
	out := []api.InstanceFull{}
	for _, inst := range insts {
		keep := true
		for _, f := range filters {
			if !instanceMatches(inst, f) {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, inst)
		}
	}
	return out
}

// instanceMatches applies one lxc-style filter; see the list command's help.
func instanceMatches(inst api.InstanceFull, filter string) bool {
	key, value, isKV := strings.Cut(filter, "=")
	if !isKV {
		return nameMatches(inst.Name, filter)
	}
	switch strings.ToLower(key) {
	case "name":
		return nameMatches(inst.Name, value)
	case "status", "state":
		return strings.EqualFold(inst.Status, value)
	case "type":
		return strings.EqualFold(instanceTypeOr(inst.Type), value)
	case "architecture":
		return strings.EqualFold(inst.Architecture, value)
	case "location":
		return strings.EqualFold(inst.Location, value)
	}
	cfg := inst.ExpandedConfig
	if cfg == nil {
		cfg = inst.Config
	}
	v, ok := cfg[key]
	if !ok && !strings.Contains(key, ".") {
		v, ok = cfg["user."+key]
	}
	return ok && valueMatches(v, value)
}

// nameMatches is lxc's name filter: a regular expression matching the whole
// name (unless it anchors itself), else a plain prefix.
func nameMatches(name, filter string) bool {
	pattern := filter
	if !strings.ContainsAny(filter, "^$") {
		pattern = "^" + filter + "$"
	}
	if r, err := regexp.Compile(pattern); err == nil && r.MatchString(name) {
		return true
	}
	return strings.HasPrefix(name, filter)
}

// valueMatches compares a config value exactly or as a whole-value regexp.
func valueMatches(v, filter string) bool {
	if v == filter {
		return true
	}
	r, err := regexp.Compile("^(?:" + filter + ")$")
	return err == nil && r.MatchString(v)
}
