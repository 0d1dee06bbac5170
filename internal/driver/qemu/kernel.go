package qemu

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

// guestModules are what the agent needs before it can mount the root:
// the virtio transports (PCI for q35, MMIO for microvm), the disks on
// every bus a disk may be on (virtio-blk; virtio-scsi with the SCSI disk
// driver; NVMe), the serial port, and ext4 with the checksum it asks the
// crypto API for; the 9p filesystem over virtio for shares; and the NIC
// (virtio_net, with failover and net_failover as Debian builds it). All
// are loaded at every boot, so that a NIC or disk plugged later finds its
// driver. Those built into the kernel are skipped; their dependencies
// (scsi_mod, nvme_core, 9pnet, netfs, ...) come along.
var guestModules = []string{
	"virtio_pci", "virtio_mmio", "virtio_blk", "virtio_scsi", "sd_mod", "nvme",
	"virtio_console", "crc32c_generic", "ext4", "9p", "9pnet_virtio", "virtio_net",
}

// kernel is the guest kernel and its modules.
type kernel struct {
	Path       string // vmlinuz
	ModulesDir string // /lib/modules/VERSION, "" when the kernel has none
}

// findKernel returns the configured kernel, else the newest
// /boot/vmlinuz-* (Debian's linux-image-amd64 puts it there). Its modules
// are /lib/modules/VERSION, VERSION being what follows "vmlinuz-".
func findKernel(path, modulesDir string) (kernel, error) {
	if path == "" {
		cands, _ := filepath.Glob("/boot/vmlinuz-*")
		if len(cands) == 0 {
			return kernel{}, errdefs.Invalid("no guest kernel: install linux-image-amd64 or pass --vm-kernel")
		}
		sort.Slice(cands, func(i, j int) bool { return versionLess(cands[i], cands[j]) })
		path = cands[len(cands)-1]
	}
	if _, err := os.Stat(path); err != nil {
		return kernel{}, fmt.Errorf("guest kernel: %w", err)
	}
	if modulesDir == "" {
		if v, ok := strings.CutPrefix(filepath.Base(path), "vmlinuz-"); ok {
			d := filepath.Join("/lib/modules", v)
			if _, err := os.Stat(filepath.Join(d, "modules.dep")); err == nil {
				modulesDir = d
			}
		}
	}
	return kernel{Path: path, ModulesDir: modulesDir}, nil
}

// versionLess orders kernel file names by their dotted numbers.
func versionLess(a, b string) bool {
	na, nb := numbers(a), numbers(b)
	for i := 0; i < len(na) && i < len(nb); i++ {
		if na[i] != nb[i] {
			return na[i] < nb[i]
		}
	}
	if len(na) != len(nb) {
		return len(na) < len(nb)
	}
	return a < b
}

func numbers(s string) []int {
	var out []int
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' }) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// moduleOrder resolves the wanted modules against modules.dep and
// modules.builtin: the module files to load, dependencies first, each once.
func moduleOrder(dir string, wanted []string) ([]string, error) {
	deps := map[string][]string{} // file -> its dependency files
	byName := map[string]string{} // module name -> file
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, fmt.Errorf("guest modules: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		deps[mod] = strings.Fields(rest)
		byName[moduleName(mod)] = mod
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("guest modules: %w", err)
	}
	builtin := map[string]bool{}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			builtin[moduleName(l)] = true
		}
	}
	var order []string
	seen := map[string]bool{}
	var visit func(file string)
	visit = func(file string) {
		if seen[file] {
			return
		}
		seen[file] = true
		for _, d := range deps[file] {
			visit(d)
		}
		order = append(order, file)
	}
	for _, name := range wanted {
		if builtin[name] {
			continue
		}
		file, ok := byName[name]
		if !ok {
			return nil, fmt.Errorf("guest modules: %s is neither built into the kernel nor in %s", name, dir)
		}
		visit(file)
	}
	return order, nil
}

// moduleName is a module's name from its path: dashes and underscores are
// one to the kernel.
func moduleName(p string) string {
	b := filepath.Base(p)
	if i := strings.Index(b, ".ko"); i >= 0 {
		b = b[:i]
	}
	return strings.ReplaceAll(b, "-", "_")
}

// readModule reads a module file, decompressed: finit_module takes only
// plain ELF unless the kernel decompresses itself.
func readModule(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	switch {
	case strings.HasSuffix(p, ".xz"):
		r, err = xz.NewReader(f)
	case strings.HasSuffix(p, ".zst"):
		var d *zstd.Decoder
		d, err = zstd.NewReader(f)
		if d != nil {
			defer d.Close()
		}
		r = d
	case strings.HasSuffix(p, ".gz"):
		r, err = gzip.NewReader(f)
	}
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", p, err)
	}
	return io.ReadAll(r)
}

// baseInitramfs builds the initramfs every VM of this kernel and agent
// shares: the agent as /init and the modules it loads. It returns the
// archive and the module paths inside it, in load order.
func baseInitramfs(k kernel, agent []byte) ([]byte, []string, error) {
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	w.Dir("hangar", 0o755)
	w.Dir("modules", 0o755)
	w.File("init", 0o755, agent)
	var mods []string
	if k.ModulesDir != "" {
		files, err := moduleOrder(k.ModulesDir, guestModules)
		if err != nil {
			return nil, nil, err
		}
		for i, f := range files {
			data, err := readModule(filepath.Join(k.ModulesDir, f))
			if err != nil {
				return nil, nil, err
			}
			name := fmt.Sprintf("/modules/%02d-%s.ko", i, moduleName(f))
			w.File(name, 0o644, data)
			mods = append(mods, name)
		}
	}
	if err := w.Close(); err != nil {
		return nil, nil, err
	}
	return buf.Bytes(), mods, nil
}

// configInitramfs is the per-start archive appended to the base one: the
// agent's configuration.
func configInitramfs(cfg vmagent.Config) ([]byte, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	w.Dir("hangar", 0o755)
	w.File(vmagent.ConfigPath, 0o644, b)
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func hashOf(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}
