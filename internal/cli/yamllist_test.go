package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"gopkg.in/yaml.v3"

	"github.com/hangar-dev/hangar/api"
)

func TestPlainSafe(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"web1", true},
		{"Running", true},
		{"limits.memory", true},
		{"512MiB", true},
		{"fd42::5", true},
		{"10.0.3.5", true},
		{"/1.0/instances/c1", true},
		{"1.2.3", true},
		{"hello world", true},
		{"2025-03-04T15:06:00Z", true},
		{"2025-03-04T15:06:00.123456789+02:00", true},
		{"", false},
		{" lead", false},
		{"trail ", false},
		{"trail:", false},
		{"yes", false},
		{"No", false},
		{"NULL", false},
		{"true", false},
		{"~", false},
		{"123", false},
		{"0x1F", false},
		{"0o17", false},
		{"1e5", false},
		{"1_000", false},
		{"2025-01-02", false},
		{"12:30", false},
		{"a: b", false},
		{"a #b", false},
		{"#c", false},
		{"- x", false},
		{"-1", false},
		{"+1", false},
		{".5", false},
		{"[x]", false},
		{"{x}", false},
		{"a,b", false},
		{"multi\nline", false},
		{"tab\t", false},
		{"café", false},
		{"*alias", false},
		{"&anchor", false},
		{"!tag", false},
		{"%dir", false},
		{"@at", false},
		{"|pipe", false},
		{">gt", false},
		{"?q", false},
		{`say "hi"`, false},
	}
	for _, tt := range tests {
		if got := plainSafe(tt.in); got != tt.want {
			t.Errorf("plainSafe(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// yamlTricky is a listing entry whose strings YAML would misread if they
// were written plain.
type yamlTricky struct {
	Name   string            `json:"name" yaml:"name"`
	Config map[string]string `json:"config" yaml:"config"`
	List   []string          `json:"list" yaml:"list"`
	Nested [][]string        `json:"nested" yaml:"nested"`
	Empty  map[string]string `json:"empty" yaml:"empty"`
	Count  int64             `json:"count" yaml:"count"`
	Ratio  float64           `json:"ratio" yaml:"ratio"`
	On     bool              `json:"on" yaml:"on"`
	Ptr    *yamlTricky       `json:"ptr" yaml:"ptr"`
	Any    any               `json:"any" yaml:"any"`
}

func TestWriteYAMLListRoundTrip(t *testing.T) {
	strs := []string{"", " lead", "trail ", "yes", "No", "null", "~", "123", "0x1F", "1e5",
		"2025-01-02", "12:30", "a: b", "a #b", "#c", "- x", "[x]", "{x}", "multi\nline\n", "quote\"s",
		"back\\slash", "tab\t", "café", "*alias", "&anchor", "!tag", "%dir", "@at", "`tick`", "|pipe",
		">gt", "?q", "512MiB", "fd42::5", ".5", "-1", "+1", "1.2.3", "a,b", "<<", "=", "\x00nul", "\u2028"}
	cfg := map[string]string{}
	for i, s := range strs {
		cfg[s] = fmt.Sprint(i)
		cfg[fmt.Sprintf("k%d", i)] = s
	}
	tests := []struct {
		name string
		in   []yamlTricky
	}{
		{"empty listing", []yamlTricky{}},
		{"tricky strings", []yamlTricky{
			{Name: "a", Config: cfg, List: strs, Nested: [][]string{{"x", "y"}, {}, {"z"}}, Empty: map[string]string{},
				Count: -42, Ratio: 1.5, On: true, Ptr: &yamlTricky{Name: "inner", List: []string{"yes"}},
				Any: map[string]any{"n": 1.5, "l": []any{"no", true, nil}}},
			{Name: "yes", Count: 1 << 62},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := writeYAMLList(&buf, tt.in); err != nil {
				t.Fatal(err)
			}
			var got []yamlTricky
			if err := yaml.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("output does not parse: %v\n%s", err, buf.String())
			}
			if got == nil {
				got = []yamlTricky{}
			}
			if diff := cmp.Diff(tt.in, got); diff != "" {
				t.Errorf("round trip mismatch (-want +got):\n%s\n%s", diff, buf.String())
			}
		})
	}
}

// TestWriteYAMLListMatchesYAMLv3 pins the layout: where no string needs
// quoting and no map is nil, the output is yaml.v3's to the byte.
func TestWriteYAMLListMatchesYAMLv3(t *testing.T) {
	running := runningInst
	running.Devices = map[string]map[string]string{"root": {"path": "/", "type": "disk"}}
	running.ExpandedDevices = running.Devices
	st := *running.State
	st.Disk = map[string]api.InstanceStateDisk{}
	running.State = &st
	running.Backups = []any{}
	running.Snapshots = []api.InstanceSnapshot{{Name: "snap0", Architecture: "x86_64", Config: map[string]string{"user.a": "1"},
		Devices: map[string]map[string]string{}, Profiles: []string{"default"}, Size: -1,
		CreatedAt: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), InstanceSnapshotPut: api.InstanceSnapshotPut{ExpiresAt: time.Date(2024, 5, 2, 12, 0, 0, 0, time.UTC)}}}
	stopped := stoppedInst
	stopped.Config = map[string]string{}
	stopped.Devices = map[string]map[string]string{}
	stopped.ExpandedConfig = map[string]string{}
	stopped.ExpandedDevices = map[string]map[string]string{}
	stopped.Snapshots, stopped.Backups = []api.InstanceSnapshot{}, []any{}
	in := []api.InstanceFull{running, stopped}
	want, err := marshalYAML(in)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := writeYAMLList(&got, in); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("layout differs from yaml.v3 (-yaml.v3 +ours):\n%s", diff)
	}
}

// TestWriteYAMLListJSONMatchesDecoded pins the list command's undecoded
// yaml path to the decoded one: the daemon's JSON written as YAML must be
// the bytes of the same JSON decoded into api.InstanceFull, sorted and
// rendered.
func TestWriteYAMLListJSONMatchesDecoded(t *testing.T) {
	strs := []string{"", " lead", "yes", "123", "a: b", "multi\nline\n", "quote\"s", "back\\slash", "café",
		"<html> & </html>", "\x00nul", "\u2028", "\u00e9t\u00e9", "2025-01-02"}
	tricky := runningInst
	tricky.Name = "<b>&"
	tricky.Config = map[string]string{}
	for i, s := range strs {
		tricky.Config[s] = fmt.Sprint(i)
		tricky.Config[fmt.Sprintf("k%d", i)] = s
	}
	tricky.Description = "\u00e9t\u00e9 <x>"
	named := func(in api.InstanceFull, name string) api.InstanceFull {
		in.Name = name
		return in
	}
	marshal := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	indented, err := json.MarshalIndent([]api.InstanceFull{stoppedInst, runningInst}, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		raw  []byte
	}{
		{"sorted", marshal([]api.InstanceFull{stoppedInst, runningInst})},
		{"unsorted", marshal([]api.InstanceFull{runningInst, named(stoppedInst, "zz"), tricky, stoppedInst, named(runningInst, "web10"), named(stoppedInst, "é")})},
		{"one", marshal([]api.InstanceFull{tricky})},
		{"empty", []byte("[]")},
		{"null", []byte("null")},
		{"nothing", nil},
		{"indented", indented},
		// Only JSON from elsewhere than encoding/json holds invalid UTF-8.
		{"invalid utf-8", bytes.ReplaceAll(bytes.ReplaceAll(marshal([]api.InstanceFull{named(stoppedInst, "b"), named(runningInst, "a")}),
			[]byte(`"name":"a"`), []byte("\"name\":\"a\xfe\"")), []byte(`"description":""`), []byte("\"description\":\"x\xffy\""))},
		{"empty name", marshal([]api.InstanceFull{named(stoppedInst, "b"), named(runningInst, "")})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "invalid utf-8" && (utf8.Valid(tt.raw) || !bytes.Contains(tt.raw, []byte("a\xfe"))) {
				t.Fatalf("the fixture lost its invalid UTF-8: %s", tt.raw)
			}
			var decoded []api.InstanceFull
			if len(tt.raw) > 0 {
				if err := json.Unmarshal(tt.raw, &decoded); err != nil {
					t.Fatal(err)
				}
			}
			var want, got bytes.Buffer
			if err := instanceListing.render(&want, formatYAML, decoded); err != nil {
				t.Fatal(err)
			}
			if err := writeYAMLListJSON(&got, tt.raw, "name"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want.String(), got.String()); diff != "" {
				t.Errorf("undecoded path differs (-decoded +undecoded):\n%s", diff)
			}
		})
	}
}

func TestWriteYAMLListJSONBadInput(t *testing.T) {
	for _, raw := range []string{`{"name":"a"}`, `"a"`, `[{"name":"a"}`, `[{"name":"a"},`, `nul`, `[{"name":"a"} {}]`, `[{"name":"a\`} {
		if err := writeYAMLListJSON(io.Discard, []byte(raw), "name"); err == nil {
			t.Errorf("%s: no error", raw)
		}
	}
}

// TestYAMLStringFastPaths pins the hand-made unescape and quote to
// encoding/json and strconv, whose results they shortcut.
func TestYAMLStringFastPaths(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, `[{"Isuid":true,"Hostid":1000000}]`, "tab\t", "café", "\x7f", "\u2028", `\"`, "/"} {
		lit, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var y yamlWriter
		if got, ok := y.unescapeSimple(lit[1 : len(lit)-1]); ok && string(got) != s {
			t.Errorf("unescapeSimple(%s) = %q, want %q", lit, got, s)
		}
		y.quote([]byte(s))
		if want := strconv.Quote(s); y.out.String() != want {
			t.Errorf("quote(%q) = %s, want %s", s, y.out.String(), want)
		}
	}
	var y yamlWriter
	for _, lit := range []string{`a\nb`, `a\u0041`, `a\/b`, `caf\u00e9`, "caf\xc3\xa9", `tab\t`, `end\`} {
		if _, ok := y.unescapeSimple([]byte(lit)); ok {
			t.Errorf("unescapeSimple(%s) took an escape or byte it does not handle", lit)
		}
	}
}
