package cli

import (
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
)

// newVolumeImportCmd is `hangar storage volume import POOL FILE NAME
// --type=iso`, as lxc's (LXD 5.x): an ISO image becomes a custom ISO
// volume, a VM's CD-ROM. lxc's other type, backup (a custom volume's
// backup tarball), has no counterpart in hangard: it is refused here,
// naming the type that works.
func newVolumeImportCmd(a *app) *cobra.Command {
	var typ string
	cmd := &cobra.Command{
		Use:   "import POOL FILE NAME",
		Short: "Import an ISO image as a custom storage volume",
		Long: "Import an ISO 9660 or UDF image as a custom volume of content type iso:\n" +
			"read-only, its size the image's, attached to virtual machines as a CD-ROM\n" +
			"(hangar storage volume attach POOL NAME VM, or a disk device pool=POOL source=NAME).",
		Example: "  hangar storage volume import default debian.iso installer --type=iso\n" +
			"  hangar config device add v1 cd disk pool=default source=installer boot.priority=10",
		Args: exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch typ {
			case api.StorageContentTypeISO:
			case "backup":
				if strings.HasSuffix(strings.ToLower(args[1]), ".iso") {
					return usageErrorf(cmd, "%s: an ISO image is imported with --type=iso", args[1])
				}
				return usageErrorf(cmd, "--type=backup: hangard does not import storage volume backups; --type=iso imports an ISO image")
			default:
				return usageErrorf(cmd, "--type %q: iso (or lxc's backup, which hangard does not import)", typ)
			}
			f, err := os.Open(args[1])
			if err != nil {
				return err
			}
			defer f.Close()
			c, err := a.client()
			if err != nil {
				return err
			}
			op, err := c.CreateStoragePoolVolumeFromISO(cmd.Context(), args[0], args[2], f)
			if err != nil {
				return err
			}
			return op.Wait(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&typ, "type", "backup", "type of the file: iso (an ISO image); lxc's backup is not supported")
	return cmd
}
