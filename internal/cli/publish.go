package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/client"
)

func newPublishCmd(a *app) *cobra.Command {
	var args client.ImagePublishArgs
	var expire string
	cmd := &cobra.Command{
		Use:   "publish NAME[/SNAPSHOT] [KEY=VALUE...]",
		Short: "Make an image of an instance or snapshot",
		Long: "Make an image of an instance, or of one of its snapshots, in LXD's image format\n" +
			"(metadata.yaml, templates/ and rootfs/; a virtual machine's disk as rootfs.img).\n" +
			"A running container is frozen while its root is read; a running virtual machine\n" +
			"is published from a snapshot. KEY=VALUE pairs are the image's properties\n" +
			"(description, os, release ...); without any, the image keeps the properties of\n" +
			"the image the instance was made from.",
		Example: "  hangar publish web --alias web-image description='web server'\n" +
			"  hangar publish web/snap0 --alias web-snap0 --compression zstd",
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			for _, kv := range pos[1:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageErrorf(cmd, "property %q: want KEY=VALUE", kv)
				}
				if args.Properties == nil {
					args.Properties = map[string]string{}
				}
				args.Properties[k] = v
			}
			if expire != "" {
				t, err := parseExpiry(expire)
				if err != nil {
					return usageErrorf(cmd, "--expire: %v", err)
				}
				args.ExpiresAt = t
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			op, err := c.CreateImageFromInstance(ctx, pos[0], args)
			if err != nil {
				return err
			}
			if err := a.waitProgress(ctx, op, "Publishing "+pos[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Instance published with fingerprint: %s\n", client.ImportedFingerprint(op.Get()))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&args.Aliases, "alias", nil, "alias to create for the image (repeatable)")
	f.StringVar(&args.Compression, "compression", "", "gzip, xz, zstd, bzip2 or none (default: the server's images.compression_algorithm, gzip)")
	f.BoolVar(&args.Public, "public", false, "make the image public")
	f.StringVar(&expire, "expire", "", "when the image expires (RFC 3339, or YYYY-MM-DD)")
	return cmd
}

// parseExpiry reads an expiry date as lxc takes it (RFC 3339), or a day.
func parseExpiry(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (2030-01-02 or 2030-01-02T15:04:05Z)", s)
	}
	return t, nil
}
