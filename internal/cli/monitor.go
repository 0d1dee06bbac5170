package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
)

var eventTypes = []string{api.EventTypeLifecycle, api.EventTypeOperation, api.EventTypeLogging}

func newMonitorCmd(a *app) *cobra.Command {
	var (
		types  []string
		since  uint64
		format string
	)
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Print events as they happen",
		Long: "Print hangard's events as they happen, until interrupted.\n\n" +
			"--since N first replays the events whose sequence number is above N,\n" +
			"so that a consumer can resume where it stopped.",
		Example: "  hangar monitor --type lifecycle\n  hangar monitor --format json --since 120",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(cmd, format, formatYAML, formatJSON); err != nil {
				return err
			}
			for _, t := range types {
				if !slices.Contains(eventTypes, t) {
					return usageErrorf(cmd, "invalid event type %q: must be one of lifecycle, operation, logging", t)
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			l, err := c.GetEvents(ctx, types, since)
			if err != nil {
				return err
			}
			defer l.Close()
			for ev := range l.Events() {
				if err := printEvent(a.out, format, ev); err != nil {
					return err
				}
			}
			if ctx.Err() != nil {
				// Interrupted: the normal way to stop monitoring.
				return nil
			}
			if err := l.Err(); err != nil {
				return err
			}
			return errors.New("hangard closed the event stream")
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&types, "type", nil, "event type to show: lifecycle, operation or logging (repeatable; default all)")
	f.Uint64Var(&since, "since", 0, "replay the events with a sequence number above this one first")
	f.StringVarP(&format, "format", "f", formatYAML, "output format: yaml or json")
	return cmd
}

// eventView is api.Event with its metadata decoded, so that YAML shows it as
// a mapping rather than bytes.
type eventView struct {
	Type      string    `yaml:"type"`
	Timestamp time.Time `yaml:"timestamp"`
	Metadata  any       `yaml:"metadata"`
	Location  string    `yaml:"location,omitempty"`
	Project   string    `yaml:"project,omitempty"`
	Sequence  uint64    `yaml:"sequence"`
}

// printEvent prints one event: a line of JSON, or a YAML document followed
// by a blank line, as lxc monitor does.
func printEvent(w io.Writer, format string, ev api.Event) error {
	if format == formatJSON {
		return renderJSON(w, ev)
	}
	md, err := decodeJSONValue(ev.Metadata)
	if err != nil {
		return fmt.Errorf("decode event metadata: %w", err)
	}
	data, err := marshalYAML(eventView{
		Type: ev.Type, Timestamp: ev.Timestamp, Metadata: md,
		Location: ev.Location, Project: ev.Project, Sequence: ev.Sequence,
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// decodeJSONValue decodes raw JSON keeping integers integers (plain
// decoding turns them into floats, which YAML prints as 1.5e+06).
func decodeJSONValue(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return fixNumbers(v), nil
}

func fixNumbers(v any) any {
	switch t := v.(type) {
	case json.Number:
		if i, err := t.Int64(); err == nil {
			return i
		}
		f, _ := t.Float64()
		return f
	case map[string]any:
		for k, x := range t {
			t[k] = fixNumbers(x)
		}
	case []any:
		for i, x := range t {
			t[i] = fixNumbers(x)
		}
	}
	return v
}
