package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

func newImageCmd(a *app) *cobra.Command {
	cmd := groupCmd("image", "Manage images")
	cmd.AddCommand(
		newImageImportCmd(a),
		newImagePullCmd(a), // oci.go
		newImageListCmd(a),
		newImageInfoCmd(a),
		newImageShowCmd(a),
		newImageDeleteCmd(a),
		newImageAliasCmd(a),
		newImageExportCmd(a),
	)
	return cmd
}

func newImageImportCmd(a *app) *cobra.Command {
	var args client.ImageImportArgs
	cmd := &cobra.Command{
		Use:   "import TARBALL|DIRECTORY [ROOTFS]",
		Short: "Import an image tarball",
		Long: "Import an image into hangard's image store: a root filesystem tarball, an LXD\n" +
			"image tarball (metadata.yaml and rootfs/), a split LXD image given as its\n" +
			"metadata tarball and its ROOTFS (tarball or squashfs), an OCI archive (a tar of\n" +
			"an OCI image layout) or a docker-archive (docker save), compressed or not,\n" +
			"or a virtual-machine disk image (qcow2, or raw with a partition table);\n" +
			"DIRECTORY is an OCI image layout.\n\n" +
			"Files are streamed to the daemon; TARBALL \"-\" reads it from standard input.",
		Example: "  hangar image import alpine.tar.gz --alias alpine --os Alpine --release 3.20\n" +
			"  hangar image import meta.tar.xz rootfs.squashfs --alias alpine",
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, pos []string) error {
			return importImage(cmd.Context(), a, pos, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&args.Alias, "alias", "", "alias to create for the image")
	f.StringVar(&args.OS, "os", "", "image property os")
	f.StringVar(&args.Release, "release", "", "image property release")
	f.StringVar(&args.Architecture, "architecture", "", "image property architecture")
	f.StringVar(&args.Description, "description", "", "image property description")
	f.BoolVar(&args.Public, "public", false, "make the image public")
	return cmd
}

func newImageListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{
		Use:   "list [FILTER...]",
		Short: "List images",
		Long: "List images.\n\n" +
			"A FILTER keeps the images with an alias or a fingerprint starting with it.",
	}, imageListing)
}

// imageListing sorts by alias, unaliased images last by fingerprint.
var imageListing = listing[api.Image]{
	header: []string{"ALIAS", "FINGERPRINT", "PUBLIC", "DESCRIPTION", "ARCHITECTURE", "TYPE", "SIZE", "UPLOAD DATE"},
	fetch: func(ctx context.Context, c *client.Client) ([]api.Image, error) {
		return c.GetImages(ctx)
	},
	filter: filterImages,
	compare: func(a, b api.Image) int {
		aa, ba := imageAliasLabel(a), imageAliasLabel(b)
		if (aa == "") != (ba == "") {
			if aa == "" {
				return 1
			}
			return -1
		}
		if c := strings.Compare(aa, ba); c != 0 {
			return c
		}
		return strings.Compare(a.Fingerprint, b.Fingerprint)
	},
	row: imageRow,
}

// filterImages keeps the images matching any filter by alias or fingerprint
// prefix.
func filterImages(images []api.Image, filters []string) []api.Image {
	if len(filters) == 0 {
		return images
	}
	out := []api.Image{}
	for _, img := range images {
		if slices.ContainsFunc(filters, func(f string) bool {
			if strings.HasPrefix(img.Fingerprint, f) {
				return true
			}
			return slices.ContainsFunc(img.Aliases, func(al api.ImageAlias) bool { return strings.HasPrefix(al.Name, f) })
		}) {
			out = append(out, img)
		}
	}
	return out
}

func imageRow(img api.Image) []string {
	public := "no"
	if img.Public {
		public = "yes"
	}
	return []string{
		imageAliasLabel(img),
		shortFingerprint(img.Fingerprint),
		public,
		img.Properties["description"],
		img.Architecture,
		strings.ToUpper(instanceTypeOr(img.Type)),
		formatBytes(img.Size),
		formatUploadDate(img.UploadedAt),
	}
}

// imageAliasLabel is lxc's ALIAS cell: the first alias, and how many more.
func imageAliasLabel(img api.Image) string {
	if len(img.Aliases) == 0 {
		return ""
	}
	names := make([]string, 0, len(img.Aliases))
	for _, al := range img.Aliases {
		names = append(names, al.Name)
	}
	slices.Sort(names)
	if len(names) == 1 {
		return names[0]
	}
	return fmt.Sprintf("%s (%d more)", names[0], len(names)-1)
}

// resolveImage turns an alias or a fingerprint (or a prefix of one, which
// the daemon resolves) into what to put in an image URL. An alias wins over
// a fingerprint, as in lxc.
func resolveImage(ctx context.Context, c *client.Client, ref string) (string, error) {
	alias, _, err := c.GetImageAlias(ctx, ref)
	if err == nil {
		return alias.Target, nil
	}
	if !client.IsNotFound(err) {
		return "", fmt.Errorf("look up alias %s: %w", ref, err)
	}
	return ref, nil
}

// getImage fetches an image by alias or fingerprint (prefix).
func getImage(ctx context.Context, c *client.Client, ref string) (*api.Image, error) {
	fp, err := resolveImage(ctx, c, ref)
	if err != nil {
		return nil, err
	}
	img, _, err := c.GetImage(ctx, fp)
	return img, err
}

func newImageInfoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "info IMAGE",
		Short: "Show an image's properties",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			img, err := getImage(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			return renderImageInfo(a.out, img)
		},
	}
}

// renderImageInfo prints what lxc image info prints.
func renderImageInfo(w io.Writer, img *api.Image) error {
	var b strings.Builder
	never := func(s string) string {
		if s == "" {
			return "never"
		}
		return s
	}
	fmt.Fprintf(&b, "Fingerprint: %s\n", img.Fingerprint)
	fmt.Fprintf(&b, "Size: %s\n", formatBytes(img.Size))
	fmt.Fprintf(&b, "Architecture: %s\n", img.Architecture)
	fmt.Fprintf(&b, "Type: %s\n", instanceTypeOr(img.Type))
	fmt.Fprintf(&b, "Public: %s\n", strings.ToLower(yesNo(img.Public)))
	b.WriteString("Timestamps:\n")
	if s := formatTime(img.CreatedAt); s != "" {
		fmt.Fprintf(&b, "    Created: %s\n", s)
	}
	fmt.Fprintf(&b, "    Uploaded: %s\n", formatTime(img.UploadedAt))
	fmt.Fprintf(&b, "    Expires: %s\n", never(formatTime(img.ExpiresAt)))
	fmt.Fprintf(&b, "    Last used: %s\n", never(formatTime(img.LastUsedAt)))
	b.WriteString("Properties:\n")
	for _, k := range sortedKeys(img.Properties) {
		fmt.Fprintf(&b, "    %s: %s\n", k, img.Properties[k])
	}
	b.WriteString("Aliases:\n")
	for _, al := range img.Aliases {
		if al.Description != "" {
			fmt.Fprintf(&b, "    - %s (%s)\n", al.Name, al.Description)
		} else {
			fmt.Fprintf(&b, "    - %s\n", al.Name)
		}
	}
	fmt.Fprintf(&b, "Cached: %s\n", strings.ToLower(yesNo(img.Cached)))
	autoUpdate := "disabled"
	if img.AutoUpdate {
		autoUpdate = "enabled"
	}
	fmt.Fprintf(&b, "Auto update: %s\n", autoUpdate)
	if len(img.Profiles) > 0 {
		b.WriteString("Profiles:\n")
		for _, p := range img.Profiles {
			fmt.Fprintf(&b, "    - %s\n", p)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newImageShowCmd(a *app) *cobra.Command {
	return showCmd(a, &cobra.Command{Use: "show IMAGE", Short: "Show an image's writable properties as YAML"},
		func(ctx context.Context, c *client.Client, ref string) (any, error) {
			img, err := getImage(ctx, c, ref)
			if err != nil {
				return nil, err
			}
			return img.ImagePut, nil
		})
}

func newImageDeleteCmd(a *app) *cobra.Command {
	return deleteCmd(a, &cobra.Command{Use: "delete IMAGE...", Short: "Delete images"},
		func(ctx context.Context, c *client.Client, ref string) error {
			fp, err := resolveImage(ctx, c, ref)
			if err != nil {
				return err
			}
			op, err := c.DeleteImage(ctx, fp)
			if err != nil {
				return err
			}
			return op.Wait(ctx)
		})
}

func newImageAliasCmd(a *app) *cobra.Command {
	cmd := groupCmd("alias", "Manage image aliases")
	cmd.AddCommand(
		newImageAliasCreateCmd(a),
		newImageAliasDeleteCmd(a),
		newImageAliasListCmd(a),
		newImageAliasRenameCmd(a),
	)
	return cmd
}

func newImageAliasCreateCmd(a *app) *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "create ALIAS FINGERPRINT",
		Short: "Create an image alias",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			// Fetch the image so that a fingerprint prefix is stored as
			// the full fingerprint, and a typo fails here.
			img, _, err := c.GetImage(ctx, args[1])
			if err != nil {
				// The daemon's message names the image already.
				return err
			}
			req := api.ImageAliasesPost{}
			req.Name = args[0]
			req.Target = img.Fingerprint
			req.Description = description
			req.Type = img.Type
			return c.CreateImageAlias(ctx, req)
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "alias description")
	return cmd
}

func newImageAliasDeleteCmd(a *app) *cobra.Command {
	return deleteCmd(a, &cobra.Command{Use: "delete ALIAS...", Short: "Delete image aliases (not the images)"},
		func(ctx context.Context, c *client.Client, name string) error {
			return c.DeleteImageAlias(ctx, name)
		})
}

func newImageAliasListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{Use: "list [FILTER...]", Short: "List image aliases"}, aliasListing)
}

var aliasListing = listing[api.ImageAliasesEntry]{
	header: []string{"ALIAS", "FINGERPRINT", "TYPE", "DESCRIPTION"},
	fetch: func(ctx context.Context, c *client.Client) ([]api.ImageAliasesEntry, error) {
		return c.GetImageAliases(ctx)
	},
	// A FILTER keeps the aliases starting with it.
	filter: func(aliases []api.ImageAliasesEntry, filters []string) []api.ImageAliasesEntry {
		return slices.DeleteFunc(aliases, func(al api.ImageAliasesEntry) bool {
			return !slices.ContainsFunc(filters, func(f string) bool { return strings.HasPrefix(al.Name, f) })
		})
	},
	compare: func(a, b api.ImageAliasesEntry) int { return strings.Compare(a.Name, b.Name) },
	row: func(al api.ImageAliasesEntry) []string {
		return []string{al.Name, shortFingerprint(al.Target), strings.ToUpper(instanceTypeOr(al.Type)), al.Description}
	},
}

func newImageAliasRenameCmd(a *app) *cobra.Command {
	return renameCmd(a, &cobra.Command{Use: "rename OLD NEW", Short: "Rename an image alias"},
		func(ctx context.Context, c *client.Client, from, to string) error {
			return c.RenameImageAlias(ctx, from, to)
		})
}
