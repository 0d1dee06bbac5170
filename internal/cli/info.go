package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
)

func newInfoCmd(a *app) *cobra.Command {
	var showLog bool
	cmd := &cobra.Command{
		Use:   "info [REMOTE:]NAME",
		Short: "Show an instance's configuration summary and resource usage",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := a.instanceArg(args[0])
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			inst, _, err := c.GetInstance(ctx, name)
			if err != nil {
				return err
			}
			st, err := c.GetInstanceState(ctx, name)
			if err != nil {
				return err
			}
			if err := renderInfo(a.out, inst, st); err != nil {
				return err
			}
			snaps, err := c.GetInstanceSnapshots(ctx, name)
			if err != nil {
				return err
			}
			if err := renderInfoSnapshots(a.out, snaps); err != nil {
				return err
			}
			if showLog {
				log, err := c.GetInstanceConsoleLog(ctx, name)
				if err != nil {
					return fmt.Errorf("get console log: %w", err)
				}
				fmt.Fprintf(a.out, "\nLog:\n\n%s", log)
				if len(log) > 0 && log[len(log)-1] != '\n' {
					fmt.Fprintln(a.out)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&showLog, "show-log", false, "also show the instance's console log")
	return cmd
}

// renderInfo prints what lxc info prints, for the fields hangar has.
func renderInfo(w io.Writer, inst *api.Instance, st *api.InstanceState) error {
	var b strings.Builder
	line := func(indent int, format string, args ...any) {
		b.WriteString(strings.Repeat("  ", indent))
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}

	status := inst.Status
	if st != nil && st.Status != "" {
		status = st.Status
	}
	typ := instanceTypeOr(inst.Type)
	if inst.Ephemeral {
		typ += " (ephemeral)"
	}
	line(0, "Name: %s", inst.Name)
	line(0, "Status: %s", strings.ToUpper(status))
	line(0, "Type: %s", typ)
	line(0, "Architecture: %s", inst.Architecture)
	if st != nil && st.Pid > 0 {
		line(0, "PID: %d", st.Pid)
	}
	if s := formatTime(inst.CreatedAt); s != "" {
		line(0, "Created: %s", s)
	}
	if s := formatTime(inst.LastUsedAt); s != "" {
		line(0, "Last Used: %s", s)
	}
	line(0, "Profiles: %s", strings.Join(inst.Profiles, ", "))

	// Usage figures only mean something while the instance runs.
	if st != nil && st.Pid > 0 {
		b.WriteString("\nResources:\n")
		line(1, "Processes: %d", st.Processes)
		if len(st.Disk) > 0 {
			line(1, "Disk usage:")
			for _, name := range sortedKeys(st.Disk) {
				line(2, "%s: %s", name, formatBytes(st.Disk[name].Usage))
			}
		}
		line(1, "CPU usage:")
		line(2, "CPU usage (in seconds): %d", st.CPU.Usage/1e9)
		line(1, "Memory usage:")
		line(2, "Memory (current): %s", formatBytes(st.Memory.Usage))
		if st.Memory.UsagePeak > 0 {
			line(2, "Memory (peak): %s", formatBytes(st.Memory.UsagePeak))
		}
		if st.Memory.SwapUsage > 0 {
			line(2, "Swap (current): %s", formatBytes(st.Memory.SwapUsage))
		}
		if len(st.Network) > 0 {
			line(1, "Network usage:")
			for _, name := range sortedKeys(st.Network) {
				nic := st.Network[name]
				line(2, "%s:", name)
				line(3, "Type: %s", nic.Type)
				line(3, "State: %s", strings.ToUpper(nic.State))
				if nic.HostName != "" {
					line(3, "Host interface: %s", nic.HostName)
				}
				if nic.Hwaddr != "" {
					line(3, "MAC address: %s", nic.Hwaddr)
				}
				line(3, "MTU: %d", nic.Mtu)
				line(3, "Bytes received: %s", formatBytes(nic.Counters.BytesReceived))
				line(3, "Bytes sent: %s", formatBytes(nic.Counters.BytesSent))
				line(3, "Packets received: %d", nic.Counters.PacketsReceived)
				line(3, "Packets sent: %d", nic.Counters.PacketsSent)
				if len(nic.Addresses) > 0 {
					line(3, "IP addresses:")
					for _, addr := range nic.Addresses {
						line(4, "%s:%s%s/%s (%s)", addr.Family, strings.Repeat(" ", max(1, 7-len(addr.Family))),
							addr.Address, addr.Netmask, addr.Scope)
					}
				}
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// renderInfoSnapshots prints lxc info's snapshot table, when there are
// snapshots.
func renderInfoSnapshots(w io.Writer, snaps []api.InstanceSnapshot) error {
	if len(snaps) == 0 {
		return nil
	}
	if _, err := io.WriteString(w, "\nSnapshots:\n"); err != nil {
		return err
	}
	rows := make([][]string, len(snaps))
	for i, s := range snaps {
		rows[i] = snapshotListing.row(s)
	}
	return renderTable(w, []string{"NAME", "TAKEN AT", "EXPIRES AT", "STATEFUL"}, rows)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
