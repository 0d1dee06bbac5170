package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// issue13Cols are the report's columns, in order.
var issue13Cols = []string{col12HDir, col12HBtrfs, col12LDir, col12LBtrfs, col13Hand}

// issue13Rows are the figures table's lines.
var issue13Rows = []issue10Row{
	{key: r13Fill, label: fmt.Sprintf("writing the source container's 1 GiB, once, on every pool at the same time: an exec of %d × `dd if=/dev/urandom bs=1M count=1` into %s, then `sync` (set-up, for reference)", fillFiles, fillDir), unit: "ms"},
	{key: r13Snapshot, label: "**snapshot** of the stopped container holding 1 GiB: `POST /1.0/instances/NAME/snapshots` until its operation ends", unit: "ms"},
	{key: r13Copy, label: "**copy** of it within its pool, instance only: `POST /1.0/instances {source: {type: copy, source: NAME, instance_only: true}}` until done", unit: "ms"},
	{key: r13VMLaunch, label: fmt.Sprintf("VM boot, once: `hangar launch busybox %s --vm -c limits.memory=%s -c limits.cpu=1`, until it returns (the guest agent answered)", vm13, vmMemory13), unit: "ms"},
	{key: r13ForkOp, label: fmt.Sprintf("**fork** of the running %s VM: `POST /1.0/instances/%s/fork {name}` until its operation ends", vmMemory13, vm13), unit: "ms"},
	{key: r13ForkPause, label: "the source's pause during the fork (the operation's `pause_ms`: QEMU's stop to its resume)", unit: "ms"},
	{key: r13ForkReady, label: "fork until the fork answers an exec of `true` (its agent ready), from the POST", unit: "ms"},
	{key: r13ForkSave, label: "in it, hangard's log: the pre-copy save of the source's RAM and devices to the state file while the source runs (`vm checkpointed` save=)", unit: "ms"},
	{key: r13ForkStart, label: "in it, hangard's log: the fork's QEMU start from the state file until its agent answered and took the fork's identity (`vm started` forked=true total=)", unit: "ms"},
	{key: r13Export, label: "**export** of the 1 GiB container: `POST /1.0/instances/NAME/backups {compression_algorithm: zstd, instance_only: true}` until done + `GET .../backups/B/export` to a file; by hand: `tar -C ROOT -cf - . | zstd -T0 -q > F`", unit: "ms"},
	{key: r13BackupMake, label: "its backup create alone", unit: "ms"},
	{key: r13BackupGet, label: "its download alone", unit: "ms"},
	{key: r13Size, label: "the tarball's size", unit: "MiB"},
	{key: r13Import, label: "**import**: `POST /1.0/instances` with the tarball (`Content-Type: application/octet-stream`, `X-LXD-name`, `X-LXD-pool`) until done; by hand: `zstd -dc F | tar -C DST -xf -` into an empty directory", unit: "ms"},
	{key: r13RoundTrip, label: "export + import, per round", unit: "ms"},
}

func issue13Targets() []target11 {
	return []target11{
		{label: "snapshot of a stopped container holding 1 GiB, btrfs, hangard", num: cellRef{r13Snapshot, col12HBtrfs}, limit: 50, judged: true},
		{label: "snapshot on dir, hangard (no target: reported)", num: cellRef{r13Snapshot, col12HDir}},
		{label: "snapshot on btrfs, LXD (for reference)", num: cellRef{r13Snapshot, col12LBtrfs}},
		{label: "snapshot on btrfs, hangard ÷ LXD (for reference)", num: cellRef{r13Snapshot, col12HBtrfs}, den: cellRef{r13Snapshot, col12LBtrfs}},
		{label: "snapshot on dir, hangard ÷ LXD (for reference)", num: cellRef{r13Snapshot, col12HDir}, den: cellRef{r13Snapshot, col12LDir}},
		{label: "copy of a stopped container within a btrfs pool ÷ snapshot on btrfs, hangard", num: cellRef{r13Copy, col12HBtrfs}, den: cellRef{r13Snapshot, col12HBtrfs}, limit: 1.5, judged: true},
		{label: "copy ÷ snapshot on btrfs, LXD (for reference)", num: cellRef{r13Copy, col12LBtrfs}, den: cellRef{r13Snapshot, col12LBtrfs}, limit: 1.5},
		{label: "copy ÷ snapshot on dir, hangard (for reference)", num: cellRef{r13Copy, col12HDir}, den: cellRef{r13Snapshot, col12HDir}, limit: 1.5},
		{label: "copy on btrfs, hangard ÷ LXD (for reference)", num: cellRef{r13Copy, col12HBtrfs}, den: cellRef{r13Copy, col12LBtrfs}},
		{label: "copy on dir, hangard ÷ LXD (for reference)", num: cellRef{r13Copy, col12HDir}, den: cellRef{r13Copy, col12LDir}},
		{label: fmt.Sprintf("fork of a running %s VM: the source's pause (no target: reported)", vmMemory13), num: cellRef{r13ForkPause, col12HDir}},
		{label: "fork to the fork's agent ready (no target: reported)", num: cellRef{r13ForkReady, col12HDir}},
		{label: "export of a 1 GiB container ÷ `tar | zstd -T0` of the same tree", num: cellRef{r13Export, col12HDir}, den: cellRef{r13Export, col13Hand}, limit: 1.2, judged: true},
		{label: "the backup create alone (the tarball written in hangard's data directory, no download) ÷ `tar | zstd -T0` (for reference)", num: cellRef{r13BackupMake, col12HDir}, den: cellRef{r13Export, col13Hand}, limit: 1.2},
		{label: "import ÷ `zstd -dc | tar -x` of the same tarball's make", num: cellRef{r13Import, col12HDir}, den: cellRef{r13Import, col13Hand}, limit: 1.2, judged: true},
		{label: "export + import ÷ the two by hand", num: cellRef{r13RoundTrip, col12HDir}, den: cellRef{r13RoundTrip, col13Hand}, limit: 1.2, judged: true},
	}
}

// renderIssue13 is the issue-13 report.
func renderIssue13(cfg *config, res *results, r *issue10Results) string {
	var b strings.Builder
	b.WriteString("# Issue 13: snapshot, copy, fork and backup speed figures, hangard beside LXD and `tar | zstd`\n\n")
	fmt.Fprintf(&b, "`bench/run --issue13 --runs %d` on %s, commit %s.\n\n", cfg.runs, time.Now().UTC().Format("2006-01-02 15:04 MST"), res.machine.commit)
	fmt.Fprintf(&b, "- Machine: %s\n", res.machine.summary())
	var versions []string
	for _, p := range []string{peerHangard, peerLXD} {
		if v := res.versions[p]; v != "" {
			versions = append(versions, v)
		}
	}
	fmt.Fprintf(&b, "- Peers: %s, up at the same time.\n", strings.Join(versions, ", "))
	if r.load.took > 0 {
		fmt.Fprintf(&b, "- Machine load: %s\n", r.load.summary())
	}
	fmt.Fprintf(&b, "- The whole run took %s.\n\n", roundDuration(res.elapsed))

	b.WriteString("## Targets\n\n| target (issue 13) | figure | limit | verdict |\n|---|---|---|---|\n")
	for _, t := range issue13Targets() {
		fig, limit, verdict := r.targetLine(t)
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cellEscape(t.label), fig, limit, verdict)
	}

	b.WriteString("\n## Figures\n\n| measurement | unit |")
	for _, c := range issue13Cols {
		fmt.Fprintf(&b, " %s |", cellEscape(c))
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(issue13Cols)) + "\n")
	var errs []string
	for _, rw := range issue13Rows {
		if !r.hasRow(rw.key) {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s |", cellEscape(rw.label), rw.unit)
		for _, c := range issue13Cols {
			text := r.cellText(rw, c, &errs)
			if n := r.counts[rw.key][c]; n[1] > 0 && len(r.vals[rw.key][c]) > 0 {
				text += fmt.Sprintf("; %d of %d failed", n[1], n[0])
			}
			fmt.Fprintf(&b, " %s |", text)
		}
		b.WriteString("\n")
	}
	b.WriteString("\nEach cell: **median**, p90 (min–max) of the runs that gave a figure, and how many failed if any did (the first error of each is listed below).\n\n")
	if fork := forkCost(res.machine.kvm, r); fork != "" {
		b.WriteString("## The fork with KVM\n\n" + fork + "\n\n")
	}
	b.WriteString("## How these are taken\n\n")
	fmt.Fprintf(&b, "- Pools: each daemon's dir pool is its `default` one in its data directory (ext4 here); the btrfs pools are loop-backed files of %s the run creates: hangard's through its API (`POST /1.0/storage-pools {name: %s, driver: btrfs, config: {size: %s}}`), LXD's with `lxc storage create %s btrfs size=%s`.\n", btrfsPoolSize, btrfsPool, btrfsPoolSize, btrfsPool, btrfsPoolSize)
	fmt.Fprintf(&b, "- On every pool one source container (the busybox image, unprivileged, no profile, one device `root: {type: disk, path: /, pool: POOL}`: no NIC) is launched, gets %d files of 1 MiB of random bytes in %s (an exec of dd from /dev/urandom inside it, `sync`, and `du -sk` checked; the pools' containers all at once), and is stopped: a stopped container holding 1 GiB. hangard runs in a network namespace of the harness's own, as in every bench mode. Every call goes through hangar's Go SDK on the daemon's unix socket with a warm connection (the same calls on both daemons), timed until the answer, or the end of its operation when the answer is one.\n", fillFiles, fillDir)
	fmt.Fprintf(&b, "- Snapshot and copy rounds: 1 unrecorded, then %d recorded, each in a fresh random order over every pool's snapshot and copy: the snapshot `{name: pbsNNNN}` timed, then deleted (`DELETE .../snapshots/pbsNNNN`, untimed); the copy `pb-cXNNNN` (no profiles or devices given: the source's, so the same pool) timed, then deleted (untimed).\n", cfg.runs)
	fmt.Fprintf(&b, "- Fork (hangard alone; extension `hangar_fork`): the VM is booted once from the busybox image (the default profile's NIC, its root on the dir pool; TCG when the machine has no KVM), then %d forks, each timed from the POST to the end of its operation and to the first exec of `true` in the fork that succeeds (retried every 10 ms); the pause is the operation's `pause_ms`. Each fork is stopped and deleted untimed; the VM after the last.\n", heavyRuns13)
	fmt.Fprintf(&b, "- Export/import (hangard, its dir pool's source container; the by-hand baseline in the scratch directory on the same ext4): one unrecorded export first, then %d rounds in random order of hangard's export (backup create `{name, compression_algorithm: zstd, instance_only: true, optimized_storage: false}` until done, then the download of `.../export` to a file in the scratch directory) and import (the file POSTed to `/1.0/instances` as `lxc import` sends it, as a new instance on the same pool), and the baseline's `tar -C ROOT -cf - . | zstd -T0 -q > F` then `zstd -dc F | tar -C DST -xf -` (bash, pipefail). The backup, the file, the imported instance and the unpacked copy are removed untimed.\n", heavyRuns13)
	for _, n := range r.notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	for _, e := range errs {
		fmt.Fprintf(&b, "- %s\n", e)
	}
	b.WriteString("\n")
	return b.String()
}

// forkCost says what the fork measured costs and what the same path would
// cost with KVM, from this run's figures; "" when there are none.
func forkCost(kvm bool, r *issue10Results) string {
	pause, ready := r.median(cellRef{r13ForkPause, col12HDir}), r.median(cellRef{r13ForkReady, col12HDir})
	op, boot := r.median(cellRef{r13ForkOp, col12HDir}), r.median(cellRef{r13VMLaunch, col12HDir})
	if math.IsNaN(pause) || math.IsNaN(ready) || math.IsNaN(op) {
		return ""
	}
	accel := "under TCG (no KVM here)"
	if kvm {
		accel = "with KVM"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s: the source paused %s ms; the fork's operation ended after %s ms and the fork answered its first exec %s ms after the POST", accel, figure(pause), figure(op), figure(ready))
	if !math.IsNaN(boot) {
		fmt.Fprintf(&b, " (a cold boot of the same VM to its agent: %s ms)", figure(boot))
	}
	save, start := r.median(cellRef{r13ForkSave, col12HDir}), r.median(cellRef{r13ForkStart, col12HDir})
	if !math.IsNaN(save) && !math.IsNaN(start) {
		fmt.Fprintf(&b, "; of that, hangard's log gives %s ms to the pre-copy save of the running source and %s ms to the fork's QEMU start from the state file until its agent answered with the new identity, the rest being the disk clone, the records and the API", figure(save), figure(start))
	}
	b.WriteString(".\n\n")
	b.WriteString("Where that time goes: the fork is a pre-copy QEMU migration of the running source into a state file (QMP `migrate` to a passed descriptor: pages of zeroes go as a flag, so only the RAM the guest touched is written), QEMU stopping the guest only for the last dirty pages and the device state while the disk is cloned; then a second QEMU starts with `-incoming` from that file and the agent, once it answers, is given the fork's name, MACs and addresses. " +
		"Only two parts of that depend on the accelerator: the guest's own work (under TCG every guest instruction is translated, 10-50× slower than native, which weighs on the pre-copy's convergence and on the agent's reconnect, identity and DHCP after the resume), and QEMU's dirty-page tracking (TCG's software bitmap, KVM's dirty log). The rest, the file write and read of the touched RAM, the disk clone and QEMU's start, is host work that KVM leaves as it is.\n\n")
	b.WriteString("With KVM the same path would cost, for this 512 MiB guest: a pause of the same order or shorter (the final dirty set of an idle guest is small, and the device state is kilobytes), and a fork-to-ready time of QEMU's start and the RAM load (hundreds of MB/s to a few GB/s from the page cache), plus the agent's handshake at native speed, tens of milliseconds: a few hundred ms in all. " +
		"hypeman's 317-478 ms for 8 GiB on KVM are what a restore costs when the saved memory is mapped into the new VM copy-on-write and faulted in as the guest touches it (as Firecracker's and Cloud Hypervisor's snapshot restores can), so that the cost does not grow with the RAM. This path instead copies the touched RAM out at the save and into the new QEMU before it runs: a guest that really uses 8 GiB would take seconds each way (8 GiB at 1-3 GB/s), while an 8 GiB guest that touched little costs about what this one does. A private mapping of the saved memory for the fork (QEMU's file-backed memory backend, the source's RAM written once to a file) is what would bring the large-RAM case near hypeman's figures.")
	return b.String()
}

// cellEscape escapes the pipes of a table cell's text, code spans
// included (GitHub's tables split on any bare pipe).
func cellEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
