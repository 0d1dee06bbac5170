package container

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Block I/O limits (limits.read, limits.write and limits.disk.priority in
// LXD's terms) go through the blkio (v1) or io (v2) cgroup controller.
//
// Throttles are part of the runtime spec at start (runc writes
// blkio.throttle.*_device or io.max). The weight is not: runc fails the
// whole start when the weight file is missing, and v1 hosts without the
// bfq scheduler's cgroup support (this one) have none. The driver writes
// it itself once runc made the cgroup; a missing file is logged once and
// skipped. LXD refuses the start instead ("blkio.weight cgroup controller
// is missing"); a priority is a hint, not a limit, so hangar runs the
// container without it.

// checkBlockIO checks the block I/O limits.
func checkBlockIO(l driver.Limits) error {
	if l.DiskPriority < -1 || l.DiskPriority > 10 {
		return errdefs.Invalid("disk priority %d is outside 0..10", l.DiskPriority)
	}
	seen := map[[2]int64]bool{}
	for _, b := range l.BlockIO {
		if b.Major < 0 || b.Minor < 0 || b.Major > 1<<12-1 || b.Minor > 1<<20-1 {
			return errdefs.Invalid("block device %d:%d is not a device number", b.Major, b.Minor)
		}
		if b.ReadBps < 0 || b.WriteBps < 0 || b.ReadIops < 0 || b.WriteIops < 0 {
			return errdefs.Invalid("negative I/O limit for block device %d:%d", b.Major, b.Minor)
		}
		if seen[[2]int64{b.Major, b.Minor}] {
			return errdefs.Invalid("block device %d:%d limited twice", b.Major, b.Minor)
		}
		seen[[2]int64{b.Major, b.Minor}] = true
		// The kernel says only EINVAL or ENODEV for a device it does not
		// throttle; say which device, and why.
		sys := fmt.Sprintf("/sys/dev/block/%d:%d", b.Major, b.Minor)
		if _, err := os.Stat(sys); err != nil {
			return errdefs.Invalid("no block device %d:%d", b.Major, b.Minor)
		}
		if _, err := os.Stat(sys + "/partition"); err == nil {
			disk, _ := os.ReadFile(sys + "/../dev")
			return errdefs.Invalid("block device %d:%d is a partition: I/O is throttled per disk (%s)", b.Major, b.Minor, strings.TrimSpace(string(disk)))
		}
	}
	return nil
}

// blockIO is the runtime spec's throttles for l; nil when none.
func blockIO(l driver.Limits) *specs.LinuxBlockIO {
	if len(l.BlockIO) == 0 {
		return nil
	}
	bio := &specs.LinuxBlockIO{}
	add := func(list *[]specs.LinuxThrottleDevice, b driver.BlockIOLimit, rate int64) {
		if rate > 0 {
			*list = append(*list, specs.LinuxThrottleDevice{
				LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: b.Major, Minor: b.Minor},
				Rate:               uint64(rate),
			})
		}
	}
	for _, b := range l.BlockIO {
		add(&bio.ThrottleReadBpsDevice, b, b.ReadBps)
		add(&bio.ThrottleWriteBpsDevice, b, b.WriteBps)
		add(&bio.ThrottleReadIOPSDevice, b, b.ReadIops)
		add(&bio.ThrottleWriteIOPSDevice, b, b.WriteIops)
	}
	return bio
}

// blkioDir is the directory of id's cgroup in the blkio (v1) or unified
// (v2) hierarchy; "" when v1 has no blkio hierarchy.
func (d *Driver) blkioDir(id string) string {
	if d.cg.v2 {
		return d.cg.dir("", d.cg.path(id))
	}
	if _, ok := d.cg.v1["blkio"]; !ok {
		return ""
	}
	return d.cg.dir("blkio", d.cg.path(id))
}

// weightFiles are the weight files, in order of preference, with the
// weight that is the kernel's default in each: the blkio.weight of CFQ
// and blk-iocost's io.weight, else bfq's.
func (d *Driver) weightFiles() []struct {
	name string
	dflt int
} {
	if d.cg.v2 {
		return []struct {
			name string
			dflt int
		}{{"io.weight", 100}, {"io.bfq.weight", 100}}
	}
	return []struct {
		name string
		dflt int
	}{{"blkio.weight", 500}, {"blkio.bfq.weight", 100}}
}

// applyWeight writes the weight of limits.disk.priority, LXD's way
// (priority×100, 0 being 10), to id's cgroup. -1 writes the kernel's
// default when reset (an update), nothing at start. A host without a
// weight file gets a warning, once, and no error.
func (d *Driver) applyWeight(id string, priority int, reset bool) error {
	if priority < 0 && !reset {
		return nil
	}
	dir := d.blkioDir(id)
	if dir != "" {
		for _, f := range d.weightFiles() {
			p := dir + "/" + f.name
			if _, err := os.Stat(p); err != nil {
				continue
			}
			w := max(priority*100, 10)
			if priority < 0 {
				w = f.dflt
			}
			if err := writeCgroupFile(p, []byte(strconv.Itoa(w))); err != nil {
				return fmt.Errorf("set block I/O weight: %w", err)
			}
			return nil
		}
	}
	if priority >= 0 {
		d.weightWarn.Do(func() {
			d.log.Warn("limits.disk.priority is not applied: no block I/O weight in this host's cgroups (blkio.weight or the bfq scheduler's)", "cgroup", dir)
		})
	}
	return nil
}

// applyThrottles sets id's throttles to exactly l.BlockIO on a running
// container: devices no longer listed lose their limits.
func (d *Driver) applyThrottles(id string, l driver.Limits) error {
	dir := d.blkioDir(id)
	if dir == "" {
		if len(l.BlockIO) == 0 {
			return nil
		}
		return errors.New("block I/O limits: the blkio cgroup controller is not mounted")
	}
	if d.cg.v2 {
		return applyIOMax(dir+"/io.max", l.BlockIO)
	}
	for _, f := range []struct {
		name string
		rate func(driver.BlockIOLimit) int64
	}{
		{"blkio.throttle.read_bps_device", func(b driver.BlockIOLimit) int64 { return b.ReadBps }},
		{"blkio.throttle.write_bps_device", func(b driver.BlockIOLimit) int64 { return b.WriteBps }},
		{"blkio.throttle.read_iops_device", func(b driver.BlockIOLimit) int64 { return b.ReadIops }},
		{"blkio.throttle.write_iops_device", func(b driver.BlockIOLimit) int64 { return b.WriteIops }},
	} {
		p := dir + "/" + f.name
		want := map[string]int64{}
		for _, b := range l.BlockIO {
			if r := f.rate(b); r > 0 {
				want[fmt.Sprintf("%d:%d", b.Major, b.Minor)] = r
			}
		}
		cur, err := os.ReadFile(p)
		if err != nil {
			if len(want) == 0 && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("block I/O limits: %w", err)
		}
		// "MAJ:MIN RATE" per line; writing a rate of 0 removes the rule.
		for _, line := range strings.Split(strings.TrimSpace(string(cur)), "\n") {
			dev, _, ok := strings.Cut(line, " ")
			if _, keep := want[dev]; ok && !keep {
				if err := writeCgroupFile(p, []byte(dev+" 0")); err != nil {
					return fmt.Errorf("block I/O limits: lift %s of %s: %w", f.name, dev, err)
				}
			}
		}
		for dev, r := range want {
			if err := writeCgroupFile(p, []byte(dev+" "+strconv.FormatInt(r, 10))); err != nil {
				return fmt.Errorf("block I/O limits: %s of %s: %w", f.name, dev, err)
			}
		}
	}
	return nil
}

// applyIOMax sets a v2 io.max to exactly limits: one line per device,
// "MAJ:MIN rbps=N wbps=N riops=N wiops=N", "max" meaning none.
func applyIOMax(p string, limits []driver.BlockIOLimit) error {
	cur, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("block I/O limits: %w", err)
	}
	want := map[string]driver.BlockIOLimit{}
	for _, b := range limits {
		want[fmt.Sprintf("%d:%d", b.Major, b.Minor)] = b
	}
	for _, line := range bytes.Split(bytes.TrimSpace(cur), []byte("\n")) {
		dev, _, ok := bytes.Cut(line, []byte(" "))
		if _, keep := want[string(dev)]; ok && !keep {
			if err := writeCgroupFile(p, []byte(string(dev)+" rbps=max wbps=max riops=max wiops=max")); err != nil {
				return fmt.Errorf("block I/O limits: lift %s: %w", dev, err)
			}
		}
	}
	v := func(n int64) string {
		if n <= 0 {
			return "max"
		}
		return strconv.FormatInt(n, 10)
	}
	for dev, b := range want {
		line := fmt.Sprintf("%s rbps=%s wbps=%s riops=%s wiops=%s", dev, v(b.ReadBps), v(b.WriteBps), v(b.ReadIops), v(b.WriteIops))
		if err := writeCgroupFile(p, []byte(line)); err != nil {
			return fmt.Errorf("block I/O limits: %s: %w", dev, err)
		}
	}
	return nil
}
