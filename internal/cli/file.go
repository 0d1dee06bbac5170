package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/client"
)

// maxLinkHops bounds the symlinks pull follows for "-" and -r sources, as lxc.
const maxLinkHops = 255

func newFileCmd(a *app) *cobra.Command {
	cmd := groupCmd("file", "Manage files in instances")
	cmd.Long = "Push, pull, edit and delete files in instances, running or stopped.\n\n" +
		"Paths are as the instance sees them: NAME/PATH names PATH inside instance NAME;\n" +
		"symlinks in it are followed inside the instance and never lead out of it."
	cmd.AddCommand(newFilePushCmd(a), newFilePullCmd(a), newFileDeleteCmd(a), newFileEditCmd(a))
	return cmd
}

// instancePath splits "NAME/PATH" into NAME and the absolute PATH. PATH is
// not cleaned here: the daemon refuses a ".." that climbs above "/", which
// cleaning would silently drop.
func instancePath(arg string) (name, p string, err error) {
	name, rest, ok := strings.Cut(arg, "/")
	if !ok || name == "" {
		return "", "", fmt.Errorf("invalid path %q: expected NAME/PATH", arg)
	}
	return name, "/" + rest, nil
}

// joinPath appends a name to an instance path without cleaning it.
func joinPath(dir, name string) string {
	return strings.TrimRight(dir, "/") + "/" + name
}

type pushFlags struct {
	recursive, parents bool
	uid, gid           int
	mode               string
}

func newFilePushCmd(a *app) *cobra.Command {
	var f pushFlags
	cmd := &cobra.Command{
		Use:   "push SOURCE... NAME/PATH",
		Short: "Push files into an instance",
		Long: "Push local files (or - for standard input) into an instance.\n\n" +
			"A target ending in / is a directory the sources go into. As with lxc, the\n" +
			"files keep their local owner and mode unless --uid, --gid or --mode say\n" +
			"otherwise (ids inside the instance); an existing file keeps its own.\n" +
			"-r pushes directory trees (symlinks are pushed as symlinks); -p creates\n" +
			"missing parent directories.",
		Example: "  hangar file push ./app.conf c1/etc/app.conf --mode 0600\n" +
			"  hangar file push -p a.txt b.txt c1/srv/data/\n" +
			"  hangar file push -r ./site c1/var/www/",
		Args: minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return a.push(cmd, c, args[:len(args)-1], args[len(args)-1], f)
		},
	}
	cmd.Flags().BoolVarP(&f.recursive, "recursive", "r", false, "push directory trees")
	cmd.Flags().BoolVarP(&f.parents, "create-dirs", "p", false, "create missing parent directories")
	cmd.Flags().IntVar(&f.uid, "uid", -1, "owner of the pushed files, inside the instance")
	cmd.Flags().IntVar(&f.gid, "gid", -1, "group of the pushed files, inside the instance")
	cmd.Flags().StringVar(&f.mode, "mode", "", "mode of the pushed files, in octal (0644)")
	return cmd
}

func (a *app) push(cmd *cobra.Command, c *client.Client, sources []string, target string, f pushFlags) error {
	ctx := cmd.Context()
	name, dest, err := instancePath(target)
	if err != nil {
		return usageErrorf(cmd, "%v", err)
	}
	intoDir := strings.HasSuffix(target, "/") || path.Clean(dest) == "/"
	var mode os.FileMode
	if f.mode != "" {
		if mode, err = parseMode(f.mode); err != nil {
			return usageErrorf(cmd, "--mode: %v", err)
		}
	}
	for flag, id := range map[string]int{"--uid": f.uid, "--gid": f.gid} {
		if id < -1 || id >= math.MaxUint32 {
			return usageErrorf(cmd, "%s %d: want an id from 0 to %d", flag, id, uint32(math.MaxUint32-1))
		}
	}
	if f.recursive {
		if f.uid != -1 || f.gid != -1 || f.mode != "" {
			return usageErrorf(cmd, "--uid, --gid and --mode cannot be used with --recursive: trees keep their owners and modes")
		}
		if f.parents {
			st, err := os.Stat(sources[0])
			if err != nil {
				return err
			}
			uid, gid := localOwner(st)
			if err := mkdirParents(ctx, c, name, dest, uid, gid, st.Mode()); err != nil {
				return err
			}
		}
		for _, src := range sources {
			if err := pushTree(ctx, c, name, filepath.Clean(src), dest); err != nil {
				return err
			}
		}
		return nil
	}
	if len(sources) > 1 && !intoDir {
		return usageErrorf(cmd, "several sources need a target directory ending in /")
	}
	// Open every source first, so that a typo fails before anything is sent.
	files := make([]*os.File, 0, len(sources))
	defer func() {
		for _, file := range files {
			file.Close()
		}
	}()
	for _, src := range sources {
		if src == "-" {
			if intoDir {
				return usageErrorf(cmd, "standard input needs a target file name, not a directory")
			}
			files = append(files, nil)
			continue
		}
		file, err := os.Open(src)
		if err != nil {
			return err
		}
		files = append(files, file)
	}
	for i, file := range files {
		p := dest
		if intoDir {
			p = joinPath(dest, filepath.Base(sources[i]))
		}
		args := client.InstanceFileArgs{Mode: mode}
		var content io.Reader = a.in
		if file != nil {
			st, err := file.Stat()
			if err != nil {
				return err
			}
			if st.IsDir() {
				return fmt.Errorf("%s is a directory: use --recursive (-r)", sources[i])
			}
			args.UID, args.GID = localOwner(st)
			if f.mode == "" {
				args.Mode = st.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
			}
			content = file
		}
		if f.uid >= 0 {
			args.UID = uint32(f.uid)
		}
		if f.gid >= 0 {
			args.GID = uint32(f.gid)
		}
		if f.parents {
			parent, _ := path.Split(p)
			if err := mkdirParents(ctx, c, name, parent, args.UID, args.GID, 0); err != nil {
				return err
			}
		}
		args.Content = content
		if err := c.CreateInstanceFile(ctx, name, p, args); err != nil {
			return fmt.Errorf("push %s to %s/%s: %w", sources[i], name, strings.TrimPrefix(p, "/"), err)
		}
	}
	return nil
}

// pushTree pushes src (a file, symlink or directory tree) to dest/<base of
// src>, keeping owners and modes, as lxc file push -r.
func pushTree(ctx context.Context, c *client.Client, name, src, dest string) error {
	parent := filepath.Dir(src)
	return filepath.Walk(src, func(p string, st os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(parent, p)
		if err != nil {
			return err
		}
		target := joinPath(dest, filepath.ToSlash(rel))
		uid, gid := localOwner(st)
		args := client.InstanceFileArgs{UID: uid, GID: gid, Mode: st.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)}
		switch {
		case st.IsDir():
			args.Type = client.FileTypeDirectory
		case st.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			args.Type, args.Content = client.FileTypeSymlink, strings.NewReader(link)
		case st.Mode().IsRegular():
			file, err := os.Open(p)
			if err != nil {
				return err
			}
			defer file.Close()
			args.Content = file
		default:
			return fmt.Errorf("%s: only files, directories and symlinks can be pushed", p)
		}
		if err := c.CreateInstanceFile(ctx, name, target, args); err != nil {
			return fmt.Errorf("push %s to %s/%s: %w", p, name, strings.TrimPrefix(target, "/"), err)
		}
		return nil
	})
}

// mkdirParents makes dir and its missing parents in the instance; existing
// ones are left as they are. mode 0 is the daemon's default, as lxc's -p.
func mkdirParents(ctx context.Context, c *client.Client, name, dir string, uid, gid uint32, mode os.FileMode) error {
	parts := strings.FieldsFunc(dir, func(r rune) bool { return r == '/' })
	for i := range parts {
		p := "/" + strings.Join(parts[:i+1], "/")
		args := client.InstanceFileArgs{Type: client.FileTypeDirectory, UID: uid, GID: gid, Mode: mode.Perm()}
		if err := c.CreateInstanceFile(ctx, name, p, args); err != nil {
			return fmt.Errorf("create directory %s/%s: %w", name, strings.TrimPrefix(p, "/"), err)
		}
	}
	return nil
}

// localOwner returns a local file's owner and group.
func localOwner(st os.FileInfo) (uint32, uint32) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Uid, sys.Gid
	}
	return 0, 0
}

// parseMode reads an octal mode: 644, 0644 or 0o644.
func parseMode(s string) (os.FileMode, error) {
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O"), 8, 32)
	if err != nil || v > 0o7777 {
		return 0, fmt.Errorf("%q is not an octal mode such as 0644", s)
	}
	m := os.FileMode(v & 0o777)
	for bit, fm := range map[uint64]os.FileMode{0o4000: os.ModeSetuid, 0o2000: os.ModeSetgid, 0o1000: os.ModeSticky} {
		if v&bit != 0 {
			m |= fm
		}
	}
	return m, nil
}

type pullFlags struct{ recursive, parents bool }

func newFilePullCmd(a *app) *cobra.Command {
	var f pullFlags
	cmd := &cobra.Command{
		Use:   "pull NAME/PATH... TARGET",
		Short: "Pull files from an instance",
		Long: "Pull files from an instance to TARGET, a local file or directory (- for\n" +
			"standard output). -r pulls directory trees; -p creates TARGET's missing\n" +
			"parents. Files keep their mode. A symlink is pulled as a symlink; its\n" +
			"target is absolute as the instance reports it, or relative when -r pulls\n" +
			"what it points to as well.",
		Example: "  hangar file pull c1/etc/hosts .\n" +
			"  hangar file pull c1/etc/os-release -\n" +
			"  hangar file pull -r c1/var/log ./logs/",
		Args: minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return a.pull(cmd, c, args[:len(args)-1], args[len(args)-1], f)
		},
	}
	cmd.Flags().BoolVarP(&f.recursive, "recursive", "r", false, "pull directory trees")
	cmd.Flags().BoolVarP(&f.parents, "create-dirs", "p", false, "create the target's missing parent directories")
	return cmd
}

func (a *app) pull(cmd *cobra.Command, c *client.Client, sources []string, dest string, f pullFlags) error {
	ctx := cmd.Context()
	target := filepath.Clean(dest)
	intoDir := false
	st, err := os.Stat(target)
	switch {
	case dest == "-":
		if len(sources) > 1 || f.recursive {
			return usageErrorf(cmd, "only one file can be pulled to standard output")
		}
	case err == nil:
		intoDir = st.IsDir()
		if !intoDir && len(sources) > 1 {
			return usageErrorf(cmd, "several sources need a target directory")
		}
	case !errors.Is(err, fs.ErrNotExist):
		return err
	case strings.HasSuffix(dest, "/") || len(sources) > 1:
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		intoDir = true
	case f.parents:
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
	}
	for _, src := range sources {
		name, p, err := instancePath(src)
		if err != nil {
			return usageErrorf(cmd, "%v", err)
		}
		r, info, err := c.GetInstanceFile(ctx, name, p)
		if err != nil {
			return fmt.Errorf("pull %s: %w", src, err)
		}
		p = path.Clean(p) // the daemon took it: no ".." climbs out
		if info.Type == client.FileTypeDirectory {
			if !f.recursive {
				return fmt.Errorf("%s is a directory: use --recursive (-r)", src)
			}
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			if err := pullTree(ctx, c, name, p, p, target); err != nil {
				return err
			}
			continue
		}
		local := target
		if intoDir {
			local = filepath.Join(target, path.Base(p))
		}
		if info.Type == client.FileTypeSymlink {
			r.Close()
			if dest != "-" && !f.recursive {
				if err := os.Symlink(info.Target, local); err != nil {
					return err
				}
				continue
			}
			// Standard output and -r want what the link points to.
			var final string
			if r, info, final, err = followLink(ctx, c, name, info.Target); err != nil {
				return fmt.Errorf("pull %s: %w", src, err)
			}
			if info.Type == client.FileTypeDirectory {
				if err := os.MkdirAll(target, 0o755); err != nil {
					return err
				}
				if err := pullTree(ctx, c, name, final, final, target); err != nil {
					return err
				}
				continue
			}
		}
		err = writeLocal(r, local, info.Mode, a.out)
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// followLink gets what a symlink's target finally is, and its path.
func followLink(ctx context.Context, c *client.Client, name, target string) (io.ReadCloser, *client.InstanceFile, string, error) {
	for range maxLinkHops {
		r, info, err := c.GetInstanceFile(ctx, name, target)
		if err != nil || info.Type != client.FileTypeSymlink {
			return r, info, target, err
		}
		r.Close()
		target = info.Target
	}
	return nil, nil, "", fmt.Errorf("%s: too many levels of symbolic links", target)
}

// writeLocal writes a pulled file to local (standard output for "-").
func writeLocal(r io.Reader, local string, mode os.FileMode, stdout io.Writer) error {
	if local == "-" {
		_, err := io.Copy(stdout, r)
		return err
	}
	f, err := os.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", local, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pullTree pulls p (inside the tree rooted at top) into localDir/<base>.
// Symlinks into the tree are made relative so the local copy holds
// together; others keep the absolute target the daemon reports.
func pullTree(ctx context.Context, c *client.Client, name, top, p, localDir string) error {
	r, info, err := c.GetInstanceFile(ctx, name, p)
	if err != nil {
		return fmt.Errorf("pull %s/%s: %w", name, strings.TrimPrefix(p, "/"), err)
	}
	local := filepath.Join(localDir, path.Base(p))
	switch info.Type {
	case client.FileTypeDirectory:
		if err := os.Mkdir(local, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		for _, e := range info.Entries {
			if err := pullTree(ctx, c, name, top, path.Join(p, e), local); err != nil {
				return err
			}
		}
		// Last, so that a read-only directory could still be filled.
		return os.Chmod(local, info.Mode)
	case client.FileTypeSymlink:
		r.Close()
		target := info.Target
		if top != "/" && (target == top || strings.HasPrefix(target, top+"/")) {
			if rel, err := filepath.Rel(path.Dir(p), target); err == nil {
				target = rel
			}
		}
		return os.Symlink(target, local)
	default:
		defer r.Close()
		return writeLocal(r, local, info.Mode, nil)
	}
}

func newFileDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete NAME/PATH...",
		Aliases: []string{"rm"},
		Short:   "Delete files in an instance",
		Long:    "Delete files, symlinks (not what they point to) or empty directories in an instance.",
		Example: "  hangar file delete c1/tmp/scratch",
		Args:    minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			return forEach(args, func(arg string) error {
				name, p, err := instancePath(arg)
				if err != nil {
					return err
				}
				return c.DeleteInstanceFile(cmd.Context(), name, p)
			})
		},
	}
}

func newFileEditCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "edit NAME/PATH",
		Short: "Edit a file in an instance",
		Long: "Edit a file in an instance with $VISUAL, $EDITOR or vi. When standard input\n" +
			"is not a terminal, the file's new content is read from it instead. An\n" +
			"existing file keeps its owner and mode; a new one belongs to the\n" +
			"instance's root.",
		Example: "  hangar file edit c1/etc/hosts\n" +
			"  echo 'nameserver 10.0.0.1' | hangar file edit c1/etc/resolv.conf",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, p, err := instancePath(args[0])
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !isTerminal(a.in) {
				return c.CreateInstanceFile(ctx, name, p, client.InstanceFileArgs{Content: a.in})
			}
			current, err := pullBytes(ctx, c, name, p)
			if err != nil {
				return err
			}
			edited, err := a.runEditor(current)
			if err != nil {
				return err
			}
			if bytes.Equal(edited, current) {
				return nil
			}
			return c.CreateInstanceFile(ctx, name, p, client.InstanceFileArgs{Content: bytes.NewReader(edited)})
		},
	}
}

// pullBytes reads a regular file of an instance; a missing one is empty.
func pullBytes(ctx context.Context, c *client.Client, name, p string) ([]byte, error) {
	r, info, err := c.GetInstanceFile(ctx, name, p)
	if client.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if info.Type != client.FileTypeFile {
		return nil, fmt.Errorf("%s/%s is a %s, not a file", name, strings.TrimPrefix(p, "/"), info.Type)
	}
	return io.ReadAll(r)
}
