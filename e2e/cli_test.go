package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// TestCLI drives one hangard through the hangar command line, flow by flow,
// and checks what really happened (config stored, cgroup limits, events,
// instances gone) rather than exit codes alone. The flows share the daemon
// to keep the run short; each uses its own instances, so they do not depend
// on one another's order.
func TestCLI(t *testing.T) {
	requireE2E(t)
	d := startDaemon(t, "")
	d.importImages()

	flows := []struct {
		name string
		run  func(d *daemon)
	}{
		{"config", cliConfig},
		{"profiles", cliProfiles},
		{"images", cliImages},
		{"operations", cliOperations},
		{"monitor", cliMonitor},
		{"list", cliList},
		{"console", cliConsole},
		{"errors", cliErrors},
		{"ephemeral", cliEphemeral},
	}
	for _, f := range flows {
		t.Run(f.name, func(t *testing.T) { f.run(d.on(t)) })
	}
}

// on returns the daemon as seen from test t, so that the helpers' failures
// (must, Fatalf) end t rather than the test that started the daemon.
func (d *daemon) on(t *testing.T) *daemon {
	c := *d
	c.t = t
	return &c
}

// hangarStdin runs the CLI with stdin read from a pipe holding input.
func (d *daemon) hangarStdin(input string, args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "hangar"), append([]string{"--socket", d.socket}, args...)...)
	cmd.Stdin = strings.NewReader(input)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		d.t.Fatalf("run hangar %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// mustFail runs the CLI, expects it to fail with one line on stderr,
// "Error: ..." holding every one of wants, and returns that line.
func (d *daemon) mustFail(args []string, wants ...string) string {
	d.t.Helper()
	out, errOut, code := d.hangar(args...)
	return checkOneLineError(d.t, args, out, errOut, code, wants...)
}

// mustFailUsage is mustFail for a mistake in how the command is called: the
// error line is followed by one line saying how to call it.
func (d *daemon) mustFailUsage(args []string, wants ...string) string {
	d.t.Helper()
	out, errOut, code := d.hangar(args...)
	first, hint, _ := strings.Cut(strings.TrimSpace(errOut), "\n")
	if !strings.HasPrefix(hint, "Usage: hangar ") && !strings.HasPrefix(hint, "Run 'hangar") {
		d.t.Errorf("hangar %s: stderr %q, want an error line and a usage line", strings.Join(args, " "), errOut)
	}
	return checkOneLineError(d.t, args, out, first, code, wants...)
}

func checkOneLineError(t *testing.T, args []string, out, errOut string, code int, wants ...string) string {
	t.Helper()
	line := strings.TrimSpace(errOut)
	switch {
	case code == 0:
		t.Errorf("hangar %s: exit 0, want a failure (stdout %q, stderr %q)", strings.Join(args, " "), out, errOut)
	case strings.Contains(line, "\n") || !strings.HasPrefix(line, "Error: "):
		t.Errorf("hangar %s: stderr %q, want one line starting with \"Error: \"", strings.Join(args, " "), errOut)
	}
	for _, w := range wants {
		if !strings.Contains(line, w) {
			t.Errorf("hangar %s: error %q does not mention %q", strings.Join(args, " "), line, w)
		}
	}
	return line
}

// configGet is `hangar config get NAME KEY` without the newline.
func (d *daemon) configGet(name, key string, flags ...string) string {
	d.t.Helper()
	return strings.TrimSuffix(d.must(append([]string{"config", "get", name, key}, flags...)...), "\n")
}

// instanceConfig reads `hangar config show [--expanded] NAME` as YAML.
func (d *daemon) instanceConfig(name string, expanded bool) api.InstancePut {
	d.t.Helper()
	args := []string{"config", "show", name}
	if expanded {
		args = append(args, "--expanded")
	}
	var put api.InstancePut
	if err := yaml.Unmarshal([]byte(d.must(args...)), &put); err != nil {
		d.t.Fatalf("config show %s: %v", name, err)
	}
	return put
}

// instanceNames lists the instances through `hangar list --format csv`.
func (d *daemon) instanceNames() []string {
	d.t.Helper()
	var names []string
	for _, row := range parseCSV(d.t, d.must("list", "--format", "csv")) {
		names = append(names, row[0])
	}
	return names
}

func parseCSV(t *testing.T, out string) [][]string {
	t.Helper()
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("parse csv %q: %v", out, err)
	}
	return rows
}

// csvRow returns the row whose first cell is key.
func csvRow(t *testing.T, out, key string) []string {
	t.Helper()
	for _, row := range parseCSV(t, out) {
		if row[0] == key {
			return row
		}
	}
	t.Fatalf("no row %q in csv:\n%s", key, out)
	return nil
}

// tableRows returns the cells of an lxc-style table's rows, header included.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		var cells []string
		for _, c := range strings.Split(strings.Trim(line, "|"), "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	return rows
}

func cliConfig(d *daemon) {
	t := d.t
	d.must("profile", "create", "cfgprof")
	d.must("profile", "set", "cfgprof", "user.from-profile=yes")
	d.must("launch", "busybox", "cfg1", "-p", "default", "-p", "cfgprof")

	// Two keys at once, then the "KEY VALUE" spelling (a value with spaces
	// and an '=').
	d.must("config", "set", "cfg1", "user.a=1", "limits.memory=64MiB")
	d.must("config", "set", "cfg1", "user.b", "x = y z")
	for key, want := range map[string]string{"user.a": "1", "limits.memory": "64MiB", "user.b": "x = y z", "user.unset": ""} {
		if got := d.configGet("cfg1", key); got != want {
			t.Errorf("config get %s = %q, want %q", key, got, want)
		}
	}

	local := d.instanceConfig("cfg1", false)
	if local.Config["user.a"] != "1" || local.Config["user.b"] != "x = y z" {
		t.Errorf("config show: config %v lacks the keys set", local.Config)
	}
	if _, ok := local.Config["user.from-profile"]; ok {
		t.Errorf("config show without --expanded shows the profile's key: %v", local.Config)
	}
	if !slices.Equal(local.Profiles, []string{"default", "cfgprof"}) {
		t.Errorf("config show: profiles %v", local.Profiles)
	}
	expanded := d.instanceConfig("cfg1", true)
	if expanded.Config["user.from-profile"] != "yes" || expanded.Config["user.a"] != "1" {
		t.Errorf("config show --expanded: config %v lacks the profile's or the local keys", expanded.Config)
	}
	if got := d.configGet("cfg1", "user.from-profile", "--expanded"); got != "yes" {
		t.Errorf("config get --expanded user.from-profile = %q", got)
	}

	d.must("config", "unset", "cfg1", "user.a")
	if got := d.configGet("cfg1", "user.a"); got != "" {
		t.Errorf("after unset user.a = %q", got)
	}
	d.mustFail([]string{"config", "unset", "cfg1", "user.a"}, "user.a")

	t.Run("refused keys", func(t *testing.T) {
		d := d.on(t)
		base := d.configGet("cfg1", "volatile.base_image")
		if base == "" {
			t.Fatal("volatile.base_image not set")
		}
		tests := []struct {
			args []string
			want string
		}{
			{[]string{"config", "set", "cfg1", "limits.bogus=1"}, "limits.bogus"},
			{[]string{"config", "set", "cfg1", "user.c=1", "limits.memroy=1GiB"}, "limits.memroy"},
			{[]string{"config", "set", "cfg1", "limits.memory=lots"}, "limits.memory"},
			{[]string{"config", "set", "cfg1", "volatile.base_image=abc"}, "volatile.base_image"},
			{[]string{"config", "set", "cfg1", "volatile.base_image", "abc"}, "volatile.base_image"},
			{[]string{"config", "unset", "cfg1", "volatile.base_image"}, "volatile.base_image"},
			{[]string{"config", "set", "cfg1", "volatile.base_image="}, "volatile.base_image"},
			{[]string{"config", "unset", "cfg1", "image.architecture"}, "image.architecture"},
		}
		for _, tt := range tests {
			d.mustFail(tt.args, tt.want)
		}
		// Nothing of a refused change was applied.
		cfg := d.instanceConfig("cfg1", false).Config
		if cfg["volatile.base_image"] != base || cfg["limits.memory"] != "64MiB" || cfg["user.c"] != "" || cfg["image.architecture"] == "" {
			t.Errorf("config after refused changes: %v", cfg)
		}
	})

	t.Run("edit from stdin", func(t *testing.T) {
		d := d.on(t)
		shown := d.must("config", "show", "cfg1")
		edited := strings.Replace(shown, "limits.memory: 64MiB", "limits.memory: 80MiB", 1)
		if edited == shown {
			t.Fatalf("config show has no limits.memory line:\n%s", shown)
		}
		if out, errOut, code := d.hangarStdin(edited, "config", "edit", "cfg1"); code != 0 {
			t.Fatalf("config edit: exit %d\n%s%s", code, out, errOut)
		}
		if got := d.configGet("cfg1", "limits.memory"); got != "80MiB" {
			t.Errorf("after edit limits.memory = %q, want 80MiB", got)
		}
		// A changed limit applies to the running container at once.
		if got := cgroupFile(t, d.pid("cfg1"), "memory", "memory.limit_in_bytes"); got != strconv.Itoa(80<<20) {
			t.Errorf("memory cgroup limit after edit %s, want %d (80MiB)", got, 80<<20)
		}
		if got := d.instanceConfig("cfg1", false); got.Config["user.b"] != "x = y z" || !slices.Equal(got.Profiles, []string{"default", "cfgprof"}) {
			t.Errorf("edit lost what it did not change: %+v", got)
		}
		// Broken YAML and an unknown key are refused on one line.
		out, errOut, code := d.hangarStdin("config: [", "config", "edit", "cfg1")
		checkOneLineError(t, []string{"config", "edit"}, out, errOut, code, "YAML")
		out, errOut, code = d.hangarStdin(strings.Replace(shown, "limits.memory:", "limits.memroy:", 1), "config", "edit", "cfg1")
		checkOneLineError(t, []string{"config", "edit"}, out, errOut, code, "limits.memroy")
		if got := d.configGet("cfg1", "limits.memory"); got != "80MiB" {
			t.Errorf("after refused edits limits.memory = %q, want 80MiB", got)
		}
	})

	t.Run("stale etag", func(t *testing.T) {
		d := d.on(t)
		c := d.client()
		ctx := context.Background()
		inst, etag, err := c.GetInstance(ctx, "cfg1")
		if err != nil {
			t.Fatal(err)
		}
		if etag == "" {
			t.Fatal("GET /1.0/instances/cfg1 sent no ETag")
		}
		d.must("config", "set", "cfg1", "user.d=fresh")
		put := inst.InstancePut
		put.Config["user.d"] = "stale"
		op, err := c.UpdateInstance(ctx, "cfg1", put, etag)
		if err == nil {
			err = op.Wait(ctx)
		}
		if !client.IsPreconditionFailed(err) {
			t.Fatalf("update with a stale ETag: %v (status %d), want 412", err, client.StatusCodeOf(err))
		}
		if got := d.configGet("cfg1", "user.d"); got != "fresh" {
			t.Errorf("user.d = %q after the refused stale update, want fresh", got)
		}
		// The current ETag is accepted.
		inst, etag, err = c.GetInstance(ctx, "cfg1")
		if err != nil {
			t.Fatal(err)
		}
		put = inst.InstancePut
		put.Config["user.d"] = "current"
		op, err = c.UpdateInstance(ctx, "cfg1", put, etag)
		if err == nil {
			err = op.Wait(ctx)
		}
		if err != nil {
			t.Fatalf("update with the current ETag: %v", err)
		}
		if got := d.configGet("cfg1", "user.d"); got != "current" {
			t.Errorf("user.d = %q, want current", got)
		}
	})
}

func cliProfiles(d *daemon) {
	t := d.t
	if out := d.must("profile", "create", "small"); !strings.Contains(out, "small") {
		t.Errorf("profile create said %q", out)
	}
	d.must("profile", "set", "small", "limits.memory=96MiB")
	var shown api.Profile
	if err := yaml.Unmarshal([]byte(d.must("profile", "show", "small")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Name != "small" || shown.Config["limits.memory"] != "96MiB" {
		t.Errorf("profile show small: %+v", shown)
	}
	d.mustFail([]string{"profile", "set", "small", "limits.bogus=1"}, "limits.bogus")
	d.mustFail([]string{"profile", "create", "small"}, "small")

	list := d.must("profile", "list")
	var names []string
	for _, row := range tableRows(list)[1:] {
		names = append(names, row[0])
	}
	if !slices.Contains(names, "default") || !slices.Contains(names, "small") {
		t.Errorf("profile list shows %v:\n%s", names, list)
	}

	d.must("launch", "busybox", "p1")
	oldPid := d.pid("p1")
	d.must("profile", "assign", "p1", "default,small")
	if got := d.instanceConfig("p1", true).Config["limits.memory"]; got != "96MiB" {
		t.Errorf("expanded limits.memory = %q, want 96MiB from the profile", got)
	}
	if got := d.instanceConfig("p1", false); !slices.Equal(got.Profiles, []string{"default", "small"}) {
		t.Errorf("profiles after assign: %v", got.Profiles)
	}
	if err := yaml.Unmarshal([]byte(d.must("profile", "show", "small")), &shown); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shown.UsedBy, []string{"/1.0/instances/p1"}) {
		t.Errorf("profile show small: used_by %v, want p1", shown.UsedBy)
	}
	if row := csvRow(t, d.must("profile", "list", "--format", "csv"), "small"); row[2] != "1" {
		t.Errorf("profile list: small used by %s, want 1", row[2])
	}
	if got := cgroupFile(t, oldPid, "memory", "memory.limit_in_bytes"); got != strconv.Itoa(96<<20) {
		t.Errorf("memory cgroup limit right after assign %s, want %d (96MiB, applied at once)", got, 96<<20)
	}
	d.must("restart", "p1", "--force")
	pid := d.pid("p1")
	if pid == oldPid {
		t.Errorf("restart kept pid %d", pid)
	}
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); got != strconv.Itoa(96<<20) {
		t.Errorf("memory limit after restart %s, want %d (96MiB)", got, 96<<20)
	}

	d.mustFail([]string{"profile", "delete", "small"}, "p1")
	d.must("profile", "rename", "small", "tiny")
	if got := d.instanceConfig("p1", false).Profiles; !slices.Equal(got, []string{"default", "tiny"}) {
		t.Errorf("p1 profiles after rename: %v", got)
	}
	if err := yaml.Unmarshal([]byte(d.must("profile", "show", "tiny")), &shown); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(shown.UsedBy, []string{"/1.0/instances/p1"}) || shown.Config["limits.memory"] != "96MiB" {
		t.Errorf("profile show tiny after rename: %+v", shown)
	}
	d.mustFail([]string{"profile", "show", "small"}, "not found")

	edited := strings.Replace(d.must("profile", "show", "tiny"), "96MiB", "112MiB", 1)
	edited = strings.Replace(edited, `description: ""`, "description: tiny limits", 1)
	if out, errOut, code := d.hangarStdin(edited, "profile", "edit", "tiny"); code != 0 {
		t.Fatalf("profile edit: exit %d\n%s%s", code, out, errOut)
	}
	if got := strings.TrimSpace(d.must("profile", "get", "tiny", "limits.memory")); got != "112MiB" {
		t.Errorf("after profile edit limits.memory = %q", got)
	}
	if row := csvRow(t, d.must("profile", "list", "--format", "csv"), "tiny"); row[1] != "tiny limits" {
		t.Errorf("after profile edit description = %q", row[1])
	}
	if got := d.instanceConfig("p1", true).Config["limits.memory"]; got != "112MiB" {
		t.Errorf("p1 expanded limits.memory = %q after the profile edit", got)
	}
	if got := cgroupFile(t, pid, "memory", "memory.limit_in_bytes"); got != strconv.Itoa(112<<20) {
		t.Errorf("memory cgroup limit after the profile edit %s, want %d (112MiB, applied at once)", got, 112<<20)
	}

	d.must("profile", "set", "tiny", "user.note", "to be removed")
	if got := strings.TrimSpace(d.must("profile", "get", "tiny", "user.note")); got != "to be removed" {
		t.Errorf("profile get user.note = %q", got)
	}
	d.must("profile", "unset", "tiny", "user.note")
	if got := strings.TrimSpace(d.must("profile", "get", "tiny", "user.note")); got != "" {
		t.Errorf("profile get user.note after unset = %q", got)
	}

	// A profile change read before another is refused (SDK, ETag).
	c := d.client()
	ctx := context.Background()
	p, etag, err := c.GetProfile(ctx, "tiny")
	if err != nil {
		t.Fatal(err)
	}
	d.must("profile", "set", "tiny", "user.v=2")
	p.Config["user.v"] = "stale"
	if err := c.UpdateProfile(ctx, "tiny", p.ProfilePut, etag); !client.IsPreconditionFailed(err) {
		t.Errorf("profile update with a stale ETag: %v, want 412", err)
	}
	if got := strings.TrimSpace(d.must("profile", "get", "tiny", "user.v")); got != "2" {
		t.Errorf("user.v = %q after the refused stale update", got)
	}

	d.mustFail([]string{"profile", "delete", "default"}, "default")
	d.mustFail([]string{"profile", "rename", "default", "other"}, "default")

	// Once unused, the profile goes.
	d.must("profile", "assign", "p1", "default")
	d.must("profile", "delete", "tiny")
	if out := d.must("profile", "list", "--format", "csv"); strings.Contains(out, "tiny") {
		t.Errorf("profile list after delete:\n%s", out)
	}
}

// images reads `hangar image list --format json`.
func (d *daemon) images() []api.Image {
	d.t.Helper()
	var images []api.Image
	if err := json.Unmarshal([]byte(d.must("image", "list", "--format", "json")), &images); err != nil {
		d.t.Fatalf("decode image list: %v", err)
	}
	return images
}

// fingerprint returns the fingerprint of the image with this alias.
func (d *daemon) fingerprint(alias string) string {
	d.t.Helper()
	for _, img := range d.images() {
		for _, al := range img.Aliases {
			if al.Name == alias {
				return img.Fingerprint
			}
		}
	}
	d.t.Fatalf("no image with alias %s", alias)
	return ""
}

var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

func cliImages(d *daemon) {
	t := d.t
	fp := d.fingerprint("busybox")
	if !fingerprintRE.MatchString(fp) {
		t.Fatalf("busybox fingerprint %q", fp)
	}

	table := d.must("image", "list")
	found := false
	for _, row := range tableRows(table) {
		found = found || (row[0] == "busybox" && row[1] == fp[:12])
	}
	if !found {
		t.Errorf("image list table lacks busybox %s:\n%s", fp[:12], table)
	}
	if row := csvRow(t, d.must("image", "list", "--format", "csv"), "busybox"); row[1] != fp[:12] {
		t.Errorf("image list csv: busybox row %v, want fingerprint %s", row, fp[:12])
	}
	if filtered := d.must("image", "list", "bus", "--format", "csv"); len(parseCSV(t, filtered)) != 1 {
		t.Errorf("image list bus:\n%s", filtered)
	}

	info := d.must("image", "info", "busybox")
	for _, want := range []string{"Fingerprint: " + fp, "    os: busybox", "    release: 1.35", "Aliases:\n    - busybox\n"} {
		if !strings.Contains(info, want) {
			t.Errorf("image info lacks %q:\n%s", want, info)
		}
	}

	t.Run("aliases", func(t *testing.T) {
		d := d.on(t)
		d.must("image", "alias", "create", "x", fp[:12]) // a prefix is stored as the full fingerprint
		aliases := func() map[string]string {
			var list []api.ImageAliasesEntry
			if err := json.Unmarshal([]byte(d.must("image", "alias", "list", "--format", "json")), &list); err != nil {
				t.Fatal(err)
			}
			m := map[string]string{}
			for _, al := range list {
				m[al.Name] = al.Target
			}
			return m
		}
		if got := aliases(); got["x"] != fp || got["busybox"] != fp {
			t.Errorf("aliases after create: %v", got)
		}
		if row := csvRow(t, d.must("image", "alias", "list", "--format", "csv"), "x"); row[1] != fp[:12] {
			t.Errorf("alias list csv row %v", row)
		}
		if got := tableRows(d.must("image", "alias", "list", "x")); len(got) != 2 || got[1][0] != "x" {
			t.Errorf("alias list x: %v", got)
		}
		d.mustFail([]string{"image", "alias", "create", "x", fp}, "x")
		d.mustFail([]string{"image", "alias", "create", "z", "0000000000ff"}, "not found")
		// The image now shows both aliases.
		if row := csvRow(t, d.must("image", "list", "--format", "csv"), "busybox (1 more)"); row[1] != fp[:12] {
			t.Errorf("image list with two aliases: %v", row)
		}

		d.must("image", "alias", "rename", "x", "y")
		if got := aliases(); got["y"] != fp || got["x"] != "" {
			t.Errorf("aliases after rename: %v", got)
		}
		// An instance can be launched through the new alias.
		d.must("init", "y", "via-alias")
		d.must("image", "alias", "delete", "y")
		if got := aliases(); got["y"] != "" || got["busybox"] != fp {
			t.Errorf("aliases after delete: %v", got)
		}
		if d.fingerprint("busybox") != fp {
			t.Error("deleting an alias changed the image")
		}
		d.must("delete", "via-alias")
	})

	t.Run("delete", func(t *testing.T) {
		d := d.on(t)
		sleeperFP := d.fingerprint("sleeper")
		d.must("init", "sleeper", "img-user")
		d.mustFail([]string{"image", "delete", "sleeper"}, "img-user")
		if d.fingerprint("sleeper") != sleeperFP {
			t.Fatal("image in use changed by a refused delete")
		}

		exit7FP := d.fingerprint("exit7")
		d.must("image", "delete", "exit7")
		for _, img := range d.images() {
			if img.Fingerprint == exit7FP {
				t.Fatalf("exit7 still listed after delete: %+v", img)
			}
		}
		d.mustFail([]string{"image", "info", exit7FP}, "not found")
		d.mustFail([]string{"launch", "exit7", "gone1"}, "exit7", "not found")
		d.mustFail([]string{"launch", exit7FP, "gone2"}, "not found")
		c := d.client()
		_, err := c.CreateInstance(context.Background(), api.InstancesPost{Name: "gone3", Source: api.InstanceSource{Type: "image", Fingerprint: exit7FP}})
		if !client.IsNotFound(err) {
			t.Errorf("create from the deleted image: %v (status %d), want 404", err, client.StatusCodeOf(err))
		}
		for _, n := range d.instanceNames() {
			if strings.HasPrefix(n, "gone") {
				t.Errorf("instance %s left by a failed launch", n)
			}
		}
		d.must("delete", "img-user")
	})
}

func cliOperations(d *daemon) {
	t := d.t
	d.must("launch", "busybox", "op1")
	var ops []api.Operation
	if err := json.Unmarshal([]byte(d.must("operation", "list", "--format", "json")), &ops); err != nil {
		t.Fatal(err)
	}
	var create *api.Operation
	for i, op := range ops {
		if op.Description == "Creating instance" && slices.Contains(op.Resources["instances"], "/1.0/instances/op1") {
			create = &ops[i]
		}
	}
	if create == nil {
		t.Fatalf("operation list has no finished \"Creating instance\" for op1: %+v", ops)
	}
	if create.StatusCode != api.Success || create.MayCancel {
		t.Errorf("create operation: status %s (%d), may_cancel %v", create.Status, create.StatusCode, create.MayCancel)
	}
	found := false
	for _, row := range tableRows(d.must("operation", "list")) {
		found = found || (row[0] == create.ID && row[2] == "Creating instance" && row[3] == "SUCCESS")
	}
	if !found {
		t.Errorf("operation list table lacks %s", create.ID)
	}

	var shown api.Operation
	if err := yaml.Unmarshal([]byte(d.must("operation", "show", create.ID)), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.ID != create.ID || shown.Status != "Success" || shown.Description != "Creating instance" {
		t.Errorf("operation show: %+v", shown)
	}

	start := time.Now()
	d.must("operation", "wait", create.ID)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("operation wait of a finished operation took %s", took)
	}
	d.mustFail([]string{"operation", "cancel", create.ID}, create.ID)
	d.mustFail([]string{"operation", "show", "00000000-0000-0000-0000-000000000000"}, "not found")
}

// monitor is a running `hangar monitor` whose output lines arrive on lines.
type monitor struct {
	cmd    *exec.Cmd
	lines  chan string
	done   chan struct{} // closed when the test stops reading
	stderr *syncBuffer
}

// syncBuffer is a bytes.Buffer that exec's copying goroutine may write
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (d *daemon) startMonitor(args ...string) *monitor {
	d.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "hangar"), append([]string{"--socket", d.socket, "monitor"}, args...)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		d.t.Fatal(err)
	}
	m := &monitor{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{}), stderr: &syncBuffer{}}
	cmd.Stderr = m.stderr
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	go func() {
		defer close(m.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<16), 1<<24)
		for sc.Scan() {
			select {
			case m.lines <- sc.Text():
			case <-m.done: // nobody reads any more: drain
			}
		}
	}()
	d.t.Cleanup(m.stop)
	return m
}

// stop kills the monitor (once) and reaps it.
func (m *monitor) stop() {
	if m.cmd.ProcessState != nil {
		return
	}
	close(m.done)
	_ = m.cmd.Process.Kill()
	_ = m.cmd.Wait()
}

// interrupt stops the monitor the way a user does, with Ctrl-C, and checks
// that it ends at once, cleanly and silently.
func (m *monitor) interrupt(t *testing.T) {
	t.Helper()
	close(m.done)
	if err := m.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- m.cmd.Wait() }()
	select {
	case err := <-exited:
		if errOut := m.stderr.String(); err != nil || errOut != "" {
			t.Errorf("monitor after Ctrl-C: %v, stderr %q", err, errOut)
		}
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-exited
		t.Error("monitor still running 10s after Ctrl-C")
	}
}

// next returns the first event for which match holds, skipping others.
func (m *monitor) next(t *testing.T, what string, match func(ev api.Event, lc api.EventLifecycle) bool) api.Event {
	t.Helper()
	ev, ok := m.await(t, 20*time.Second, match)
	if !ok {
		t.Fatalf("no %s from monitor within 20s", what)
	}
	return ev
}

// await waits up to timeout for an event for which match holds.
func (m *monitor) await(t *testing.T, timeout time.Duration, match func(ev api.Event, lc api.EventLifecycle) bool) (api.Event, bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-m.lines:
			if !ok {
				t.Fatalf("monitor ended; stderr %q", m.stderr.String())
			}
			var ev api.Event
			var fields map[string]json.RawMessage
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				t.Fatalf("monitor printed %q: %v", line, err)
			}
			if err := json.Unmarshal([]byte(line), &fields); err != nil || fields["sequence"] == nil {
				t.Errorf("monitor printed an event without \"sequence\": %s", line)
			}
			var lc api.EventLifecycle
			_ = json.Unmarshal(ev.Metadata, &lc)
			if match(ev, lc) {
				return ev, true
			}
		case <-deadline:
			return api.Event{}, false
		}
	}
}

// listening makes events until the monitor shows one: it prints nothing
// before, so that is the only way to know it is subscribed.
func (m *monitor) listening(d *daemon) api.Event {
	d.t.Helper()
	for i := range 40 {
		name := "mon-sync-" + strconv.Itoa(i)
		d.must("profile", "create", name)
		d.must("profile", "delete", name)
		if ev, ok := m.await(d.t, 500*time.Millisecond, lifecycle("profile-created", "/1.0/profiles/"+name)); ok {
			return ev
		}
	}
	d.t.Fatal("monitor shows no event after 40 tries")
	return api.Event{}
}

func lifecycle(action, source string) func(api.Event, api.EventLifecycle) bool {
	return func(ev api.Event, lc api.EventLifecycle) bool {
		return ev.Type == api.EventTypeLifecycle && lc.Action == action && lc.Source == source
	}
}

func cliMonitor(d *daemon) {
	t := d.t
	m := d.startMonitor("--type", "lifecycle", "--format", "json")
	first := m.listening(d)

	d.must("launch", "busybox", "mon1")
	started := m.next(t, "instance-started event for mon1", lifecycle("instance-started", "/1.0/instances/mon1"))
	if started.Sequence <= first.Sequence {
		t.Errorf("instance-started has sequence %d, not after %d", started.Sequence, first.Sequence)
	}
	m.interrupt(t)

	// Whatever happens while no one listens is replayed with --since.
	d.must("freeze", "mon1")
	d.must("unfreeze", "mon1")
	replay := d.startMonitor("--type", "lifecycle", "--format", "json", "--since", strconv.FormatUint(started.Sequence, 10))
	var got []string
	last := started.Sequence
	for _, action := range []string{"instance-paused", "instance-resumed"} {
		replay.next(t, action+" replayed", func(ev api.Event, lc api.EventLifecycle) bool {
			if ev.Sequence <= last {
				t.Errorf("replayed sequence %d after %d", ev.Sequence, last)
			}
			last = ev.Sequence
			if ev.Type != api.EventTypeLifecycle {
				t.Errorf("--type lifecycle let through a %s event", ev.Type)
			}
			got = append(got, lc.Action)
			return lc.Action == action && lc.Source == "/1.0/instances/mon1"
		})
	}
	if want := []string{"instance-paused", "instance-resumed"}; !slices.Equal(got, want) {
		t.Errorf("replay after %d gave %v, want %v", started.Sequence, got, want)
	}
	replay.interrupt(t)
}

func cliList(d *daemon) {
	t := d.t
	d.must("launch", "busybox", "ls-run")
	d.must("init", "busybox", "ls-stop")
	d.must("launch", "busybox", "ls-frozen")
	d.must("freeze", "ls-frozen")
	want := map[string]string{"ls-frozen": "FROZEN", "ls-run": "RUNNING", "ls-stop": "STOPPED"}

	rows := tableRows(d.must("list", "ls-"))
	if len(rows) != 4 || !slices.Equal(rows[0][:2], []string{"NAME", "STATE"}) {
		t.Fatalf("list ls- table: %v", rows)
	}
	for i, name := range []string{"ls-frozen", "ls-run", "ls-stop"} { // sorted by name
		if rows[i+1][0] != name || rows[i+1][1] != want[name] || rows[i+1][4] != "CONTAINER" {
			t.Errorf("table row %d: %v, want %s %s", i+1, rows[i+1], name, want[name])
		}
	}

	csvRows := parseCSV(t, d.must("list", "--format", "csv", "ls-"))
	if len(csvRows) != 3 {
		t.Fatalf("list --format csv ls-: %v", csvRows)
	}
	for _, row := range csvRows {
		if want[row[0]] != row[1] {
			t.Errorf("csv row %v, want state %s", row, want[row[0]])
		}
	}
	// All instances (other flows' too) are in the full list.
	all := parseCSV(t, d.must("list", "--format", "csv"))
	if len(all) < 3 {
		t.Errorf("list --format csv: %v", all)
	}

	var insts []api.InstanceFull
	if err := yaml.Unmarshal([]byte(d.must("list", "--format", "yaml", "ls-")), &insts); err != nil {
		t.Fatal(err)
	}
	if len(insts) != 3 {
		t.Fatalf("list --format yaml ls-: %d instances", len(insts))
	}
	for _, in := range insts {
		if strings.ToUpper(in.Status) != want[in.Name] {
			t.Errorf("yaml: %s is %s, want %s", in.Name, in.Status, want[in.Name])
		}
		running := in.Status == "Running" || in.Status == "Frozen"
		if running != (in.State != nil && in.State.Pid > 0 && processAlive(int(in.State.Pid))) {
			t.Errorf("yaml: %s status %s but state %+v", in.Name, in.Status, in.State)
		}
	}

	// Filters: an exact name, a key=value, none matching.
	if got := parseCSV(t, d.must("list", "--format", "csv", "ls-run")); len(got) != 1 || got[0][0] != "ls-run" {
		t.Errorf("list ls-run: %v", got)
	}
	if got := parseCSV(t, d.must("list", "--format", "csv", "ls-", "status=stopped")); len(got) != 1 || got[0][0] != "ls-stop" {
		t.Errorf("list ls- status=stopped: %v", got)
	}
	if out := d.must("list", "--format", "csv", "no-such-prefix"); out != "" {
		t.Errorf("list no-such-prefix: %q", out)
	}
	if out := strings.TrimSpace(d.must("list", "--format", "json", "no-such-prefix")); out != "[]" {
		t.Errorf("list --format json no-such-prefix: %q", out)
	}
	d.mustFailUsage([]string{"list", "--format", "xml"}, "xml")
}

func cliConsole(d *daemon) {
	t := d.t
	d.must("launch", "sleeper", "con1")
	waitFor(t, "the init's line in the console log", 10*time.Second, func() bool {
		return strings.Contains(d.must("console", "con1", "--show-log"), "hello-from-init")
	})
	d.mustFail([]string{"console", "nope", "--show-log"}, "not found")
	d.mustFail([]string{"console", "nope"}, "not found")
}

func cliErrors(d *daemon) {
	tests := []struct {
		name  string
		args  []string
		usage bool // a calling mistake: a usage line follows the error
		wants []string
	}{
		{"no daemon", []string{"--socket", "/nonexistent/hangar.socket", "list"}, false, []string{"/nonexistent/hangar.socket"}},
		{"info of a missing instance", []string{"info", "nope"}, false, []string{"nope", "not found"}},
		{"launch of a missing image", []string{"launch", "nope", "x"}, false, []string{"image", "nope", "not found"}},
		{"stop of a missing instance", []string{"stop", "nope"}, false, []string{"nope", "not found"}},
		{"config of a missing instance", []string{"config", "set", "nope", "user.a=1"}, false, []string{"nope", "not found"}},
		{"unknown command", []string{"lanuch", "busybox"}, true, []string{"lanuch", "launch"}},
		{"unknown flag", []string{"list", "--no-such-flag"}, true, []string{"no-such-flag"}},
		{"missing argument", []string{"info"}, true, []string{"argument"}},
	}
	for _, tt := range tests {
		d.t.Run(tt.name, func(t *testing.T) {
			d := d.on(t)
			if tt.usage {
				d.mustFailUsage(tt.args, tt.wants...)
			} else {
				d.mustFail(tt.args, tt.wants...)
			}
		})
	}
	// A failed launch leaves nothing behind.
	if slices.Contains(d.instanceNames(), "x") {
		d.t.Error("instance x exists after launch of a missing image")
	}
}

func cliEphemeral(d *daemon) {
	t := d.t
	d.must("launch", "busybox", "e1", "--ephemeral")
	if row := csvRow(t, d.must("list", "--format", "csv", "e1"), "e1"); row[1] != "RUNNING" || row[4] != "CONTAINER (EPHEMERAL)" {
		t.Errorf("list e1: %v", row)
	}
	pid := d.pid("e1")
	d.must("stop", "e1")
	if slices.Contains(d.instanceNames(), "e1") {
		t.Fatal("ephemeral e1 still listed after stop")
	}
	if processAlive(pid) {
		t.Errorf("e1's PID 1 (%d) alive after stop", pid)
	}
	d.mustFail([]string{"info", "e1"}, "not found")
	if entries, _ := os.ReadDir(filepath.Join(d.dir, "containers")); slices.ContainsFunc(entries, func(e os.DirEntry) bool { return e.Name() == "e1" }) {
		t.Error("e1's directory left after it was deleted")
	}

	// delete --force of a running ephemeral instance works too.
	d.must("launch", "busybox", "e2", "--ephemeral")
	d.must("delete", "e2", "--force")
	if slices.Contains(d.instanceNames(), "e2") {
		t.Fatal("e2 still listed after delete --force")
	}
}

// TestCLIRenameRunning renames a running instance (hangar allows it: the
// runtime identity does not change with the name), then checks the new name
// reaches the same container, also after hangard is killed and restarted.
func TestCLIRenameRunning(t *testing.T) {
	requireE2E(t)
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "sleeper", "rn1")
	pid := d.pid("rn1")
	d.must("rename", "rn1", "rn2")
	names := d.instanceNames()
	if slices.Contains(names, "rn1") || !slices.Contains(names, "rn2") {
		t.Fatalf("after rename: %v", names)
	}
	if in := d.instance("rn2"); in.Status != "Running" || d.pid("rn2") != pid || !processAlive(pid) {
		t.Fatalf("rn2 after rename: status %s, pid %d (was %d)", in.Status, d.pid("rn2"), pid)
	}
	d.mustFail([]string{"info", "rn1"}, "not found")
	if log := d.must("console", "rn2", "--show-log"); !strings.Contains(log, "hello-from-init") {
		t.Errorf("console log under the new name: %q", log)
	}
	d.must("init", "busybox", "rn-taken")
	d.mustFail([]string{"rename", "rn2", "rn-taken"}, "rn-taken")
	d.must("config", "set", "rn2", "user.renamed=yes")

	d.kill9()
	d = &daemon{t: t, dir: d.dir, socket: d.socket, netns: d.netns}
	d.start()
	if got := d.pid("rn2"); got != pid {
		t.Fatalf("after the daemon restart rn2 has pid %d, want %d (reattached)", got, pid)
	}
	if got := d.configGet("rn2", "user.renamed"); got != "yes" {
		t.Errorf("config of the renamed instance after restart: %q", got)
	}

	// PID 1 ignores the stop signal: only --force ends it at once.
	d.must("stop", "rn2", "--force")
	if processAlive(pid) || d.instance("rn2").Status != "Stopped" {
		t.Fatal("rn2 not stopped by its new name")
	}
	d.must("delete", "rn2", "rn-taken")
	if names := d.instanceNames(); len(names) != 0 {
		t.Fatalf("instances left after delete: %v", names)
	}
}
