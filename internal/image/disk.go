package image

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// A virtual-machine image is a bootable disk (a cloud image: qcow2, or a
// raw disk with a partition table) that UEFI firmware boots. It is stored
// as its blob alone, byte for byte: there is no tree, and the QEMU driver
// layers each instance's qcow2 overlay directly over the blob.

// Formats of disk images, as Record.Format names them: uploaded alone, or
// as an LXD split virtual-machine image (a metadata tarball, then the
// disk: rootfs.img), whose disk is stored where a split image's rootfs is.
const (
	formatDiskQcow2      = "disk-qcow2"
	formatDiskRaw        = "disk-raw"
	formatLXDSplitPrefix = "lxd-split-"
	formatLXDSplitQcow2  = formatLXDSplitPrefix + "qcow2"
	formatLXDSplitRaw    = formatLXDSplitPrefix + "raw"
)

// typeVM is LXD's image type for virtual-machine images.
const typeVM = "virtual-machine"

// diskHeadSize is how much of an upload detectDisk looks at: a GPT header
// starts at 512.
const diskHeadSize = 520

var (
	magicQcow2 = []byte{'Q', 'F', 'I', 0xfb}
	magicGPT   = []byte("EFI PART")
)

// detectDisk names the disk format an upload's first bytes claim ("qcow2",
// "raw"), or "" for anything else. A raw disk is recognised by its
// partition table: a GPT header at 512, or an MBR's 0x55AA at 510. Tar
// headers keep 500..511 zero and compressed streams are recognised first,
// so no archive is taken for a disk; qemu-img then checks the claim.
func detectDisk(head []byte) string {
	if bytes.HasPrefix(head, magicQcow2) {
		return "qcow2"
	}
	if detectCompression(head) != compressionNone {
		return ""
	}
	if len(head) >= 262 && bytes.Equal(head[257:262], magicUstar) {
		return ""
	}
	if len(head) >= 520 && bytes.Equal(head[512:520], magicGPT) {
		return "raw"
	}
	if len(head) >= 512 && head[510] == 0x55 && head[511] == 0xaa {
		return "raw"
	}
	return ""
}

// diskInfo is what `qemu-img info --output=json` says of an image that
// matters here.
type diskInfo struct {
	Format          string `json:"format"`
	VirtualSize     int64  `json:"virtual-size"`
	BackingFilename string `json:"backing-filename"`
	FormatSpecific  struct {
		Data struct {
			DataFile string `json:"data-file"`
		} `json:"data"`
	} `json:"format-specific"`
}

// checkDiskInfo decides from qemu-img's report whether a file of size
// bytes is a disk image of the format its magic claimed. A qcow2 naming a
// backing or external data file is refused: QEMU would open that host
// path for the guest.
func checkDiskInfo(claimed string, size int64, info diskInfo) error {
	if info.Format != claimed {
		return errdefs.Invalid("not a disk image: qemu-img reads it as %q, not %s", info.Format, claimed)
	}
	if info.VirtualSize <= 0 {
		return errdefs.Invalid("not a disk image: its virtual size is %d", info.VirtualSize)
	}
	if info.BackingFilename != "" {
		return errdefs.Invalid("disk image: a backing file (%q) is not allowed; upload a standalone image (qemu-img convert)", info.BackingFilename)
	}
	if info.FormatSpecific.Data.DataFile != "" {
		return errdefs.Invalid("disk image: an external data file (%q) is not allowed", info.FormatSpecific.Data.DataFile)
	}
	if claimed == "raw" && size%512 != 0 {
		return errdefs.Invalid("not a disk image: a raw disk is whole 512-byte sectors, this is %d bytes", size)
	}
	return nil
}

// inspectDisk runs qemu-img info on a stored upload, forcing the format
// its magic claimed (qemu-img never probes, so a raw disk is never read
// as something else).
func inspectDisk(ctx context.Context, path, claimed string, size int64) error {
	qemuImg, err := exec.LookPath("qemu-img")
	if err != nil {
		return fmt.Errorf("virtual-machine images need qemu-img (%w): run `bash scripts/quickstart.sh` from a Hangar checkout, the README's first command, to install it", err)
	}
	out, err := exec.CommandContext(ctx, qemuImg, "info", "--output=json", "-f", claimed, path).Output()
	if err != nil {
		if ctx.Err() != nil {
			return cancelled(ctx.Err())
		}
		msg := err.Error()
		var ee *exec.ExitError
		if errors.As(err, &ee) && len(ee.Stderr) > 0 {
			msg = strings.TrimSpace(strings.ReplaceAll(string(ee.Stderr), path, "upload"))
		}
		return errdefs.Invalid("not a disk image: %s", msg)
	}
	var info diskInfo
	if err := json.Unmarshal(out, &info); err != nil {
		return fmt.Errorf("qemu-img info: %w", err)
	}
	return checkDiskInfo(claimed, size, info)
}

// importDisk stores a disk image upload whose head detectDisk recognised.
// Nothing is left on any failure.
func (s *Service) importDisk(ctx context.Context, r io.Reader, claimed, arch string, meta ImportMeta) (_ Record, _ []AliasRecord, err error) {
	f, err := os.CreateTemp(s.blobDir, ".tmp-upload-*")
	if err != nil {
		return Record{}, nil, fmt.Errorf("store upload: %w", err)
	}
	tmp := f.Name()
	defer func() {
		f.Close()
		if tmp != "" {
			os.Remove(tmp)
		}
	}()
	hr := &hashingReader{ctx: ctx, r: r, w: f, h: sha256.New()}
	_, cerr := io.Copy(io.Discard, hr)
	switch {
	case ctx.Err() != nil:
		return Record{}, nil, cancelled(ctx.Err())
	case hr.rerr != nil:
		return Record{}, nil, fmt.Errorf("read upload: %w", hr.rerr)
	case hr.werr != nil:
		return Record{}, nil, fmt.Errorf("store upload: %w", hr.werr)
	case cerr != nil:
		return Record{}, nil, fmt.Errorf("read upload: %w", cerr)
	}
	if err := f.Sync(); err != nil {
		return Record{}, nil, fmt.Errorf("store upload: %w", err)
	}
	if err := f.Close(); err != nil {
		return Record{}, nil, fmt.Errorf("store upload: %w", err)
	}
	fp := hex.EncodeToString(hr.h.Sum(nil))
	if meta.Fingerprint != "" && !strings.EqualFold(meta.Fingerprint, fp) {
		return Record{}, nil, errdefs.Invalid("fingerprint mismatch: the upload's is %s, the client expected %s", fp, meta.Fingerprint)
	}
	if err := inspectDisk(ctx, tmp, claimed, hr.n); err != nil {
		return Record{}, nil, err
	}

	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	if rec, ok, err := s.existing(ctx, fp); err != nil {
		return Record{}, nil, err
	} else if ok {
		return s.holdLocked(ctx, rec, meta.Alias) // The deferred clean-up drops the upload.
	}
	if err := s.removeFiles(fp); err != nil {
		return Record{}, nil, err
	}
	if err := os.Chmod(tmp, 0o400); err != nil {
		return Record{}, nil, fmt.Errorf("store image: %w", err)
	}
	if err := os.Rename(tmp, s.blobPath(fp)); err != nil {
		return Record{}, nil, fmt.Errorf("store image: %w", err)
	}
	tmp = s.blobPath(fp) // Removed by the deferred clean-up until committed.
	if err := syncDir(s.blobDir); err != nil {
		return Record{}, nil, err
	}

	props := maps.Clone(meta.Properties)
	if props == nil {
		props = map[string]string{}
	}
	for k, v := range map[string]string{"os": meta.OS, "release": meta.Release, "description": meta.Description} {
		if v != "" {
			props[k] = v
		}
	}
	props["architecture"] = arch
	now := s.now()
	rec := Record{
		Fingerprint: fp, Filename: meta.Filename, Size: hr.n, Architecture: arch, Type: typeVM,
		Properties: props, Public: meta.Public, CreatedAt: now, UploadedAt: now, Source: sourceFile,
		Format: "disk-" + claimed,
	}
	if err := s.db.CreateImage(ctx, rec, scope(ctx)); err != nil {
		return Record{}, nil, fmt.Errorf("record image: %w", err)
	}
	rec.Projects = []string{scope(ctx)}
	var aliases []AliasRecord
	if meta.Alias != "" {
		a := AliasRecord{Project: scope(ctx), Name: meta.Alias, Target: fp, Type: typeVM}
		if err := s.db.CreateAlias(ctx, a); err != nil {
			if derr := s.db.DeleteImage(context.WithoutCancel(ctx), fp); derr != nil {
				s.log.Error("cannot undo image record", "fingerprint", fp, "error", derr)
			}
			return Record{}, nil, fmt.Errorf("create alias %q: %w", meta.Alias, err)
		}
		aliases = append(aliases, a)
	}
	tmp = "" // Committed.
	s.log.Info("image imported", "fingerprint", fp, "size", hr.n, "architecture", arch, "format", rec.Format)
	s.em.Lifecycle(ctx, EventImageCreated, imageSource(ctx, fp), map[string]any{"type": typeVM})
	if meta.Alias != "" {
		s.em.Lifecycle(ctx, EventImageAliasCreated, aliasSource(ctx, meta.Alias), map[string]any{"target": fp})
	}
	return rec, aliases, nil
}

// peekDisk wraps an upload so its head can be looked at, and says which
// disk format the head claims ("" for none).
func peekDisk(r io.Reader) (*bufio.Reader, string) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(diskHeadSize) // A short upload is simply no disk.
	return br, detectDisk(head)
}

// Disk returns the stored disk of a virtual-machine image and its format
// ("qcow2" or "raw"); ok is false for an image that is a root filesystem.
// It looks in every project: the caller (a pool) has an image already
// resolved in its instance's project, and asks whether it is still stored.
func (s *Service) Disk(ctx context.Context, fp string) (path, format string, ok bool, err error) {
	rec, err := s.stored(ctx, fp)
	if err != nil {
		return "", "", false, err
	}
	switch rec.Format {
	case formatDiskQcow2:
		return s.blobPath(rec.Fingerprint), "qcow2", true, nil
	case formatDiskRaw:
		return s.blobPath(rec.Fingerprint), "raw", true, nil
	case formatLXDSplitQcow2:
		return s.splitRootfsPath(rec.Fingerprint), "qcow2", true, nil
	case formatLXDSplitRaw:
		return s.splitRootfsPath(rec.Fingerprint), "raw", true, nil
	}
	return "", "", false, nil
}

// isDiskFormat reports whether a record is a virtual-machine disk image.
func isDiskFormat(format string) bool {
	switch format {
	case formatDiskQcow2, formatDiskRaw, formatLXDSplitQcow2, formatLXDSplitRaw:
		return true
	}
	return false
}

// isSplitFormat reports whether an image is stored as two files, a
// metadata tarball and a root filesystem or disk.
func isSplitFormat(format string) bool {
	return format == formatLXDSplit || format == formatLXDSplitQcow2 || format == formatLXDSplitRaw
}
