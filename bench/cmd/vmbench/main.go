// Command vmbench measures virtual machines through a running hangard (see
// bench/vm.sh, which builds and starts one): create+start of an image as a
// VM to "agent ready" beside a bare QEMU boot of the same kernel,
// initramfs, disk and QEMU flags; restore from standby; pause and resume
// through the API.
//
// The bare boot is the daemon's own QEMU command line, read from
// /proc/PID/cmdline of a VM it started, re-run by hand on copies of that
// VM's initramfs and a fresh overlay of the same base disk, with "ready"
// being the agent's first answer on its virtio-serial socket: the floor
// the daemon's work (disk overlay, initramfs, cgroup, QMP, bookkeeping)
// is added to.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

func main() {
	socket := flag.String("socket", "", "hangard's socket")
	dataDir := flag.String("data-dir", "", "hangard's data directory")
	image := flag.String("image", "vmbench", "image alias to boot")
	runs := flag.Int("runs", 3, "runs of each measurement")
	mem := flag.String("memory", "256MiB", "limits.memory of the VMs")
	flag.Parse()
	if err := run(*socket, *dataDir, *image, *mem, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "vmbench:", err)
		os.Exit(1)
	}
}

type series []time.Duration

func (s series) median() time.Duration {
	c := append(series(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	return c[len(c)/2]
}

func (s series) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = ms(d)
	}
	return fmt.Sprintf("median %s (runs: %s)", ms(s.median()), strings.Join(parts, ", "))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func run(socket, dataDir, image, mem string, runs int) error {
	ctx := context.Background()
	c, err := client.Connect(socket)
	if err != nil {
		return err
	}
	defer c.Close()
	state := func(name, action string, stateful bool) (time.Duration, error) {
		start := time.Now()
		op, err := c.UpdateInstanceState(ctx, name, api.InstanceStatePut{Action: action, Timeout: -1, Force: action == "stop" && !stateful, Stateful: stateful})
		if err == nil {
			err = op.Wait(ctx)
		}
		return time.Since(start), err
	}
	launch := func(name string) (time.Duration, error) {
		start := time.Now()
		op, err := c.CreateInstance(ctx, api.InstancesPost{
			Name: name, Type: api.InstanceTypeVM, Start: true,
			Source:      api.InstanceSource{Type: "image", Alias: image},
			InstancePut: api.InstancePut{Config: map[string]string{"limits.memory": mem, "limits.cpu": "1"}},
		})
		if err == nil {
			err = op.Wait(ctx)
		}
		return time.Since(start), err
	}
	remove := func(name string) {
		_, _ = state(name, "stop", false)
		if op, err := c.DeleteInstance(ctx, name); err == nil {
			_ = op.Wait(ctx)
		}
	}

	// Warm-up: builds the image's base disk and the shared initramfs.
	if d, err := launch("warm"); err != nil {
		return fmt.Errorf("warm-up launch: %w", err)
	} else {
		fmt.Printf("first launch (builds the base disk and initramfs): %s\n", ms(d))
	}
	cmdline, instDir, err := qemuCommand(ctx, c, dataDir, "warm")
	if err != nil {
		return err
	}
	remove("warm")

	var launches, bare, restores, pauses, resumes series
	for i := 0; i < runs; i++ {
		// Interleaved, so that load from elsewhere hits both alike.
		d, err := bareBoot(cmdline, instDir)
		if err != nil {
			return fmt.Errorf("bare boot: %w", err)
		}
		bare = append(bare, d)
		name := fmt.Sprintf("vm%d", i)
		if d, err = launch(name); err != nil {
			return fmt.Errorf("launch: %w", err)
		}
		launches = append(launches, d)
		for j := 0; j < 5; j++ {
			p, err := state(name, "freeze", false)
			if err != nil {
				return fmt.Errorf("pause: %w", err)
			}
			r, err := state(name, "unfreeze", false)
			if err != nil {
				return fmt.Errorf("resume: %w", err)
			}
			pauses, resumes = append(pauses, p), append(resumes, r)
		}
		if _, err := state(name, "stop", true); err != nil {
			return fmt.Errorf("standby: %w", err)
		}
		if d, err = state(name, "start", false); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		restores = append(restores, d)
		remove(name)
	}
	ratio := float64(launches.median()) / float64(bare.median())
	fmt.Printf("bare QEMU boot to agent ready:          %s\n", bare)
	fmt.Printf("hangard create+start to agent ready:    %s\n", launches)
	fmt.Printf("  ratio to bare boot:                   %.2fx (target <= 1.2x)\n", ratio)
	fmt.Printf("restore from standby to agent ready:    %s (target <= 1 s)\n", restores)
	fmt.Printf("pause through the API:                  %s (target <= 20 ms)\n", pauses)
	fmt.Printf("resume through the API:                 %s (target <= 20 ms)\n", resumes)
	return nil
}

// qemuCommand reads the QEMU command line of a running VM.
func qemuCommand(ctx context.Context, c *client.Client, dataDir, name string) ([]string, string, error) {
	st, err := c.GetInstanceState(ctx, name)
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.Pid))
	if err != nil {
		return nil, "", err
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	var dir string
	for _, a := range args {
		if p, ok := strings.CutPrefix(a, "unix:"); ok && strings.HasSuffix(p, "/qmp.sock,server=on,wait=off") {
			dir = filepath.Dir(p)
		}
	}
	if dir == "" || !strings.HasPrefix(dir, dataDir) {
		return nil, "", fmt.Errorf("no instance directory in %q", args)
	}
	// The initramfs and overlay go away with the instance: keep copies.
	keep := filepath.Join(dataDir, "vmbench-bare")
	if err := os.MkdirAll(keep, 0o700); err != nil {
		return nil, "", err
	}
	if err := exec.Command("cp", filepath.Join(dir, "initrd.img"), keep).Run(); err != nil {
		return nil, "", err
	}
	info, err := exec.Command("qemu-img", "info", "-U", "--output=json", filepath.Join(dir, "root.qcow2")).Output()
	if err != nil {
		return nil, "", err
	}
	var qi struct {
		Backing string `json:"full-backing-filename"`
	}
	if err := json.Unmarshal(info, &qi); err != nil {
		return nil, "", err
	}
	if err := os.WriteFile(filepath.Join(keep, "backing"), []byte(qi.Backing), 0o600); err != nil {
		return nil, "", err
	}
	for i, a := range args {
		args[i] = strings.ReplaceAll(a, dir, keep)
	}
	return args, keep, nil
}

// bareBoot runs QEMU with the daemon's command line on a fresh overlay and
// returns the time until the agent answers.
func bareBoot(cmdline []string, dir string) (time.Duration, error) {
	backing, err := os.ReadFile(filepath.Join(dir, "backing"))
	if err != nil {
		return 0, err
	}
	for _, f := range []string{"root.qcow2", "qmp.sock", "agent.sock", "console.log", "qemu.pid"} {
		_ = os.Remove(filepath.Join(dir, f))
	}
	start := time.Now()
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", string(backing), filepath.Join(dir, "root.qcow2")).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("qemu-img: %v: %s", err, out)
	}
	cmd := exec.Command(cmdline[0], cmdline[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	var conn net.Conn
	for {
		conn, err = net.Dial("unix", filepath.Join(dir, "agent.sock"))
		if err == nil {
			break
		}
		if time.Since(start) > time.Minute {
			return 0, err
		}
		time.Sleep(2 * time.Millisecond)
	}
	defer conn.Close()
	if err := vmagent.NewWriter(conn).Write(vmagent.MsgHello, 0, nil); err != nil {
		return 0, err
	}
	r := vmagent.NewReader(conn)
	for {
		f, err := r.Read()
		if err != nil {
			return 0, fmt.Errorf("agent: %w", err)
		}
		if f.Type == vmagent.MsgReady {
			return time.Since(start), nil
		}
	}
}
