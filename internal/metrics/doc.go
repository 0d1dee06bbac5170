// Package metrics serves hangard's Prometheus metrics (GET /1.0/metrics)
// in the OpenMetrics text format, through prometheus/client_golang.
//
// It owns two sets of series:
//
//   - Instance series, with LXD 5.0's names and labels (lxd_cpu_seconds_total,
//     lxd_memory_*, lxd_disk_*, lxd_network_*, lxd_filesystem_*,
//     lxd_procs_total, lxd_cpu_effective_total), every one labelled
//     name, project and type (container or virtual-machine), for running
//     instances only (as LXD). They are read at each scrape from the core
//     (Instances: instance.Service), which asks the instance's driver
//     (driver.MetricsReader): the container driver preads the cgroup files
//     it already holds open for State, the QEMU driver reads the process's
//     threads, query-blockstats and the agent's interface counters.
//   - hangard's own, under hangar_: API request latency by method and route
//     pattern (never the raw path: names would make the series unbounded),
//     operations by class and status, events delivered, and the Go runtime
//     and process collectors (go_*, process_*).
//
// Speed: instances are read in parallel by a small pool (at most four
// workers: the reads are syscalls, and more would only contend), each read
// a handful of preads on open descriptors, and the instance series are
// written straight into the text format (text.go). There is no cache: at
// 100 running containers a scrape took 13 ms (median of 50, 2 busy cores,
// bench/metrics.sh), of which 2 ms is gathering and encoding
// (BenchmarkGather); LXD's 8 s cache would only make the figures stale.
//
// It must not: hold instance state of its own (every figure is read from
// the runtime at the scrape), import a driver package, or decide access
// (the LXD edge's authorization does).
package metrics
