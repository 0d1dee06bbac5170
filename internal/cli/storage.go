package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// Storage pools and their volumes, as lxc storage and lxc storage volume.

func newStorageCmd(a *app) *cobra.Command {
	cmd := groupCmd("storage", "Manage storage pools and volumes")
	cmd.AddCommand(
		newStorageListCmd(a),
		newStorageShowCmd(a),
		newStorageCreateCmd(a),
		newStorageEditCmd(a),
		newStorageSetCmd(a),
		newStorageUnsetCmd(a),
		newStorageGetCmd(a),
		newStorageDeleteCmd(a),
		newStorageInfoCmd(a),
		newStorageVolumeCmd(a),
	)
	return cmd
}

var poolListing = listing[api.StoragePool]{
	header: []string{"NAME", "DRIVER", "SOURCE", "DESCRIPTION", "USED BY", "STATE"},
	fetch: func(ctx context.Context, c *client.Client) ([]api.StoragePool, error) {
		return c.GetStoragePools(ctx)
	},
	compare: func(a, b api.StoragePool) int { return strings.Compare(a.Name, b.Name) },
	row: func(p api.StoragePool) []string {
		return []string{p.Name, p.Driver, p.Config["source"], p.Description, strconv.Itoa(len(p.UsedBy)), strings.ToUpper(p.Status)}
	},
}

func newStorageListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{Use: "list", Short: "List storage pools",
		Long: "List the storage pools, as lxc storage list."}, poolListing)
}

// poolPutView fills a nil config so YAML shows "config: {}".
func poolPutView(put api.StoragePoolPut) api.StoragePoolPut {
	if put.Config == nil {
		put.Config = map[string]string{}
	}
	return put
}

func newStorageShowCmd(a *app) *cobra.Command {
	return showCmd(a, &cobra.Command{Use: "show POOL", Short: "Show a storage pool as YAML"},
		func(ctx context.Context, c *client.Client, name string) (any, error) {
			p, _, err := c.GetStoragePool(ctx, name)
			if err != nil {
				return nil, err
			}
			v := *p
			v.StoragePoolPut = poolPutView(p.StoragePoolPut)
			if v.UsedBy == nil {
				v.UsedBy = []string{}
			}
			return v, nil
		})
}

func newStorageCreateCmd(a *app) *cobra.Command {
	var description string
	cmd := &cobra.Command{
		Use:   "create POOL DRIVER [KEY=VALUE...]",
		Short: "Create a storage pool",
		Long: "Create a storage pool with DRIVER: dir (a directory; source=PATH, else under\n" +
			"the data dir) or btrfs (source=DEVICE or source=DIRECTORY, else a loop file\n" +
			"of size=SIZE under the data dir).\n\n" +
			"When standard input is a pipe or a file, it is read as the pool's YAML\n" +
			"(config, description); KEY=VALUE arguments are added to it.",
		Example: "  hangar storage create fast btrfs size=20GiB\n" +
			"  hangar storage create disk2 btrfs source=/dev/sdb\n" +
			"  hangar storage create scratch dir source=/srv/scratch",
		Args: minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := api.StoragePoolsPost{Name: args[0], Driver: args[1]}
			if err := a.readBody(&req.StoragePoolPut); err != nil {
				return err
			}
			if err := addSettings(cmd, &req.Config, args[2:]); err != nil {
				return err
			}
			if cmd.Flags().Changed("description") {
				req.Description = description
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.CreateStoragePool(cmd.Context(), req); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Storage pool %s created\n", args[0])
			return nil
		},
	}
	cmd.Flags().StringVar(&description, "description", "", "pool description")
	return cmd
}

func newStorageEditCmd(a *app) *cobra.Command {
	return editCmd(a, &cobra.Command{
		Use:   "edit POOL",
		Short: "Edit a storage pool as YAML",
		Long: "Edit a storage pool's description and config as YAML.\n\n" +
			"Opens $VISUAL, $EDITOR or vi; when standard input is not a terminal,\n" +
			"the new pool is read from it instead.",
	}, editing[api.StoragePoolPut]{
		what: func(name string) string { return "storage pool " + name },
		get: func(ctx context.Context, c *client.Client, name string) (api.StoragePoolPut, string, error) {
			p, etag, err := c.GetStoragePool(ctx, name)
			if err != nil {
				return api.StoragePoolPut{}, "", err
			}
			return poolPutView(p.StoragePoolPut), etag, nil
		},
		put: func(ctx context.Context, c *client.Client, name string, put api.StoragePoolPut, etag string) error {
			return c.UpdateStoragePool(ctx, name, put, etag)
		},
	})
}

func newStorageSetCmd(a *app) *cobra.Command {
	cmd := newSetCmd(a, "storage pool", updatePoolConfig)
	cmd.Use = "set POOL KEY=VALUE...|KEY VALUE"
	cmd.Example = "  hangar storage set fast size=40GiB"
	return cmd
}

func newStorageUnsetCmd(a *app) *cobra.Command {
	cmd := newUnsetCmd(a, "storage pool", updatePoolConfig)
	cmd.Use = "unset POOL KEY"
	return cmd
}

// updatePoolConfig changes a pool's config with an ETag-guarded
// read-modify-write.
func updatePoolConfig(ctx context.Context, c *client.Client, name string, change func(map[string]string) (map[string]string, error)) error {
	p, etag, err := c.GetStoragePool(ctx, name)
	if err != nil {
		return err
	}
	put := p.StoragePoolPut
	if put.Config, err = change(put.Config); err != nil {
		return err
	}
	return c.UpdateStoragePool(ctx, name, put, etag)
}

func newStorageGetCmd(a *app) *cobra.Command {
	cmd := newGetCmd(a, "storage pool", func(ctx context.Context, c *client.Client, name string) (map[string]string, error) {
		p, _, err := c.GetStoragePool(ctx, name)
		if err != nil {
			return nil, err
		}
		return p.Config, nil
	})
	cmd.Use = "get POOL KEY"
	return cmd
}

func newStorageDeleteCmd(a *app) *cobra.Command {
	return deleteCmd(a, &cobra.Command{Use: "delete POOL...", Short: "Delete storage pools"},
		func(ctx context.Context, c *client.Client, name string) error {
			if err := c.DeleteStoragePool(ctx, name); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Storage pool %s deleted\n", name)
			return nil
		})
}

func newStorageInfoCmd(a *app) *cobra.Command {
	var bytes bool
	cmd := &cobra.Command{
		Use:   "info POOL",
		Short: "Show a storage pool's space and users",
		Long: "Show a storage pool's driver, space and inodes (used and total, read from\n" +
			"the driver) and what uses it, as lxc storage info.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			p, _, err := c.GetStoragePool(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			res, err := c.GetStoragePoolResources(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return renderYAML(a.out, poolInfo(p, res, bytes))
		},
	}
	cmd.Flags().BoolVar(&bytes, "bytes", false, "show sizes in bytes")
	return cmd
}

// poolInfo is what lxc storage info prints, with the inodes: an "info"
// map and the users grouped by kind (the volumes by name).
func poolInfo(p *api.StoragePool, res *api.StoragePoolResources, bytes bool) map[string]any {
	size := func(n uint64) string {
		if bytes {
			return strconv.FormatUint(n, 10)
		}
		return formatBytes(int64(n))
	}
	info := map[string]string{
		"name":         p.Name,
		"driver":       p.Driver,
		"description":  p.Description,
		"space used":   size(res.Space.Used),
		"total space":  size(res.Space.Total),
		"inodes used":  strconv.FormatUint(res.Inodes.Used, 10),
		"total inodes": strconv.FormatUint(res.Inodes.Total, 10),
	}
	usedBy := map[string][]string{}
	for _, u := range p.UsedBy {
		kind, what, ok := usedByEntry(u)
		if ok {
			usedBy[kind] = append(usedBy[kind], what)
		}
	}
	return map[string]any{"info": info, "used by": usedBy}
}

// usedByEntry splits a used_by URL into lxc's kind and name:
// /1.0/instances/c1 is (instances, c1), a volume's
// /1.0/storage-pools/P/volumes/TYPE/NAME is (volumes, NAME).
func usedByEntry(u string) (kind, name string, ok bool) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", "", false
	}
	fields := strings.Split(strings.TrimPrefix(parsed.Path, "/1.0/"), "/")
	switch {
	case len(fields) >= 5 && fields[0] == "storage-pools":
		return "volumes", fields[4], true
	case len(fields) >= 2:
		return fields[0], fields[1], true
	}
	return "", "", false
}

// Volumes.

func newStorageVolumeCmd(a *app) *cobra.Command {
	cmd := groupCmd("volume", "Manage storage volumes")
	cmd.Long = "Manage storage volumes. A volume is named [TYPE/]NAME, TYPE being custom\n" +
		"(the default), container, virtual-machine or image, as in lxc."
	cmd.AddCommand(
		newVolumeListCmd(a),
		newVolumeShowCmd(a),
		newVolumeCreateCmd(a),
		newVolumeEditCmd(a),
		newVolumeSetCmd(a),
		newVolumeUnsetCmd(a),
		newVolumeGetCmd(a),
		newVolumeDeleteCmd(a),
		newVolumeRenameCmd(a),
		newVolumeInfoCmd(a),
		newVolumeAttachCmd(a),
		newVolumeDetachCmd(a),
		newVolumeResizeCmd(a),
		newVolumeImportCmd(a),   // storage_import.go
		newVolumeSnapshotCmd(a), // snapshot.go
	)
	return cmd
}

// volumeTypes are the types a volume argument may start with.
var volumeTypes = []string{api.StorageVolumeTypeCustom, api.StorageVolumeTypeImage, api.StorageVolumeTypeContainer, api.StorageVolumeTypeVM}

// parseVolume splits a volume argument as lxc does: "TYPE/NAME" with a
// known type, else a custom volume of that name.
func parseVolume(arg string) (typ, name string) {
	if t, n, ok := strings.Cut(arg, "/"); ok && slices.Contains(volumeTypes, t) {
		return t, n
	}
	return api.StorageVolumeTypeCustom, arg
}

var volumeListing = listing[api.StorageVolume]{
	header: []string{"TYPE", "NAME", "DESCRIPTION", "CONTENT-TYPE", "USED BY"},
	compare: func(a, b api.StorageVolume) int {
		if c := strings.Compare(a.Type, b.Type); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	},
	row: func(v api.StorageVolume) []string {
		ct := v.ContentType
		if ct == "" {
			ct = api.StorageContentTypeFilesystem
		}
		return []string{v.Type, v.Name, v.Description, ct, strconv.Itoa(len(v.UsedBy))}
	},
}

func newVolumeListCmd(a *app) *cobra.Command {
	return listUnderCmd(a, &cobra.Command{Use: "list POOL", Aliases: []string{"ls"}, Short: "List a pool's volumes",
		Long: "List a storage pool's volumes of every type, as lxc storage volume list."},
		volumeListing, func(ctx context.Context, c *client.Client, pool string) ([]api.StorageVolume, error) {
			return c.GetStoragePoolVolumes(ctx, pool)
		})
}

// volumeView fills nil fields so YAML shows "config: {}" and "used_by: []".
func volumeView(v api.StorageVolume) api.StorageVolume {
	if v.Config == nil {
		v.Config = map[string]string{}
	}
	if v.UsedBy == nil {
		v.UsedBy = []string{}
	}
	return v
}

func newVolumeShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show POOL [TYPE/]VOLUME",
		Short: "Show a storage volume as YAML",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			typ, name := parseVolume(args[1])
			v, _, err := c.GetStoragePoolVolume(cmd.Context(), args[0], typ, name)
			if err != nil {
				return err
			}
			return renderYAML(a.out, volumeView(*v))
		},
	}
}

func newVolumeCreateCmd(a *app) *cobra.Command {
	var contentType, description string
	cmd := &cobra.Command{
		Use:   "create POOL VOLUME [KEY=VALUE...]",
		Short: "Create a custom storage volume",
		Long: "Create a custom storage volume on POOL: a filesystem (the default) to mount\n" +
			"in instances, or a block device (--type block) for virtual machines.\n\n" +
			"When standard input is a pipe or a file, it is read as the volume's YAML\n" +
			"(config, description); KEY=VALUE arguments are added to it.",
		Example: "  hangar storage volume create default data size=1GiB\n" +
			"  hangar storage volume create default shared security.shifted=true\n" +
			"  hangar storage volume create fast disk1 size=10GiB --type block",
		Args: minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if contentType == api.StorageContentTypeISO {
				return usageErrorf(cmd, "--type iso: an ISO volume is imported from its image: hangar storage volume import POOL FILE NAME --type=iso")
			}
			if contentType != api.StorageContentTypeFilesystem && contentType != api.StorageContentTypeBlock {
				return usageErrorf(cmd, "invalid --type %q: filesystem or block", contentType)
			}
			typ, name := parseVolume(args[1])
			req := api.StorageVolumesPost{Name: name, Type: typ, ContentType: contentType}
			if err := a.readBody(&req.StorageVolumePut); err != nil {
				return err
			}
			if err := addSettings(cmd, &req.Config, args[2:]); err != nil {
				return err
			}
			if cmd.Flags().Changed("description") {
				req.Description = description
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.CreateStoragePoolVolume(cmd.Context(), args[0], req); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Storage volume %s created\n", args[1])
			return nil
		},
	}
	cmd.Flags().StringVar(&contentType, "type", api.StorageContentTypeFilesystem, "content type: filesystem or block")
	cmd.Flags().StringVar(&description, "description", "", "volume description")
	return cmd
}

func newVolumeEditCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "edit POOL [TYPE/]VOLUME",
		Short: "Edit a storage volume as YAML",
		Long: "Edit a storage volume's description and config as YAML.\n\n" +
			"Opens $VISUAL, $EDITOR or vi; when standard input is not a terminal,\n" +
			"the new volume is read from it instead.",
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			pool := args[0]
			typ, name := parseVolume(args[1])
			v, etag, err := c.GetStoragePoolVolume(ctx, pool, typ, name)
			if err != nil {
				return err
			}
			return a.editYAML(ctx, "storage volume "+typ+"/"+name, volumeView(*v).StorageVolumePut, func(data []byte) error {
				var put api.StorageVolumePut
				if err := decodeYAML(data, &put); err != nil {
					return err
				}
				return c.UpdateStoragePoolVolume(ctx, pool, typ, name, put, etag)
			})
		},
	}
}

// updateVolumeConfig changes a volume's config with an ETag-guarded
// read-modify-write.
func updateVolumeConfig(ctx context.Context, c *client.Client, pool, arg string, change func(map[string]string) (map[string]string, error)) error {
	typ, name := parseVolume(arg)
	v, etag, err := c.GetStoragePoolVolume(ctx, pool, typ, name)
	if err != nil {
		return err
	}
	put := v.StorageVolumePut
	if put.Config, err = change(put.Config); err != nil {
		return err
	}
	return c.UpdateStoragePoolVolume(ctx, pool, typ, name, put, etag)
}

func newVolumeSetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "set POOL [TYPE/]VOLUME KEY=VALUE...|KEY VALUE",
		Short:   "Set storage volume configuration keys",
		Long:    "Set storage volume configuration keys. An empty value unsets the key.",
		Example: "  hangar storage volume set default data size=2GiB",
		Args:    minArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			settings, err := parseKeyValues(args[2:])
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			for _, k := range sortedKeys(settings) {
				if settings[k] == "" {
					if err := checkUnsettable(k); err != nil {
						return err
					}
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			return updateVolumeConfig(cmd.Context(), c, args[0], args[1], func(cfg map[string]string) (map[string]string, error) {
				return applySettings(cfg, settings), nil
			})
		},
	}
}

func newVolumeUnsetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "unset POOL [TYPE/]VOLUME KEY",
		Short: "Unset a storage volume configuration key",
		Args:  exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[2]
			if err := checkUnsettable(key); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			return updateVolumeConfig(cmd.Context(), c, args[0], args[1], func(cfg map[string]string) (map[string]string, error) {
				if _, ok := cfg[key]; !ok {
					return nil, fmt.Errorf("can't unset key '%s', it's not currently set", key)
				}
				return applySettings(cfg, map[string]string{key: ""}), nil
			})
		},
	}
}

func newVolumeGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get POOL [TYPE/]VOLUME KEY",
		Short: "Print a storage volume configuration value",
		Args:  exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			typ, name := parseVolume(args[1])
			v, _, err := c.GetStoragePoolVolume(cmd.Context(), args[0], typ, name)
			if err != nil {
				return err
			}
			// An unset key prints an empty line, as in lxc.
			fmt.Fprintln(a.out, v.Config[args[2]])
			return nil
		},
	}
}

func newVolumeDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete POOL [TYPE/]VOLUME...",
		Aliases: []string{"rm"},
		Short:   "Delete storage volumes",
		Args:    minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return forEach(args[1:], func(arg string) error {
				typ, name := parseVolume(arg)
				if err := c.DeleteStoragePoolVolume(cmd.Context(), args[0], typ, name); err != nil {
					return err
				}
				fmt.Fprintf(a.out, "Storage volume %s deleted\n", arg)
				return nil
			})
		},
	}
}

func newVolumeRenameCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rename POOL [custom/]OLD NEW",
		Aliases: []string{"mv"},
		Short:   "Rename a custom storage volume",
		Args:    exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			typ, name := parseVolume(args[1])
			if err := c.RenameStoragePoolVolume(cmd.Context(), args[0], typ, name, args[2]); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Storage volume %s renamed to %s\n", name, args[2])
			return nil
		},
	}
}

func newVolumeInfoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "info POOL [TYPE/]VOLUME",
		Short: "Show a storage volume's usage",
		Long:  "Show a custom or instance volume's type, content type and usage, as lxc storage volume info.",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			typ, name := parseVolume(args[1])
			if typ == api.StorageVolumeTypeImage {
				return errors.New("only instance or custom volumes have usage")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			v, _, err := c.GetStoragePoolVolume(cmd.Context(), args[0], typ, name)
			if err != nil {
				return err
			}
			st, err := c.GetStoragePoolVolumeState(cmd.Context(), args[0], typ, name)
			if err != nil {
				return err
			}
			return renderVolumeInfo(a.out, v, st)
		},
	}
}

// renderVolumeInfo prints what lxc storage volume info prints.
func renderVolumeInfo(w io.Writer, v *api.StorageVolume, st *api.StorageVolumeState) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("Name: %s", v.Name)
	if v.Description != "" {
		p("Description: %s", v.Description)
	}
	p("Type: %s", v.Type)
	ct := v.ContentType
	if ct == "" {
		ct = api.StorageContentTypeFilesystem
	}
	p("Content type: %s", ct)
	if st.Usage != nil {
		p("Usage: %s", formatBytes(int64(st.Usage.Used)))
		if st.Usage.Total > 0 {
			p("Total: %s", formatBytes(st.Usage.Total))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func newVolumeAttachCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "attach POOL VOLUME INSTANCE [DEVICE] [PATH]",
		Short: "Attach a custom storage volume to an instance",
		Long: "Add a disk device for a custom volume to an instance, as lxc storage volume\n" +
			"attach: with three arguments the device is named after the volume and has\n" +
			"no path (a block volume of a virtual machine); with four the last is the\n" +
			"path; with five, the device's name and the path. A running container gets\n" +
			"the volume at once.",
		Example: "  hangar storage volume attach default data c1 /srv/data\n" +
			"  hangar storage volume attach default data c1 shared /srv/data\n" +
			"  hangar storage volume attach fast disk1 vm1",
		Args: rangeArgs(3, 5),
		RunE: func(cmd *cobra.Command, args []string) error {
			devName, dev, err := volumeDisk(args)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			inst, etag, err := c.GetInstance(ctx, args[2])
			if err != nil {
				return err
			}
			if _, ok := inst.Devices[devName]; ok {
				return fmt.Errorf("instance %s already has a device named %s", args[2], devName)
			}
			// A PATCH adds the one device; the ETag makes it fail rather
			// than race a concurrent change that added the same name.
			patch := map[string]any{"devices": map[string]map[string]string{devName: dev}}
			return c.PatchInstance(ctx, args[2], patch, etag)
		},
	}
}

// volumeDisk is the device attach adds for its arguments (POOL VOLUME
// INSTANCE [DEVICE] [PATH]), and its name.
func volumeDisk(args []string) (string, map[string]string, error) {
	typ, name := parseVolume(args[1])
	if typ != api.StorageVolumeTypeCustom {
		return "", nil, errors.New(`only "custom" volumes can be attached to instances`)
	}
	devName, path := name, ""
	switch len(args) {
	case 4:
		path = args[3]
	case 5:
		devName, path = args[3], args[4]
	}
	dev := map[string]string{"type": "disk", "pool": args[0], "source": name}
	if path != "" {
		dev["path"] = path
	}
	return devName, dev, nil
}

func newVolumeDetachCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "detach POOL VOLUME INSTANCE [DEVICE]",
		Short: "Detach a custom storage volume from an instance",
		Long: "Remove the instance's disk device for the volume; DEVICE names it when the\n" +
			"instance has more than one.",
		Args: rangeArgs(3, 4),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			_, name := parseVolume(args[1])
			devName := ""
			if len(args) > 3 {
				devName = args[3]
			}
			return updateInstance(cmd.Context(), c, args[2], func(put *api.InstancePut) error {
				dev, err := diskOf(put.Devices, args[0], name, devName)
				if err != nil {
					return err
				}
				delete(put.Devices, dev)
				return nil
			})
		},
	}
}

// diskOf finds the instance's disk device for volume name of pool: the
// one named devName, or the only one.
func diskOf(devices map[string]map[string]string, pool, name, devName string) (string, error) {
	of := func(d map[string]string) bool {
		return d["type"] == "disk" && d["pool"] == pool && d["source"] == name
	}
	if devName != "" {
		d, ok := devices[devName]
		switch {
		case !ok:
			return "", fmt.Errorf("the instance has no device named %s", devName)
		case !of(d):
			return "", fmt.Errorf("device %s is not volume %s of pool %s", devName, name, pool)
		}
		return devName, nil
	}
	for _, dn := range sortedKeys(devices) {
		if !of(devices[dn]) {
			continue
		}
		if devName != "" {
			return "", fmt.Errorf("more than one device is volume %s of pool %s: give the device's name", name, pool)
		}
		devName = dn
	}
	if devName == "" {
		return "", fmt.Errorf("no device of the instance is volume %s of pool %s", name, pool)
	}
	return devName, nil
}

func newVolumeResizeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "resize POOL [TYPE/]VOLUME SIZE",
		Short: "Resize a storage volume",
		Long: "Set a volume's size (its quota, or a block volume's length), as\n" +
			"`hangar storage volume set POOL VOLUME size=SIZE` does.",
		Example: "  hangar storage volume resize default data 2GiB",
		Args:    exactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			size := args[2]
			if size == "" {
				return usageErrorf(cmd, "empty size")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			return updateVolumeConfig(cmd.Context(), c, args[0], args[1], func(cfg map[string]string) (map[string]string, error) {
				return applySettings(cfg, map[string]string{"size": size}), nil
			})
		},
	}
}
