// Command cmdtime times whole commands, start to exit, in interleaved
// rounds: every round runs each command once, in a fresh random order, so
// that other work on a shared machine weighs on all of them alike. It is
// what bench/cli.sh uses to set `hangar --version` beside a hello-world
// and `hangar exec` beside `lxc exec`.
//
//	go run ./bench/cmd/cmdtime -n 200 /tmp/hello --- bin/hangar --version --- bin/hangar exec c1 -- true
//
// Commands are separated by "---"; each runs with stdin and stdout on
// /dev/null and stderr inherited, and must exit 0. Per command it prints
// the median, p90, min and max of the wall time and the median CPU time
// (user + system, from the kernel's accounting of the child, the steadier
// figure on a busy machine), in ms, and the ratio of each median to the
// first command's.
package main

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	n := flag.Int("n", 200, "timed rounds, after 5 untimed")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: cmdtime [-n N] CMD [ARG...] [--- CMD [ARG...]]...")
		flag.PrintDefaults()
	}
	flag.Parse()
	cmds := splitCommands(flag.Args())
	if len(cmds) == 0 || *n < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(cmds, *n); err != nil {
		fmt.Fprintln(os.Stderr, "cmdtime:", err)
		os.Exit(1)
	}
}

// splitCommands splits "a b --- c d" into [[a b] [c d]]. ("--" is taken:
// hangar exec's command follows one.)
func splitCommands(args []string) [][]string {
	var out [][]string
	var cur []string
	for _, a := range args {
		if a == "---" {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, a)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

type sample struct{ wall, cpu time.Duration }

func run(cmds [][]string, n int) error {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", os.DevNull, err)
	}
	defer devnull.Close()
	paths := make([]string, len(cmds))
	for i, c := range cmds {
		if paths[i], err = lookPath(c[0]); err != nil {
			return err
		}
	}
	attr := &os.ProcAttr{Files: []*os.File{devnull, devnull, os.Stderr}}
	once := func(i int) (sample, error) {
		start := time.Now()
		p, err := os.StartProcess(paths[i], cmds[i], attr)
		if err != nil {
			return sample{}, fmt.Errorf("start %s: %w", cmds[i][0], err)
		}
		st, err := p.Wait()
		wall := time.Since(start)
		if err != nil {
			return sample{}, fmt.Errorf("wait for %s: %w", cmds[i][0], err)
		}
		if !st.Success() {
			return sample{}, fmt.Errorf("%s: %s", strings.Join(cmds[i], " "), st)
		}
		return sample{wall: wall, cpu: st.UserTime() + st.SystemTime()}, nil
	}

	samples := make([][]sample, len(cmds))
	order := make([]int, len(cmds))
	for i := range order {
		order[i] = i
	}
	for round := range n + 5 {
		rand.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, i := range order {
			s, err := once(i)
			if err != nil {
				return err
			}
			if round >= 5 {
				samples[i] = append(samples[i], s)
			}
		}
	}

	fmt.Printf("| command | wall median | wall p90 | wall min–max | CPU median | wall / first | CPU / first |\n")
	fmt.Printf("|---|---|---|---|---|---|---|\n")
	var wall0, cpu0 float64
	for i, ss := range samples {
		walls := make([]float64, len(ss))
		cpus := make([]float64, len(ss))
		for j, s := range ss {
			walls[j] = ms(s.wall)
			cpus[j] = ms(s.cpu)
		}
		slices.Sort(walls)
		slices.Sort(cpus)
		wm, cm := quantile(walls, 0.5), quantile(cpus, 0.5)
		if i == 0 {
			wall0, cpu0 = wm, cm
		}
		fmt.Printf("| `%s` | %.2f | %.2f | %.2f–%.2f | %.2f | %.2f× | %.2f× |\n",
			strings.Join(cmds[i], " "), wm, quantile(walls, 0.9), walls[0], walls[len(walls)-1], cm, wm/wall0, cm/cpu0)
	}
	return nil
}

// lookPath finds a command the way a shell would, so that "true" works.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range strings.Split(os.Getenv("PATH"), ":") {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH", name)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// quantile of sorted values, nearest rank.
func quantile(sorted []float64, q float64) float64 {
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
