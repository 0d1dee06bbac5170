package main

import (
	"bufio"
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// goBenchPackages hold the Go benchmarks of the hot paths: config
// validation, list rendering, store queries and event fan-out.
var goBenchPackages = []string{"./internal/instance", "./internal/cli", "./internal/store", "./internal/event"}

type goBenchResult struct {
	pkg, name  string
	ns         []float64
	extra      map[string][]float64 // B/op, allocs/op and custom metrics
	extraUnits []string             // custom metrics, in order of appearance
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func runGoBench(ctx context.Context, cfg *config) ([]goBenchResult, error) {
	args := append([]string{"test", "-run", "^$", "-bench", ".", "-benchtime", cfg.benchtime, "-count", "5"}, goBenchPackages...)
	out, err := command{dir: cfg.repo, timeout: 15 * time.Minute}.output(ctx, "go", args...)
	res := parseGoBench(out)
	return res, err
}

func parseGoBench(out string) []goBenchResult {
	var res []goBenchResult
	index := map[string]int{}
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(p, "github.com/hangar-dev/hangar/")
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		key := pkg + " " + m[1]
		i, ok := index[key]
		if !ok {
			i = len(res)
			index[key] = i
			res = append(res, goBenchResult{pkg: pkg, name: m[1], extra: map[string][]float64{}})
		}
		r := &res[i]
		f := strings.Fields(m[2])
		for j := 0; j+1 < len(f); j += 2 {
			v, err := strconv.ParseFloat(f[j], 64)
			if err != nil {
				continue
			}
			unit := f[j+1]
			if unit == "ns/op" {
				r.ns = append(r.ns, v)
				continue
			}
			if _, seen := r.extra[unit]; !seen && unit != "B/op" && unit != "allocs/op" {
				r.extraUnits = append(r.extraUnits, unit)
			}
			r.extra[unit] = append(r.extra[unit], v)
		}
	}
	return res
}
