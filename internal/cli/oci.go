package cli

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// registryOptions are the flags of commands that may pull from a registry.
type registryOptions struct {
	creds    string
	insecure bool
}

func (o *registryOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.creds, "creds", "", "registry credentials USER:PASSWORD (default: hangard's ~/.docker/config.json)")
	f.BoolVar(&o.insecure, "insecure", false, "use plain HTTP (loopback registries only)")
}

func (o registryOptions) auth() (client.RegistryAuth, error) {
	if o.creds == "" {
		return client.RegistryAuth{}, nil
	}
	user, pass, ok := strings.Cut(o.creds, ":")
	if !ok || user == "" {
		return client.RegistryAuth{}, fmt.Errorf("--creds: want USER:PASSWORD")
	}
	return client.RegistryAuth{Username: user, Password: pass}, nil
}

// parseRegistryRef tells an OCI registry reference from a local alias and
// splits it into registry and repository:tag (or @digest). A reference is
// "oci:" followed by one ("oci:alpine:3.20" is Docker Hub's), or a name
// whose first component is a registry host, as Docker reads them: it has a
// dot or a port, or is localhost ("docker.io/library/alpine:3.20",
// "127.0.0.1:5000/test/app:1"). Anything else is a local alias.
func parseRegistryRef(s string) (server, name string, ok bool) {
	rest, explicit := strings.CutPrefix(s, "oci:")
	first, after, hasSlash := strings.Cut(rest, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first, after, true
	}
	if explicit {
		return "docker.io", rest, true
	}
	return "", "", false
}

// registryServer is the server field for a registry host.
func registryServer(host string, insecure bool) string {
	if insecure {
		return "http://" + host
	}
	return host
}

func newImagePullCmd(a *app) *cobra.Command {
	var reg registryOptions
	var alias string
	var public bool
	cmd := &cobra.Command{
		Use:   "pull REFERENCE",
		Short: "Pull an image from an OCI registry",
		Long: "Pull an image from an OCI registry (Docker Hub, ghcr.io, a registry:2 ...).\n\n" +
			"REFERENCE is [oci:][REGISTRY/]REPOSITORY[:TAG|@DIGEST]; without a registry it is Docker Hub's.\n" +
			"A multi-architecture image resolves to this host's architecture. The image's\n" +
			"fingerprint is its manifest's SHA-256.",
		Example: "  hangar image pull docker.io/library/alpine:3.20 --alias alpine\n" +
			"  hangar image pull 127.0.0.1:5000/test/app:1 --insecure\n" +
			"  hangar image pull oci:ghcr.io/org/app@sha256:... --creds user:token",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			auth, err := reg.auth()
			if err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			server, name, ok := parseRegistryRef(args[0])
			if !ok {
				server, name = "docker.io", args[0]
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			op, err := c.PullImage(ctx, client.ImagePullArgs{
				Server: registryServer(server, reg.insecure), Name: name, Alias: alias, Public: public, Auth: auth,
			})
			if err != nil {
				return err
			}
			if err := a.waitProgress(ctx, op, "Pulling "+args[0]); err != nil {
				return err
			}
			fp := client.ImportedFingerprint(op.Get())
			fmt.Fprintf(a.out, "Image pulled with fingerprint: %s\n", fp)
			return nil
		},
	}
	reg.addFlags(cmd)
	cmd.Flags().StringVar(&alias, "alias", "", "alias to create for the image")
	cmd.Flags().BoolVar(&public, "public", false, "make the image public")
	return cmd
}

// waitProgress waits for an operation, showing the progress its metadata
// carries: a bar redrawn in place on a terminal, a plain line per stage
// and quarter otherwise.
func (a *app) waitProgress(ctx context.Context, op *client.Operation, what string) error {
	f, tty := a.out.(*os.File)
	tty = tty && isTerminal(f)
	p := &progressPrinter{w: a.out, tty: tty, what: what, last: -1}
	err := op.WaitProgress(ctx, 200*time.Millisecond, p.update)
	p.finish()
	return err
}

type progressPrinter struct {
	w     io.Writer
	tty   bool
	what  string
	stage string
	last  int64 // last quarter printed (plain mode)
	drawn bool
}

func (p *progressPrinter) update(op api.Operation) {
	stage, _ := op.Metadata[api.ProgressStage].(string)
	done, _ := op.Metadata[api.ProgressBytes].(float64)
	total, _ := op.Metadata[api.ProgressTotal].(float64)
	if stage == "" {
		return
	}
	pct := int64(-1)
	if total > 0 {
		pct = int64(done * 100 / total)
	}
	line := fmt.Sprintf("%s: %s %s", p.what, stage, humanSize(int64(done)))
	if pct >= 0 {
		line = fmt.Sprintf("%s: %-8s %s %3d%% (%s/%s)", p.what, stage, bar(pct, 24), pct, humanSize(int64(done)), humanSize(int64(total)))
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	if stage != p.stage {
		p.stage, p.last = stage, -1
	}
	if q := pct / 25; pct < 0 || q > p.last {
		if pct >= 0 {
			p.last = q
		}
		fmt.Fprintln(p.w, line)
	}
}

func (p *progressPrinter) finish() {
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func bar(pct int64, width int) string {
	n := int(pct) * width / 100
	n = min(max(n, 0), width)
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "]"
}

// humanSize prints a byte count with a decimal unit, as progress bars do.
func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%cB", float64(n)/float64(div), "kMGTPE"[exp])
}

// tarDirectory streams dir as a tar archive (an OCI layout becomes an OCI
// archive). Symlinks are sent as symlinks; the daemon resolves them
// inside the archive.
func tarDirectory(dir string) (io.ReadCloser, error) {
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return nil, fmt.Errorf("%s is a directory but not an OCI image layout (no oci-layout file)", dir)
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(dir, p)
			if err != nil || rel == "." {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			link := ""
			if info.Mode()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(p); err != nil {
					return err
				}
			}
			hdr, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			hdr.Name = filepath.ToSlash(rel)
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if !info.Mode().IsRegular() {
				return nil
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		})
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}
