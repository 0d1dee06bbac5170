package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/hangar-dev/hangar/api"
)

// lxcTimeout bounds every lxc call: a request hangard leaves unanswered
// fails the test instead of stalling it.
const lxcTimeout = 30 * time.Second

// lxcCmd is the real lxc against this daemon, with a config directory of
// the daemon's own so the host's lxc setup is neither read nor changed.
func (d *daemon) lxcCmd(ctx context.Context, args ...string) *exec.Cmd {
	// lxc writes config.yml (lxc project switch, remote add) into an
	// existing directory only.
	if err := os.MkdirAll(d.dir+"/lxc-conf", 0o700); err != nil {
		d.t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "lxc", args...)
	cmd.Env = append(os.Environ(), "LXD_SOCKET="+d.socket, "LXD_CONF="+d.dir+"/lxc-conf")
	cmd.WaitDelay = time.Second
	return cmd
}

// lxcStdin runs lxc with stdin read from input (nil: empty). lxc's edit
// commands read the new YAML from a stdin that is not a terminal.
func (d *daemon) lxcStdin(input io.Reader, args ...string) (stdout, stderr string, code int) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), lxcTimeout)
	defer cancel()
	cmd := d.lxcCmd(ctx, args...)
	cmd.Stdin = input
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		d.t.Fatalf("lxc %s: no answer after %s (hangs)\nstdout: %s\nstderr: %s", strings.Join(args, " "), lxcTimeout, o.String(), e.String())
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		d.t.Fatalf("run lxc %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// mustLXCFail runs lxc and expects it to fail as LXD's client does with a
// server's error: exit 1 and one line "Error: ..." holding every one of
// wants.
func (d *daemon) mustLXCFail(args []string, wants ...string) {
	d.t.Helper()
	out, errOut, code := d.lxc(args...)
	line := strings.TrimSpace(errOut)
	// lxc start/stop/pause add a hint line to an operation's failure, as
	// they do against LXD, whose state errors also come from the operation.
	if i := strings.Index(line, "\nTry `lxc info --show-log"); i >= 0 {
		line = line[:i]
	}
	// lxc launch tells first that the new instance has no network.
	if i := strings.LastIndex(line, "\nError: "); i >= 0 {
		line = line[i+1:]
	}
	if code != 1 || !strings.HasPrefix(line, "Error: ") || strings.Contains(line, "\n") {
		d.t.Errorf("lxc %s: exit %d, stderr %q (stdout %q), want exit 1 and one error line", strings.Join(args, " "), code, errOut, out)
	}
	for _, w := range wants {
		if !strings.Contains(line, w) {
			d.t.Errorf("lxc %s: error %q does not mention %q", strings.Join(args, " "), line, w)
		}
	}
}

// TestLXC drives one hangard through the real lxc client (LXD 5.0), flow
// by flow, the way a user of LXD would, and checks the daemon's state
// through the SDK. The subtests run in order and share instances: c1
// (busybox init), c2 (an init that prints a line, for the console log)
// and c3 (created, never started). lxc file push/pull (with -r and -p) is
// covered by TestFiles, lxc image import/export by TestLXDImages.
func TestLXC(t *testing.T) {
	requireLXC(t)
	d := startDaemon(t, "")
	d.must("image", "import", imageTarball, "--alias", "busybox", "--os", "busybox")
	d.must("image", "import", sleeperTarball, "--alias", "sleeper", "--os", "busybox")
	c := d.client()
	ctx := context.Background()
	status := func(t *testing.T, name string) string {
		t.Helper()
		in, _, err := c.GetInstance(ctx, name)
		if err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		return in.Status
	}

	t.Run("launch and init", func(t *testing.T) {
		d := d.on(t)
		if out := d.mustLXC("launch", "busybox", "c1"); out != "Creating c1\nStarting c1\n" {
			t.Errorf("lxc launch printed %q", out)
		}
		d.mustLXC("launch", "sleeper", "c2", "-c", "user.note=from lxc")
		if out := d.mustLXC("init", "busybox", "c3"); out != "Creating c3\n" {
			t.Errorf("lxc init printed %q", out)
		}
		for name, want := range map[string]string{"c1": "Running", "c2": "Running", "c3": "Stopped"} {
			if got := status(t, name); got != want {
				t.Errorf("%s is %s, want %s", name, got, want)
			}
		}
		if in, _, _ := c.GetInstance(ctx, "c2"); in.Config["user.note"] != "from lxc" {
			t.Errorf("c2's config %v lacks user.note", in.Config)
		}
	})

	t.Run("list", func(t *testing.T) {
		d := d.on(t)
		rows := tableRows(d.mustLXC("list"))
		if len(rows) != 4 || !slices.Equal(rows[0], []string{"NAME", "STATE", "IPV4", "IPV6", "TYPE", "SNAPSHOTS"}) {
			t.Fatalf("lxc list rows %q", rows)
		}
		// Running ones show their default-profile NIC's addresses.
		ip1 := d.addressOf("c1", "eth0", "inet")
		if !slices.Equal(rows[1][:2], []string{"c1", "RUNNING"}) || rows[1][2] != ip1+" (eth0)" || !strings.HasSuffix(rows[1][3], " (eth0)") ||
			!slices.Equal(rows[1][4:], []string{"CONTAINER", "0"}) || !slices.Equal(rows[3], []string{"c3", "STOPPED", "", "", "CONTAINER", "0"}) {
			t.Errorf("lxc list rows %q", rows)
		}
		if got := d.mustLXC("list", "-f", "csv", "-c", "ns4"); got != "c1,RUNNING,"+ip1+" (eth0)\nc2,RUNNING,"+d.addressOf("c2", "eth0", "inet")+" (eth0)\nc3,STOPPED,\n" {
			t.Errorf("lxc list -f csv:\n%s", got)
		}
		var full []api.InstanceFull
		if err := json.Unmarshal([]byte(d.mustLXC("list", "-f", "json")), &full); err != nil {
			t.Fatalf("lxc list -f json: %v", err)
		}
		if len(full) != 3 || full[0].Name != "c1" || full[0].State == nil || full[0].State.Pid <= 0 || full[2].Status != "Stopped" {
			t.Errorf("lxc list -f json: %+v", full)
		}
		// lxc passes a key=value filter to the server as typed.
		if got := d.mustLXC("list", "status=running", "-c", "n", "-f", "csv"); got != "c1\nc2\n" {
			t.Errorf("lxc list status=running: %q", got)
		}
	})

	t.Run("info", func(t *testing.T) {
		d := d.on(t)
		out, errOut, code := d.lxc("info", "c1")
		if code != 0 || errOut != "" {
			t.Fatalf("lxc info c1: exit %d, stderr %q", code, errOut)
		}
		for _, want := range []string{"Name: c1\n", "Status: RUNNING\n", "Type: container\n", "\nResources:\n", "  Processes: ", "CPU usage (in seconds): ", "Memory (current): "} {
			if !strings.Contains(out, want) {
				t.Errorf("lxc info c1 lacks %q:\n%s", want, out)
			}
		}
		if out := d.mustLXC("info", "c3"); !strings.Contains(out, "Status: STOPPED\n") || strings.Contains(out, "Resources:") {
			t.Errorf("lxc info c3:\n%s", out)
		}
		if out := d.mustLXC("info"); !strings.Contains(out, "api_version: \"1.0\"") {
			t.Errorf("lxc info (server):\n%s", out)
		}
	})

	t.Run("exec", func(t *testing.T) {
		d := d.on(t)
		before, err := c.GetOperationIDs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, code := d.lxc("exec", "c1", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3")
		if out != "hi\n" || errOut != "oops\n" || code != 3 {
			t.Errorf("lxc exec: exit %d, stdout %q, stderr %q; want 3, \"hi\\n\", \"oops\\n\"", code, out, errOut)
		}
		// lxc operation show of the finished exec: its metadata carries
		// the exit code.
		after, err := c.GetOperationIDs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var execOp string
		for _, id := range after {
			if !slices.Contains(before, id) {
				execOp = id
			}
		}
		var op api.Operation
		if err := yaml.Unmarshal([]byte(d.mustLXC("operation", "show", execOp)), &op); err != nil {
			t.Fatal(err)
		}
		if op.ID != execOp || op.Class != "websocket" || op.Status != "Success" || op.Metadata["return"] != 3 {
			t.Errorf("lxc operation show %s: %+v", execOp, op)
		}
		if row := csvRow(t, d.mustLXC("operation", "list", "-f", "csv"), execOp); !slices.Equal(row[1:5], []string{"WEBSOCKET", "Executing command", "SUCCESS", "NO"}) {
			t.Errorf("lxc operation list row %q", row)
		}

		if out, errOut, code := d.lxcStdin(strings.NewReader("data\n"), "exec", "c1", "--", "cat"); out != "data\n" || code != 0 {
			t.Errorf("echo data | lxc exec c1 -- cat: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if got := d.mustLXC("exec", "c1", "--env", "FOO=bar", "--cwd", "/tmp", "--", "sh", "-c", "echo $FOO; pwd"); got != "bar\n/tmp\n" {
			t.Errorf("lxc exec --env --cwd: %q", got)
		}
		if got := d.lxcTerminal("exec", "-t", "c1", "--", "tty"); got != "/dev/pts/0\r\n" {
			t.Errorf("lxc exec -t c1 -- tty: %q", got)
		}
		// The command's terminal has the size of lxc's (openPTY: 24x80).
		if got := d.lxcTerminal("exec", "-t", "c1", "--", "stty", "size"); got != "24 80\r\n" {
			t.Errorf("lxc exec -t c1 -- stty size: %q", got)
		}
		if _, _, code := d.lxc("exec", "c1", "--", "/no/such/command"); code != 127 {
			t.Errorf("lxc exec of a missing command: exit %d, want 127", code)
		}
		d.mustLXCFail([]string{"exec", "c3", "--", "true"}, `"c3" is not running`)
	})

	t.Run("config", func(t *testing.T) {
		d := d.on(t)
		d.mustLXC("config", "set", "c1", "user.a", "one two")
		d.mustLXC("config", "set", "c1", "user.b=2", "limits.memory=256MiB")
		if got := d.mustLXC("config", "get", "c1", "user.a"); got != "one two\n" {
			t.Errorf("lxc config get user.a: %q", got)
		}
		var put api.InstancePut
		shown := d.mustLXC("config", "show", "c1")
		if err := yaml.Unmarshal([]byte(shown), &put); err != nil {
			t.Fatalf("lxc config show: %v\n%s", err, shown)
		}
		if put.Config["user.b"] != "2" || put.Config["limits.memory"] != "256MiB" || !slices.Equal(put.Profiles, []string{"default"}) {
			t.Errorf("lxc config show:\n%s", shown)
		}
		// lxc config edit reads the new YAML from a stdin that is not a
		// terminal.
		edited := strings.Replace(shown, "user.b: \"2\"", "user.b: \"3\"\n  user.c: new", 1)
		if _, errOut, code := d.lxcStdin(strings.NewReader(edited), "config", "edit", "c1"); code != 0 {
			t.Fatalf("lxc config edit: exit %d: %s", code, errOut)
		}
		in, _, err := c.GetInstance(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if in.Config["user.b"] != "3" || in.Config["user.c"] != "new" || in.Config["user.a"] != "one two" {
			t.Errorf("after lxc config edit: %v", in.Config)
		}
		// A bad edit is refused whole, naming the key.
		bad := strings.Replace(shown, "user.b: \"2\"", "limits.memory.swap: maybe", 1)
		if _, errOut, code := d.lxcStdin(strings.NewReader(bad), "config", "edit", "c1"); code != 1 || !strings.Contains(errOut, "limits.memory.swap") {
			t.Errorf("lxc config edit with a bad key: exit %d, stderr %q", code, errOut)
		}
		if in, _, _ := c.GetInstance(ctx, "c1"); in.Config["user.b"] != "3" {
			t.Errorf("a refused edit changed the config: %v", in.Config)
		}
		d.mustLXC("config", "unset", "c1", "user.c")
		if got := d.mustLXC("config", "get", "c1", "user.c"); got != "\n" {
			t.Errorf("unset key reads %q", got)
		}
	})

	t.Run("profiles", func(t *testing.T) {
		d := d.on(t)
		if row := csvRow(t, d.mustLXC("profile", "list", "-f", "csv"), "default"); row[2] != "3" {
			t.Errorf("lxc profile list: default row %q, want used by 3", row)
		}
		d.mustLXC("profile", "create", "p1")
		edit := "description: from lxc\nconfig:\n  user.role: web\n  limits.cpu: \"1\"\ndevices: {}\n"
		if _, errOut, code := d.lxcStdin(strings.NewReader(edit), "profile", "edit", "p1"); code != 0 {
			t.Fatalf("lxc profile edit: exit %d: %s", code, errOut)
		}
		var p api.Profile
		if err := yaml.Unmarshal([]byte(d.mustLXC("profile", "show", "p1")), &p); err != nil {
			t.Fatal(err)
		}
		if p.Description != "from lxc" || p.Config["user.role"] != "web" || len(p.UsedBy) != 0 {
			t.Errorf("lxc profile show p1: %+v", p)
		}
		d.mustLXC("profile", "assign", "c1", "default,p1")
		in, _, err := c.GetInstance(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(in.Profiles, []string{"default", "p1"}) || in.ExpandedConfig["user.role"] != "web" {
			t.Errorf("after lxc profile assign: profiles %v, expanded config %v", in.Profiles, in.ExpandedConfig)
		}
		if got := d.mustLXC("config", "get", "c1", "user.role", "--expanded"); got != "web\n" {
			t.Errorf("lxc config get --expanded: %q", got)
		}
		d.mustLXCFail([]string{"profile", "delete", "p1"}, "p1")
	})

	t.Run("lifecycle and monitor", func(t *testing.T) {
		d := d.on(t)
		mon := d.startLXCMonitor(t, "c1")
		d.mustLXC("pause", "c1")
		if got := status(t, "c1"); got != "Frozen" {
			t.Errorf("after lxc pause: %s", got)
		}
		d.mustLXC("start", "c1") // lxc resumes a frozen instance
		pid := d.pid("c1")
		d.mustLXC("restart", "c1")
		if got := d.pid("c1"); got == pid || status(t, "c1") != "Running" {
			t.Errorf("after lxc restart: pid %d (was %d), %s", got, pid, status(t, "c1"))
		}
		d.mustLXC("stop", "c1", "--force")
		if got := status(t, "c1"); got != "Stopped" {
			t.Errorf("after lxc stop: %s", got)
		}
		d.mustLXCFail([]string{"stop", "c1"}, `"c1" is already stopped`)
		d.mustLXCFail([]string{"pause", "c1"}, `"c1" is not running`)
		d.mustLXC("start", "c1")
		d.mustLXCFail([]string{"start", "c1"}, `"c1" is already running`)
		mon.expect(t, "instance-paused", "instance-resumed", "instance-stopped", "instance-started", "instance-restarted", "instance-stopped", "instance-started")
	})

	t.Run("console log", func(t *testing.T) {
		d := d.on(t)
		if out := d.mustLXC("console", "c2", "--show-log"); !strings.Contains(out, "Console log:") || !strings.Contains(out, "hello-from-init") {
			t.Errorf("lxc console --show-log:\n%s", out)
		}
	})

	t.Run("images", func(t *testing.T) {
		d := d.on(t)
		alias, _, err := c.GetImageAlias(ctx, "busybox")
		if err != nil {
			t.Fatal(err)
		}
		fp := alias.Target
		if row := csvRow(t, d.mustLXC("image", "list", "-f", "csv"), "busybox"); row[1] != fp[:12] || row[5] != "CONTAINER" {
			t.Errorf("lxc image list row %q", row)
		}
		if out := d.mustLXC("image", "list", "public=true", "-f", "csv"); out != "" {
			t.Errorf("lxc image list public=true lists private images:\n%s", out)
		}
		if out := d.mustLXC("image", "info", "busybox"); !strings.Contains(out, "Fingerprint: "+fp+"\n") || !strings.Contains(out, "    os: busybox\n") {
			t.Errorf("lxc image info:\n%s", out)
		}
		d.mustLXC("image", "alias", "create", "bb", fp[:12])
		d.mustLXC("image", "alias", "rename", "bb", "bb2")
		if row := csvRow(t, d.mustLXC("image", "alias", "list", "-f", "csv"), "bb2"); row[1] != fp[:12] {
			t.Errorf("lxc image alias list row %q", row)
		}
		if a, _, err := c.GetImageAlias(ctx, "bb2"); err != nil || a.Target != fp {
			t.Errorf("alias bb2: %+v, %v", a, err)
		}
		d.mustLXC("image", "alias", "delete", "bb2")
		if _, _, err := c.GetImageAlias(ctx, "bb2"); err == nil {
			t.Error("alias bb2 still there")
		}
	})

	t.Run("query", func(t *testing.T) {
		d := d.on(t)
		var server api.Server
		if err := json.Unmarshal([]byte(d.mustLXC("query", "/1.0")), &server); err != nil || server.APIVersion != "1.0" {
			t.Errorf("lxc query /1.0: %+v, %v", server, err)
		}
		var urls []string
		if err := json.Unmarshal([]byte(d.mustLXC("query", "/1.0/instances")), &urls); err != nil || len(urls) != 3 || urls[0] != "/1.0/instances/c1" {
			t.Errorf("lxc query /1.0/instances: %q, %v", urls, err)
		}
	})

	// What later work brings (projects) gets LXD's kind of clear error,
	// never a crash or a hang, and leaves nothing behind; snapshots,
	// restore, copy and publish work (snapshot_test.go, copy_test.go,
	// publish's tests). A restore of a missing snapshot is a 404.
	t.Run("not yet", func(t *testing.T) {
		d := d.on(t)
		for _, tc := range []struct {
			args  []string
			wants []string
		}{
			{[]string{"project", "show", "nope"}, []string{`project "nope" not found`}},
			{[]string{"restore", "c1", "snap0"}, []string{`"snap0"`, "not found"}},
			{[]string{"launch", "busybox", "s1", "-s", "nopool"}, []string{`"nopool"`}},
			{[]string{"launch", "busybox", "n1", "-n", "lxdbr0"}, []string{`network "lxdbr0"`}},
		} {
			d.mustLXCFail(tc.args, tc.wants...)
		}
		if names, err := c.GetInstanceNames(ctx); err != nil || !slices.Equal(names, []string{"c1", "c2", "c3"}) {
			t.Errorf("instances after the refusals: %v, %v", names, err)
		}
	})

	t.Run("rename and delete", func(t *testing.T) {
		d := d.on(t)
		d.mustLXC("rename", "c3", "c4")
		if _, _, err := c.GetInstance(ctx, "c3"); err == nil {
			t.Error("c3 still there after lxc rename")
		}
		if got := status(t, "c4"); got != "Stopped" {
			t.Errorf("c4 is %s", got)
		}
		d.mustLXCFail([]string{"delete", "c2"}, "stop it first")
		d.mustLXC("delete", "-f", "c2")
		d.mustLXC("delete", "c4")
		if names, err := c.GetInstanceNames(ctx); err != nil || !slices.Equal(names, []string{"c1"}) {
			t.Errorf("after lxc delete: %v, %v", names, err)
		}
	})
}

// lxcTerminal runs lxc with a new pseudo-terminal as its controlling
// terminal and stdin, stdout and stderr, as from an interactive shell, and
// returns what it wrote there.
func (d *daemon) lxcTerminal(args ...string) string {
	d.t.Helper()
	master, slave, err := openPTY()
	if err != nil {
		d.t.Fatalf("open a pty: %v", err)
	}
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), lxcTimeout)
	defer cancel()
	cmd := d.lxcCmd(ctx, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		slave.Close()
		d.t.Fatal(err)
	}
	slave.Close()
	// Read until the last holder of the other side is gone (EIO).
	var out bytes.Buffer
	read := make(chan struct{})
	go func() { _, _ = io.Copy(&out, master); close(read) }()
	err = cmd.Wait()
	if ctx.Err() != nil {
		d.t.Fatalf("lxc %s: no answer after %s (hangs)", strings.Join(args, " "), lxcTimeout)
	}
	if err != nil {
		d.t.Errorf("lxc %s: %v", strings.Join(args, " "), err)
	}
	select {
	case <-read:
	case <-time.After(5 * time.Second):
		d.t.Fatalf("lxc %s: terminal still open 5s after it exited", strings.Join(args, " "))
	}
	return out.String()
}

func openPTY() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(master.Fd())
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err == nil {
		err = unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0)
	}
	if err == nil {
		slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	}
	if err == nil {
		err = unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 24, Col: 80})
	}
	if err != nil {
		master.Close()
		if slave != nil {
			slave.Close()
		}
		return nil, nil, err
	}
	return master, slave, nil
}

// lxcMonitor is a running `lxc monitor --type=lifecycle`.
type lxcMonitor struct {
	cmd    *exec.Cmd
	events chan api.Event
	source string
}

// startLXCMonitor starts lxc monitor and returns once it receives events:
// until then it pokes instance name's config, each poke an event.
func (d *daemon) startLXCMonitor(t *testing.T, name string) *lxcMonitor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m := &lxcMonitor{cmd: d.lxcCmd(ctx, "monitor", "--type=lifecycle", "--format=json"), events: make(chan api.Event, 100), source: "/1.0/instances/" + name}
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut bytes.Buffer
	m.cmd.Stderr = &errOut
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel() // kills this lxc monitor, and only it
		_ = m.cmd.Wait()
		if t.Failed() {
			t.Logf("lxc monitor stderr: %s", errOut.String())
		}
	})
	go func() {
		defer close(m.events)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var ev api.Event
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				m.events <- ev
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		d.mustLXC("config", "set", name, fmt.Sprintf("user.monitor-poke=%d", i))
		if _, ok := m.next(t, 200*time.Millisecond); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lxc monitor saw no event in 10s: %s", errOut.String())
		}
	}
	// Drop the pokes' events still on the way.
	for {
		if _, ok := m.next(t, 100*time.Millisecond); !ok {
			return m
		}
	}
}

// next returns the action of the next lifecycle event about the monitor's
// instance, or false when none comes within wait.
func (m *lxcMonitor) next(t *testing.T, wait time.Duration) (string, bool) {
	ev, ok := m.nextEvent(t, wait)
	if !ok {
		return "", false
	}
	return ev.action, true
}

type monitorEvent struct {
	action string
	at     time.Time
}

// nextEvent is next with the event's timestamp.
func (m *lxcMonitor) nextEvent(t *testing.T, wait time.Duration) (monitorEvent, bool) {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-m.events:
			if !ok {
				t.Fatal("lxc monitor exited")
			}
			var md api.EventLifecycle
			if err := json.Unmarshal(ev.Metadata, &md); err != nil {
				t.Fatalf("lifecycle event metadata %s: %v", ev.Metadata, err)
			}
			if ev.Type != "lifecycle" {
				t.Errorf("lxc monitor --type=lifecycle showed a %q event", ev.Type)
			}
			if md.Source == m.source {
				return monitorEvent{md.Action, ev.Timestamp}, true
			}
		case <-timeout:
			return monitorEvent{}, false
		}
	}
}

// expect checks that the next events about the instance are actions, in
// order. Config updates are skipped: a late one is a startup poke. lxc
// monitor hands each event to its printer in a goroutine of its own, so
// events published microseconds apart (a restart's started and restarted)
// may be printed out of order: they are put back in order by their
// timestamps, which hangard takes in sequence order.
func (m *lxcMonitor) expect(t *testing.T, actions ...string) {
	t.Helper()
	var evs []monitorEvent
	for len(evs) < len(actions) {
		ev, ok := m.nextEvent(t, 5*time.Second)
		if !ok {
			break
		}
		if ev.action != "instance-updated" {
			evs = append(evs, ev)
		}
	}
	slices.SortStableFunc(evs, func(a, b monitorEvent) int { return a.at.Compare(b.at) })
	var got []string
	for _, ev := range evs {
		got = append(got, ev.action)
	}
	if !slices.Equal(got, actions) {
		t.Errorf("lxc monitor showed %q, want %q", got, actions)
	}
}
