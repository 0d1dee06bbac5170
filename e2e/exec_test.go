package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// TestExec runs commands in a real container through the hangar CLI and
// the SDK: streams, exit codes, environment, terminals, recorded output,
// and the console.
func TestExec(t *testing.T) {
	requireE2E(t)
	d := startDaemon(t, "")
	d.importImages()
	d.must("launch", "busybox", "x1", "-c", "environment.MODE=prod")
	c := d.client()
	ctx := context.Background()

	t.Run("streams and exit code", func(t *testing.T) {
		d := d.on(t)
		out, errOut, code := d.hangar("exec", "x1", "--", "sh", "-c", "echo hi; echo err >&2; exit 3")
		if out != "hi\n" || errOut != "err\n" || code != 3 {
			t.Errorf("stdout %q stderr %q code %d; want hi, err, 3", out, errOut, code)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		cmd := exec.Command(filepath.Join(binDir, "hangar"), "--socket", d.socket, "exec", "x1", "--", "cat")
		cmd.Stdin = strings.NewReader("data\n")
		out, err := cmd.Output()
		if err != nil || string(out) != "data\n" {
			t.Errorf("cat: %q, %v", out, err)
		}
	})

	t.Run("environment, cwd and user", func(t *testing.T) {
		d := d.on(t)
		out := d.must("exec", "x1", "--env", "EXTRA=1", "--cwd", "/tmp", "--user", "1000", "--group", "1000",
			"--", "sh", "-c", "echo $MODE $EXTRA $LANG; pwd; id -u; id -g")
		if want := "prod 1 C.UTF-8\n/tmp\n1000\n1000\n"; out != want {
			t.Errorf("got %q, want %q", out, want)
		}
		// Root's default directory is its home, as with LXD.
		if out := d.must("exec", "x1", "--", "pwd"); out != "/root\n" {
			t.Errorf("default cwd %q, want /root", out)
		}
	})

	t.Run("files meet exec", func(t *testing.T) {
		// The image's init mounts a tmpfs on /tmp in the container: a file
		// pushed there is where the container's processes look, and what
		// they write there can be pulled.
		d := d.on(t)
		waitFor(t, "the tmpfs on /tmp", 10*time.Second, func() bool {
			out, _, _ := d.hangar("exec", "x1", "--", "sh", "-c", "grep ' /tmp ' /proc/mounts")
			return strings.Contains(out, "tmpfs")
		})
		src := filepath.Join(t.TempDir(), "pushed")
		if err := os.WriteFile(src, []byte("pushed\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		d.must("file", "push", src, "x1/tmp/pushed")
		if out := d.must("exec", "x1", "--", "cat", "/tmp/pushed"); out != "pushed\n" {
			t.Errorf("exec sees %q", out)
		}
		d.must("exec", "x1", "--", "sh", "-c", "echo made-inside > /tmp/inside")
		dst := filepath.Join(t.TempDir(), "pulled")
		d.must("file", "pull", "x1/tmp/inside", dst)
		if b, _ := os.ReadFile(dst); string(b) != "made-inside\n" {
			t.Errorf("pulled %q", b)
		}
		d.must("file", "delete", "x1/tmp/pushed")
		if out := d.must("exec", "x1", "--", "ls", "/tmp"); strings.Contains(out, "pushed") {
			t.Errorf("deleted file still there: %q", out)
		}
	})

	t.Run("terminal", func(t *testing.T) {
		var out bytes.Buffer
		e, err := c.ExecInstance(ctx, "x1", api.InstanceExecPost{Command: []string{"sh", "-c", "tty; stty size"}, Interactive: true, Width: 120, Height: 40},
			client.ExecStreams{Stdout: &out})
		if err != nil {
			t.Fatal(err)
		}
		code, err := e.Wait(ctx)
		got := strings.ReplaceAll(out.String(), "\r\n", "\n")
		if err != nil || code != 0 || got != "/dev/pts/0\n40 120\n" {
			t.Errorf("code %d err %v output %q; want /dev/pts/0 and 40 120", code, err, got)
		}
	})

	t.Run("recorded output and retained exit code", func(t *testing.T) {
		resp, _, err := c.Query(ctx, "POST", "/1.0/instances/x1/exec", api.InstanceExecPost{
			Command: []string{"sh", "-c", "echo recorded; echo oops >&2; exit 4"}, RecordOutput: true}, "")
		if err != nil {
			t.Fatal(err)
		}
		var op api.Operation
		json.Unmarshal(resp.Metadata, &op)
		done, err := c.WaitOperation(ctx, op.ID, 30)
		if err != nil {
			t.Fatal(err)
		}
		// The exit code stays readable after the command ended.
		got, _, err := c.Query(ctx, "GET", "/1.0/operations/"+op.ID, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		var later api.Operation
		json.Unmarshal(got.Metadata, &later)
		if done.Metadata["return"] != float64(4) || later.Metadata["return"] != float64(4) {
			t.Fatalf("return %v / %v, want 4", done.Metadata["return"], later.Metadata["return"])
		}
		output, _ := later.Metadata["output"].(map[string]any)
		for fd, want := range map[string]string{"1": "recorded\n", "2": "oops\n"} {
			url, _ := output[fd].(string)
			if !strings.HasPrefix(url, "/1.0/instances/x1/logs/exec-output/") {
				t.Fatalf("output %s: %q", fd, url)
			}
			b, err := c.GetInstanceLogFile(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != want {
				t.Errorf("recorded %s = %q, want %q", fd, b, want)
			}
		}
	})

	t.Run("console", func(t *testing.T) {
		// PID 1 answers each line of its stdin on its stdout: the console
		// carries input in and output out.
		tarball := filepath.Join(t.TempDir(), "reader.tar.gz")
		if err := writeBusyboxTarball(tarball, "#!/bin/sh\necho ready\nwhile read l; do echo \"got $l\"; done\nexec sleep 2147483647\n"); err != nil {
			t.Fatal(err)
		}
		d := d.on(t)
		d.must("image", "import", tarball, "--alias", "reader")
		d.must("launch", "reader", "con2")
		waitFor(t, "init ready", 10*time.Second, func() bool { return strings.Contains(d.must("console", "con2", "--show-log"), "ready") })
		in, inW := io.Pipe()
		var out syncBuffer
		con, err := c.AttachConsole(ctx, "con2", api.InstanceConsolePost{}, in, &out)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(inW, "ping\n")
		waitFor(t, "the answer on the console", 10*time.Second, func() bool { return strings.Contains(out.String(), "got ping") })
		if strings.Contains(out.String(), "ready") {
			t.Errorf("attached console replayed old output: %q", out.String())
		}
		inW.Close()
		if err := con.Detach(ctx); err != nil {
			t.Errorf("detach: %v", err)
		}
		// The CLI attaches and detaches with Ctrl-a q.
		cmd := exec.Command(filepath.Join(binDir, "hangar"), "--socket", d.socket, "console", "con2")
		pin, _ := cmd.StdinPipe()
		var cliOut syncBuffer
		cmd.Stdout = &cliOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		io.WriteString(pin, "pong\n")
		waitFor(t, "the CLI's answer", 10*time.Second, func() bool { return strings.Contains(cliOut.String(), "got pong") })
		io.WriteString(pin, "\x01q")
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("hangar console after Ctrl-a q: %v", err)
			}
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("hangar console did not detach on Ctrl-a q")
		}
	})

	t.Run("bad input", func(t *testing.T) {
		d := d.on(t)
		d.must("init", "busybox", "stopped1")
		d.mustFail([]string{"exec", "stopped1", "--", "true"}, "not running")
		d.mustFail([]string{"exec", "nope", "--", "true"}, "not found")
		d.mustFail([]string{"exec", "x1", "--cwd", "relative", "--", "true"}, "cwd")
		if _, errOut, code := d.hangar("exec", "x1", "--", "no-such-command"); code != 127 || !strings.Contains(errOut, `command "no-such-command" not found`) {
			t.Errorf("missing command: code %d stderr %q, want 127 and a clear error", code, errOut)
		}
	})
}

// TestExecInheritedDescriptor starts hangard with descriptor 7 open on a
// host file, as `hangard 7>file` from a shell does, and checks that no
// process exec'd in a container, privileged or not, with a terminal or
// without, can write to it.
func TestExecInheritedDescriptor(t *testing.T) {
	requireE2E(t)
	host := filepath.Join(t.TempDir(), "host-file")
	f, err := os.OpenFile(host, os.O_WRONLY|os.O_CREATE, 0o666)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Descriptors 3 to 6 closed, 7 the host file.
	d := startDaemonWithFiles(t, []*os.File{nil, nil, nil, nil, f})
	d.importImages()
	d.must("launch", "busybox", "c1")
	d.must("launch", "busybox", "c2", "-c", "security.privileged=true")
	for _, name := range []string{"c1", "c2"} {
		for _, tty := range []string{"-T", "-t"} {
			out, errOut, code := d.hangar("exec", name, tty, "--", "sh", "-c", "echo x >&7 && echo wrote")
			if code == 0 || strings.Contains(out, "wrote") {
				t.Errorf("exec %s %s: wrote to the daemon's descriptor 7 (code %d, stdout %q, stderr %q)", name, tty, code, out, errOut)
			}
		}
	}
	if b, err := os.ReadFile(host); err != nil || len(b) != 0 {
		t.Errorf("host file after the execs: %q, %v; want empty", b, err)
	}
}
