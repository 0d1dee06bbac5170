package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"
)

// Output formats of the list commands, as lxc names them.
const (
	formatTable = "table"
	formatCSV   = "csv"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

var listFormats = []string{formatTable, formatCSV, formatJSON, formatYAML}

// addFormatFlag adds lxc's --format/-f flag to a list command.
func addFormatFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVarP(format, "format", "f", formatTable,
		"output format: "+strings.Join(listFormats, ", "))
}

// checkFormat rejects a --format value outside allowed.
func checkFormat(cmd *cobra.Command, format string, allowed ...string) error {
	if !slices.Contains(allowed, format) {
		return usageErrorf(cmd, "invalid format %q: must be one of %s", format, strings.Join(allowed, ", "))
	}
	return nil
}

// renderList prints a listing: table and csv from rows, json and yaml from
// data, the API objects themselves, so that scripts get every field.
func renderList(w io.Writer, format string, header []string, rows [][]string, data any) error {
	switch format {
	case formatTable:
		return renderTable(w, header, rows)
	case formatCSV:
		return renderCSV(w, rows)
	case formatJSON:
		return renderJSON(w, data)
	case formatYAML:
		return writeYAMLList(w, data)
	}
	return fmt.Errorf("unknown format %q", format)
}

// renderTable draws lxc's bordered table: centred headers, left-aligned
// cells, a rule under every row, and cells that may span several lines (an
// instance with two addresses).
func renderTable(w io.Writer, header []string, rows [][]string) error {
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
	}
	split := make([][][]string, len(rows)) // row, column, line
	for r, row := range rows {
		split[r] = make([][]string, len(header))
		for c := range header {
			cell := ""
			if c < len(row) {
				cell = row[c]
			}
			lines := strings.Split(cell, "\n")
			split[r][c] = lines
			for _, l := range lines {
				widths[c] = max(widths[c], utf8.RuneCountInString(l))
			}
		}
	}

	var b strings.Builder
	rule := func() {
		b.WriteByte('+')
		for _, wd := range widths {
			b.WriteString(strings.Repeat("-", wd+2))
			b.WriteByte('+')
		}
		b.WriteByte('\n')
	}
	rule()
	b.WriteByte('|')
	for i, h := range header {
		gap := widths[i] - utf8.RuneCountInString(h)
		left := gap / 2
		fmt.Fprintf(&b, " %s%s%s |", strings.Repeat(" ", left), h, strings.Repeat(" ", gap-left))
	}
	b.WriteByte('\n')
	rule()
	for _, row := range split {
		height := 1
		for _, lines := range row {
			height = max(height, len(lines))
		}
		for l := range height {
			b.WriteByte('|')
			for c, lines := range row {
				text := ""
				if l < len(lines) {
					text = lines[l]
				}
				fmt.Fprintf(&b, " %s%s |", text, strings.Repeat(" ", widths[c]-utf8.RuneCountInString(text)))
			}
			b.WriteByte('\n')
		}
		rule()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// renderCSV prints rows without a header, as lxc does.
func renderCSV(w io.Writer, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("write csv: %w", err)
	}
	return nil
}

// renderJSON prints v as one line of JSON, as lxc does.
func renderJSON(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode json: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// renderYAML prints v as YAML indented by two spaces, as lxc does.
func renderYAML(w io.Writer, v any) error {
	data, err := marshalYAML(v)
	if err != nil {
		return err
	}
	_, err = w.Write(data)
	return err
}

func marshalYAML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode yaml: %w", err)
	}
	return buf.Bytes(), nil
}

// displayLocation is the zone times are shown in; tests pin it to UTC.
var displayLocation = time.Local

// formatTime renders a timestamp like lxc info ("2006/01/02 15:04 MST").
func formatTime(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return ""
	}
	return t.In(displayLocation).Format("2006/01/02 15:04 MST")
}

// formatUploadDate renders an image date like lxc image list.
func formatUploadDate(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return ""
	}
	return t.In(displayLocation).Format("Jan 2, 2006 at 3:04pm (MST)")
}

// formatBytes renders a byte count in IEC units with two decimals, like
// lxc's "2.46MiB".
func formatBytes(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	value := float64(n)
	for _, unit := range []string{"KiB", "MiB", "GiB", "TiB", "PiB"} {
		value /= 1024
		if value < 1024 {
			return fmt.Sprintf("%.2f%s", value, unit)
		}
	}
	return fmt.Sprintf("%.2fEiB", value/1024)
}

// yesNo renders a boolean like lxc's tables.
func yesNo(b bool) string {
	if b {
		return "YES"
	}
	return "NO"
}

// shortFingerprint is the 12-character fingerprint lxc shows in tables.
func shortFingerprint(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}
