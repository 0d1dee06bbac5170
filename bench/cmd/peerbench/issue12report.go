package main

import (
	"fmt"
	"strings"
	"time"
)

// issue12Cols are the report's columns, in order.
var issue12Cols = []string{col12HDir, col12HBtrfs, col12LDir, col12LBtrfs, col12BDir, col12BBtrfs}

// issue12Rows are the figures table's lines.
var issue12Rows = []issue10Row{
	{key: r12First, label: "first launch on the pool, once (btrfs: it caches the image in the new pool; dir: the set-up's warm launch with the default profile did already)", unit: "ms"},
	{key: r12Launch, label: "launch (create + start until the daemon says it runs), busybox, no NIC: POST /1.0/instances with no profile and a root disk device on the pool (LXD: then PUT state start)", unit: "ms"},
	{key: r12VolCreate, label: fmt.Sprintf("custom volume create: POST /1.0/storage-pools/POOL/volumes/custom (btrfs: size=%s; dir: no size)", volSize), unit: "ms"},
	{key: r12VolAttach, label: fmt.Sprintf("its attach to a running container: PATCH /1.0/instances/NAME adding a disk device {pool, source, path: %s}, until it returns", volPath), unit: "ms"},
	{key: r12VolMounted, label: fmt.Sprintf("create + attach, until %s is in the container's mount table", volPath), unit: "ms"},
	{key: r12VolCLI, label: fmt.Sprintf("the same through the real lxc: `lxc storage volume create POOL V [size=%s]` + `lxc storage volume attach POOL V NAME %s`, until mounted", volSize, volPath), unit: "ms"},
	{key: r12Delete, label: "delete of a stopped instance: DELETE /1.0/instances/NAME until done; baseline: `runc delete` of a stopped runc container + the root's removal by hand", unit: "ms"},
	{key: r12DelRunc, label: "baseline: `runc delete` alone", unit: "ms"},
	{key: r12DelRemove, label: "baseline: the removal alone (dir: `rm -rf` of the overlay's upper and work; btrfs: `btrfs subvolume delete` of the snapshot)", unit: "ms"},
}

func issue12Targets() []target11 {
	return []target11{
		{label: "launch on btrfs ÷ launch on dir, hangard", num: cellRef{r12Launch, col12HBtrfs}, den: cellRef{r12Launch, col12HDir}, limit: 1.2, judged: true},
		{label: "launch on btrfs ÷ launch on dir, LXD (for reference)", num: cellRef{r12Launch, col12LBtrfs}, den: cellRef{r12Launch, col12LDir}},
		{label: "launch on dir, hangard ÷ LXD (for reference)", num: cellRef{r12Launch, col12HDir}, den: cellRef{r12Launch, col12LDir}},
		{label: "launch on btrfs, hangard ÷ LXD (for reference)", num: cellRef{r12Launch, col12HBtrfs}, den: cellRef{r12Launch, col12LBtrfs}},
		{label: "custom volume create + attach until mounted, dir, hangard ÷ LXD (no target: reported beside LXD)", num: cellRef{r12VolMounted, col12HDir}, den: cellRef{r12VolMounted, col12LDir}},
		{label: "custom volume create + attach until mounted, btrfs, hangard ÷ LXD (no target)", num: cellRef{r12VolMounted, col12HBtrfs}, den: cellRef{r12VolMounted, col12LBtrfs}},
		{label: "delete of a stopped instance on dir, hangard ÷ baseline (`runc delete` + `rm -rf` upper and work)", num: cellRef{r12Delete, col12HDir}, den: cellRef{r12Delete, col12BDir}, limit: 2, judged: true},
		{label: "delete of a stopped instance on btrfs, hangard ÷ baseline (`runc delete` + `btrfs subvolume delete`)", num: cellRef{r12Delete, col12HBtrfs}, den: cellRef{r12Delete, col12BBtrfs}, limit: 2, judged: true},
		{label: "delete of a stopped instance on dir, LXD ÷ baseline (for reference)", num: cellRef{r12Delete, col12LDir}, den: cellRef{r12Delete, col12BDir}, limit: 2},
		{label: "delete of a stopped instance on btrfs, LXD ÷ baseline (for reference)", num: cellRef{r12Delete, col12LBtrfs}, den: cellRef{r12Delete, col12BBtrfs}, limit: 2},
	}
}

// renderIssue12 is the issue-12 report.
func renderIssue12(cfg *config, res *results, r *issue10Results) string {
	var b strings.Builder
	b.WriteString("# Issue 12: storage speed figures, hangard beside LXD and a baseline by hand\n\n")
	fmt.Fprintf(&b, "`bench/run --issue12 --runs %d` on %s, commit %s.\n\n", cfg.runs, time.Now().UTC().Format("2006-01-02 15:04 MST"), res.machine.commit)
	fmt.Fprintf(&b, "- Machine: %s\n", res.machine.summary())
	var versions []string
	for _, p := range []string{peerHangard, peerLXD, peerRunc} {
		if v := res.versions[p]; v != "" {
			versions = append(versions, v)
		}
	}
	fmt.Fprintf(&b, "- Peers: %s, up at the same time.\n", strings.Join(versions, ", "))
	if r.load.took > 0 {
		fmt.Fprintf(&b, "- Machine load: %s\n", r.load.summary())
	}
	fmt.Fprintf(&b, "- The whole run took %s.\n\n", roundDuration(res.elapsed))

	b.WriteString("## Targets\n\n| target (issue 12) | figure | limit | verdict |\n|---|---|---|---|\n")
	for _, t := range issue12Targets() {
		fig, limit, verdict := r.targetLine(t)
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.label, fig, limit, verdict)
	}

	b.WriteString("\n## Figures\n\n| measurement | unit |")
	for _, c := range issue12Cols {
		fmt.Fprintf(&b, " %s |", c)
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(issue12Cols)) + "\n")
	var errs []string
	for _, rw := range issue12Rows {
		if !r.hasRow(rw.key) {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s |", rw.label, rw.unit)
		for _, c := range issue12Cols {
			text := r.cellText(rw, c, &errs)
			if n := r.counts[rw.key][c]; n[1] > 0 && len(r.vals[rw.key][c]) > 0 {
				text += fmt.Sprintf("; %d of %d failed", n[1], n[0])
			}
			fmt.Fprintf(&b, " %s |", text)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nEach cell: **median**, p90 (min–max) of the runs that gave a figure, and how many failed if any did (the first error of each is listed below).\n\n## How these are taken\n\n")
	fmt.Fprintf(&b, "- Pools: each daemon's dir pool is its `default` one in its data directory (ext4 here); the btrfs pools are loop-backed files of %s the run creates: hangard's through its API (`POST /1.0/storage-pools {name: %s, driver: btrfs, config: {size: %s}}`), LXD's with `lxc storage create %s btrfs size=%s`. Each pool's first launch (it caches the image in the pool) is its own row, then %d unrecorded round(s) before the recorded ones.\n", btrfsPoolSize, btrfsPool, btrfsPoolSize, btrfsPool, btrfsPoolSize, warm12)
	b.WriteString("- hangard runs in a network namespace of the harness's own, as in every bench mode. Its instances and LXD's are the busybox image, unprivileged, with no profile and one device, `root: {type: disk, path: /, pool: POOL}`: no NIC. Every call goes through hangar's Go SDK on the daemon's unix socket with a warm connection (the same calls on both daemons), timed until the answer, or the end of its operation when the answer is one.\n")
	fmt.Fprintf(&b, "- Launch and delete rounds: %d recorded, each round in a fresh random order: on every pool, a launch (timed), a forced stop (untimed), a delete (timed); and every baseline once. The baseline (runc %s, the same busybox tree, `runc spec`'s default container, no user namespace): a container made as the pool's driver makes a root (dir: overlayfs over the unpacked tree on ext4; btrfs: `btrfs subvolume snapshot` of a subvolume holding the tree, on a loop-backed btrfs of the harness's own), started, killed and waited for, its overlay unmounted (all untimed), then timed: `runc delete`, then `rm -rf` of the overlay's upper and work directories (dir) or `btrfs subvolume delete` of the snapshot (btrfs).\n", cfg.runs, strings.TrimPrefix(res.versions[peerRunc], "runc version "))
	fmt.Fprintf(&b, "- Custom volume rounds: %d recorded, on every pool one running container (no NIC) made before the rounds; each round, in a fresh random order per pool: the volume made (`POST .../volumes/custom {name, type: custom, content_type: filesystem, config}`, size %s on btrfs only, on both daemons: hangard refuses a size on a dir pool here, this kernel having no project quota format), a PATCH of the instance adding the disk device `%s: {type: disk, pool: POOL, source: V, path: %s}`, then `/proc/PID1/mountinfo` of the container read every 0.5 ms until a mount sits at %s; then (untimed) the device taken off with a PUT of the instance without it, as `lxc storage volume detach` does, and the volume deleted. On LXD's pools the same again with the real lxc client, timed from the first command's exec to the mount.\n", cfg.runs, volSize, volDevice, volPath, volPath)
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, e := range errs {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	b.WriteString("\n")
	return b.String()
}
