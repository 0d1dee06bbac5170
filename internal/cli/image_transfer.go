package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/client"
)

// importImage uploads one file (a rootfs tarball or a unified LXD image)
// or two (a split LXD image's metadata tarball and rootfs).
func importImage(ctx context.Context, a *app, pos []string, args client.ImageImportArgs) error {
	var r io.Reader = a.in
	if st, err := os.Stat(pos[0]); err == nil && st.IsDir() && len(pos) == 1 {
		// An OCI image layout directory: sent as an OCI archive.
		rc, err := tarDirectory(pos[0])
		if err != nil {
			return err
		}
		defer rc.Close()
		r = rc
		args.Filename = filepath.Base(filepath.Clean(pos[0]))
	} else if pos[0] != "-" {
		f, err := os.Open(pos[0])
		if err != nil {
			return fmt.Errorf("open image: %w", err)
		}
		defer f.Close()
		r = f
		args.Filename = filepath.Base(pos[0])
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	var op *client.Operation
	if len(pos) == 2 {
		rootfs, err := os.Open(pos[1])
		if err != nil {
			return fmt.Errorf("open rootfs: %w", err)
		}
		defer rootfs.Close()
		op, err = c.CreateImageFromFiles(ctx, r, args.Filename, rootfs, filepath.Base(pos[1]), args)
		if err != nil {
			return err
		}
	} else if op, err = c.CreateImageFromFile(ctx, r, args); err != nil {
		return err
	}
	if err := op.Wait(ctx); err != nil {
		return err
	}
	fp := client.ImportedFingerprint(op.Get())
	if fp == "" {
		fmt.Fprintln(a.out, "Image imported")
		return nil
	}
	fmt.Fprintf(a.out, "Image imported with fingerprint: %s\n", fp)
	return nil
}

func newImageExportCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "export IMAGE [TARGET]",
		Short: "Export an image's files",
		Long: "Export an image's files as they were imported, checked against its fingerprint.\n\n" +
			"TARGET is a directory (the current one by default), where the files get the\n" +
			"daemon's names (<fingerprint>.tar.xz; meta-<fingerprint>.tar.xz and\n" +
			"<fingerprint>.squashfs for a split image), or a file name: a split image's\n" +
			"rootfs then goes to TARGET.root, as lxc does.",
		Example: "  hangar image export alpine /tmp\n  hangar image export 9c14fb alpine.tar.gz",
		Args:    rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			fp, err := resolveImage(ctx, c, args[0])
			if err != nil {
				return err
			}
			target := "."
			if len(args) == 2 {
				target = args[1]
			}
			if err := exportImage(ctx, c, fp, target); err != nil {
				return err
			}
			fmt.Fprintln(a.out, "Image exported successfully!")
			return nil
		},
	}
}

// exportImage downloads into temporary files beside the targets and renames
// them into place only once the fingerprint matched, so a failed export
// leaves nothing behind.
func exportImage(ctx context.Context, c *client.Client, fp, target string) error {
	dir, metaPath := target, ""
	if st, err := os.Stat(target); err != nil || !st.IsDir() {
		dir, metaPath = filepath.Dir(target), target
	}
	meta, err := os.CreateTemp(dir, ".hangar-export-*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.Remove(meta.Name())
	defer meta.Close()
	rootfs, err := os.CreateTemp(dir, ".hangar-export-*")
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer os.Remove(rootfs.Name())
	defer rootfs.Close()

	got, err := c.GetImageFile(ctx, fp, meta, rootfs)
	if err != nil {
		return err
	}
	for _, f := range []*os.File{meta, rootfs} {
		if err := f.Close(); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	rootfsPath := ""
	if metaPath == "" {
		metaPath = filepath.Join(dir, safeName(got.MetaName, fp))
		rootfsPath = filepath.Join(dir, safeName(got.RootfsName, fp+".root"))
	} else {
		rootfsPath = metaPath + ".root"
	}
	if err := os.Rename(meta.Name(), metaPath); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if got.RootfsName == "" && got.RootfsSize == 0 {
		return nil
	}
	if err := os.Rename(rootfs.Name(), rootfsPath); err != nil {
		return errors.Join(fmt.Errorf("export: %w", err), os.Remove(metaPath))
	}
	return nil
}

// safeName keeps a name the daemon gave if it is a plain file name.
func safeName(name, fallback string) string {
	if name == "" || name == "." || name == ".." || name != filepath.Base(name) {
		return fallback
	}
	return name
}
