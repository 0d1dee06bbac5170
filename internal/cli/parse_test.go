package cli

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/api"
)

func TestParseKeyValues(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    map[string]string
		wantErr string
	}{
		{name: "key=value", args: []string{"limits.cpu=2"}, want: map[string]string{"limits.cpu": "2"}},
		{name: "several", args: []string{"a=1", "b=2"}, want: map[string]string{"a": "1", "b": "2"}},
		{name: "value with =", args: []string{"user.x=a=b"}, want: map[string]string{"user.x": "a=b"}},
		{name: "empty value", args: []string{"a="}, want: map[string]string{"a": ""}},
		{name: "key value form", args: []string{"user.motd", "hello world"}, want: map[string]string{"user.motd": "hello world"}},
		{name: "key value form with = in value", args: []string{"user.x", "a=b"}, want: map[string]string{"user.x": "a=b"}},
		{name: "last wins", args: []string{"a=1", "a=2"}, want: map[string]string{"a": "2"}},
		{name: "bare key", args: []string{"foo"}, wantErr: `invalid setting "foo": expected key=value`},
		{name: "empty key", args: []string{"=v"}, wantErr: `invalid setting "=v": empty key`},
		{name: "three args one bare", args: []string{"a=1", "b", "c=3"}, wantErr: `invalid setting "b": expected key=value`},
		{name: "nothing", args: nil, wantErr: "no key=value given"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseKeyValues(tt.args)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplySettings(t *testing.T) {
	cfg := map[string]string{"a": "1", "b": "2"}
	got := applySettings(cfg, map[string]string{"a": "", "c": "3"})
	if diff := cmp.Diff(map[string]string{"b": "2", "c": "3"}, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if cfg["a"] != "1" {
		t.Error("input map modified")
	}
	if got := applySettings(nil, map[string]string{"x": "y"}); got["x"] != "y" {
		t.Errorf("nil config: %v", got)
	}
}

func TestBuildInstancesPost(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		opts    launchOptions
		start   bool
		want    api.InstancesPost
		wantErr string
	}{
		{
			name: "defaults", args: []string{"alpine"}, start: true,
			want: api.InstancesPost{Source: api.InstanceSource{Type: "image", Alias: "alpine"}, Type: "container", Start: true},
		},
		{
			name: "everything", args: []string{"abc123", "web1"},
			opts: launchOptions{config: []string{"limits.cpu=2", "user.a=b=c"}, profiles: []string{"default", "big"}, ephemeral: true},
			want: api.InstancesPost{
				InstancePut: api.InstancePut{
					Config:    map[string]string{"limits.cpu": "2", "user.a": "b=c"},
					Profiles:  []string{"default", "big"},
					Ephemeral: true,
				},
				Name: "web1", Source: api.InstanceSource{Type: "image", Alias: "abc123"}, Type: "container",
			},
		},
		{
			name: "no profiles is an empty list", args: []string{"alpine", "x"}, opts: launchOptions{noProfiles: true},
			want: api.InstancesPost{InstancePut: api.InstancePut{Profiles: []string{}}, Name: "x",
				Source: api.InstanceSource{Type: "image", Alias: "alpine"}, Type: "container"},
		},
		{
			name: "vm", args: []string{"alpine"}, opts: launchOptions{vm: true},
			want: api.InstancesPost{Source: api.InstanceSource{Type: "image", Alias: "alpine"}, Type: "virtual-machine"},
		},
		{name: "bad config", args: []string{"alpine"}, opts: launchOptions{config: []string{"nokey"}}, wantErr: `invalid setting "nokey": expected key=value`},
		{name: "profile conflict", args: []string{"alpine"}, opts: launchOptions{noProfiles: true, profiles: []string{"a"}}, wantErr: "--no-profiles and --profile are mutually exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := buildInstancesPost(tt.args, tt.opts, tt.start)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestInstanceFilters(t *testing.T) {
	tests := []struct {
		filter string
		want   []string
	}{
		{"web", []string{"web1"}},
		{"web1", []string{"web1"}},
		{"we", []string{"web1"}},
		{"d.", []string{"db"}},
		{"^w", []string{"web1"}},
		{"x", nil},
		{"status=running", []string{"web1"}},
		{"STATE=Stopped", []string{"db"}},
		{"type=container", []string{"db", "web1"}},
		{"name=db", []string{"db"}},
		{"limits.memory=512MiB", []string{"web1"}},
		{"limits.memory=.*MiB", []string{"web1"}},
		{"user.role=web", []string{"web1"}},
		{"role=web", []string{"web1"}},
		{"role=db", nil},
		{"architecture=x86_64", []string{"web1"}},
	}
	insts := []api.InstanceFull{stoppedInst, runningInst}
	for _, tt := range tests {
		var got []string
		for _, inst := range filterInstances(insts, []string{tt.filter}) {
			got = append(got, inst.Name)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("filter %q (-want +got):\n%s", tt.filter, diff)
		}
	}
	if got := filterInstances(insts, []string{"w", "status=stopped"}); len(got) != 0 {
		t.Errorf("filters do not add up: %v", got)
	}
}

func TestSplitProfiles(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", []string{}},
		{"default", []string{"default"}},
		{"default, big,", []string{"default", "big"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, splitProfiles(tt.in)); diff != "" {
			t.Errorf("splitProfiles(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestFilterImages(t *testing.T) {
	images := []api.Image{imgAlpine, imgBare}
	tests := []struct {
		filters []string
		want    int
	}{
		{nil, 2},
		{[]string{"alp"}, 1},
		{[]string{"ffee"}, 1},
		{[]string{"alpine/3", "ffee"}, 2},
		{[]string{"zzz"}, 0},
	}
	for _, tt := range tests {
		if got := filterImages(images, tt.filters); len(got) != tt.want {
			t.Errorf("filterImages(%v) kept %d, want %d", tt.filters, len(got), tt.want)
		}
	}
}
