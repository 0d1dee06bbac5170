package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// localRemote is the daemon on --socket: always there, never in the
// config file.
const localRemote = "local"

// resolveRemote names the remote a command acts on: the one it was given,
// else the default one, else local.
func resolveRemote(conf userConfig, remote string) string {
	switch {
	case remote != "":
		return remote
	case conf.DefaultRemote != "":
		return conf.DefaultRemote
	}
	return localRemote
}

// projectKey is the key of remote's current project in the config:
// the socket for local (each socket is another daemon), "remote:NAME"
// for a remote.
func (a *app) projectKey(remote string) string {
	if remote == localRemote {
		return a.socket
	}
	return "remote:" + remote
}

// currentProjectKey is projectKey of the remote the command acts on.
func (a *app) currentProjectKey() string {
	conf, _ := loadConfig()
	return a.projectKey(resolveRemote(conf, a.remote))
}

// connectRemote connects to a remote of the config over HTTPS with the
// CLI's client certificate, pinned to the server certificate saved when
// the remote was added.
func connectRemote(conf userConfig, name string) (*client.Client, error) {
	r, ok := conf.Remotes[name]
	if !ok {
		return nil, fmt.Errorf("remote %q doesn't exist (see hangar remote list)", name)
	}
	certPath, err := serverCertPath(name)
	if err != nil {
		return nil, err
	}
	serverCert, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("remote %s: read its pinned server certificate: %w", name, err)
	}
	certPEM, keyPEM, err := clientCertificate()
	if err != nil {
		return nil, err
	}
	c, err := client.ConnectHTTPS(r.Addr, certPEM, keyPEM, serverCert)
	if err != nil {
		return nil, fmt.Errorf("remote %s: %w", name, err)
	}
	return c, nil
}

// splitRemote splits "REMOTE:NAME" into its remote and name; without a
// colon the remote is "" (the default). Instance names never hold a
// colon, so any colon names a remote.
func splitRemote(arg string) (remote, name string) {
	if r, n, ok := strings.Cut(arg, ":"); ok {
		return r, n
	}
	return "", arg
}

// checkRemoteName says why name cannot name a remote.
func checkRemoteName(name string) error {
	switch {
	case name == "":
		return errors.New("remote name must not be empty")
	case strings.ContainsAny(name, ":/\\ \t\n") || strings.HasPrefix(name, "."):
		return fmt.Errorf("invalid remote name %q: no colon, slash, space or leading dot", name)
	}
	return nil
}

// useRemote makes remote (from a REMOTE: prefix) the one the command acts
// on. An unknown remote is an error here, before anything is sent, and
// so is a command whose arguments name two remotes.
func (a *app) useRemote(remote string) error {
	if remote == "" {
		return nil
	}
	if remote != localRemote {
		if err := checkRemoteName(remote); err != nil {
			return err
		}
		conf, err := loadConfig()
		if err != nil {
			return err
		}
		if _, ok := conf.Remotes[remote]; !ok {
			return fmt.Errorf("remote %q doesn't exist (see hangar remote list)", remote)
		}
	}
	if a.remote != "" && a.remote != remote {
		return fmt.Errorf("the arguments name two remotes, %q and %q: one command acts on one remote", a.remote, remote)
	}
	a.remote = remote
	return nil
}

// instanceArg resolves an instance argument's REMOTE: prefix and returns
// the instance name.
func (a *app) instanceArg(arg string) (string, error) {
	remote, name := splitRemote(arg)
	if err := a.useRemote(remote); err != nil {
		return "", err
	}
	return name, nil
}

// imageRemote splits an image argument "REMOTE:ALIAS" when REMOTE is a
// remote; registry references ("oci:...", "host:5000/repo") and anything
// whose prefix is no remote are left whole.
func imageRemote(conf userConfig, arg string) (remote, image string) {
	if _, _, ok := parseRegistryRef(arg); ok {
		return "", arg
	}
	r, img, ok := strings.Cut(arg, ":")
	if !ok {
		return "", arg
	}
	if _, known := conf.Remotes[r]; known || r == localRemote {
		return r, img
	}
	return "", arg
}

func newRemoteCmd(a *app) *cobra.Command {
	cmd := groupCmd("remote", "Manage the remote hangards this client talks to")
	cmd.Long = "Manage remotes: hangards (or LXD servers) reached over HTTPS with this\n" +
		"client's certificate (client.crt in the config dir, made on first use).\n" +
		"Commands act on the default remote (see switch) unless an argument names\n" +
		"one as REMOTE:NAME; \"local\" is the daemon on --socket."
	cmd.AddCommand(newRemoteAddCmd(a), newRemoteListCmd(a), newRemoteRemoveCmd(a), newRemoteSwitchCmd(a), newRemoteGetDefaultCmd(a))
	return cmd
}

// isAddress says whether a remote add argument is meant as an address
// rather than a token: a scheme, a port or a dotted or bracketed host.
func isAddress(s string) bool {
	return strings.Contains(s, "://") || strings.ContainsAny(s, ".:[") || s == "localhost"
}

func newRemoteAddCmd(a *app) *cobra.Command {
	var (
		password string
		accept   bool
	)
	cmd := &cobra.Command{
		Use:   "add NAME TOKEN|[https://]ADDRESS[:PORT]",
		Short: "Add a remote hangard, by trust token or address",
		Long: "Add a remote. With a trust token (from `hangar config trust add` on the\n" +
			"server) the server's certificate is checked against the token's fingerprint\n" +
			"and the token makes the server trust this client's certificate.\n\n" +
			"With an address, the server's certificate is shown for you to accept\n" +
			"(--accept-certificate accepts it without asking) and --password, the\n" +
			"server's core.trust_password, makes it trust this client; a client it\n" +
			"already trusts needs none. The port defaults to 8443.",
		Example: "  hangar remote add prod eyJjbGllbnRfbmFtZSI6...\n" +
			"  hangar remote add lab https://10.0.0.5:8443 --password s3cret --accept-certificate",
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, target := args[0], strings.TrimSpace(args[1])
			if err := checkRemoteName(name); err != nil {
				return usageErrorf(cmd, "%v", err)
			}
			if name == localRemote {
				return usageErrorf(cmd, "%q is the local daemon's name: pick another", name)
			}
			conf, err := loadConfig()
			if err != nil {
				return err
			}
			if _, ok := conf.Remotes[name]; ok {
				return fmt.Errorf("remote %s exists already (remove it first)", name)
			}
			certPEM, keyPEM, err := clientCertificate()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var remote *client.Remote
			_, tokErr := api.DecodeCertificateAddToken(target)
			switch {
			case tokErr == nil:
				if password != "" {
					return usageErrorf(cmd, "--password goes with an address, not with a token")
				}
				remote, err = client.AddRemoteWithToken(ctx, target, certPEM, keyPEM)
			case isAddress(target):
				remote, err = a.addRemoteByAddress(ctx, name, target, password, accept, certPEM, keyPEM)
			default:
				return usageErrorf(cmd, "%q is neither a trust token (%v) nor an address (write https://%s for a host name)", target, tokErr, target)
			}
			if err != nil {
				return err
			}
			defer remote.Client.Close()
			certPath, err := serverCertPath(name)
			if err != nil {
				return err
			}
			if err := writeConfigFile(certPath, remote.ServerCertPEM, 0o644); err != nil {
				return fmt.Errorf("save the server certificate: %w", err)
			}
			// Read again: the config may have changed while the server
			// was asked (another hangar command).
			if conf, err = loadConfig(); err != nil {
				return err
			}
			conf.Remotes[name] = remoteConfig{Addr: remote.Addr}
			if err := saveConfig(conf); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Remote %s added: https://%s\n", name, remote.Addr)
			return nil
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "the server's trust password (core.trust_password)")
	cmd.Flags().BoolVar(&accept, "accept-certificate", false, "accept the server's certificate without asking")
	return cmd
}

// addRemoteByAddress has the server at target trust this client with the
// trust password, once its certificate was accepted.
func (a *app) addRemoteByAddress(ctx context.Context, name, target, password string, accept bool, certPEM, keyPEM []byte) (*client.Remote, error) {
	addr, err := client.NormalizeAddr(target)
	if err != nil {
		return nil, err
	}
	cert, err := client.GetServerCertificate(ctx, addr)
	if err != nil {
		return nil, err
	}
	fp := client.CertificateFingerprint(cert.Raw)
	if !accept {
		if !isTerminal(a.in) {
			return nil, fmt.Errorf("the certificate of %s (fingerprint %s) is not known: check it and add --accept-certificate", addr, fp)
		}
		fmt.Fprintf(a.out, "Certificate fingerprint: %s\nok (y/n)? ", fp)
		line, _ := bufio.NewReader(a.in).ReadString('\n')
		if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
			return nil, errors.New("server certificate refused")
		}
	}
	return client.AddRemoteWithPassword(ctx, addr, password, certPEM, keyPEM, client.EncodeCertificatePEM(cert.Raw))
}

// remoteRow is one line of remote list.
type remoteRow struct {
	Name    string `json:"name" yaml:"name"`
	URL     string `json:"url" yaml:"url"`
	Auth    string `json:"auth_type" yaml:"auth_type"`
	Current bool   `json:"current" yaml:"current"`
}

func newRemoteListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{Use: "list", Short: "List remotes"}, listing[remoteRow]{
		header: []string{"NAME", "URL", "AUTH TYPE"},
		fetch: func(context.Context, *client.Client) ([]remoteRow, error) {
			return a.remoteRows()
		},
		noClient: true,
		compare: func(x, y remoteRow) int {
			// local first, as lxc lists it among the others.
			if (x.Name == localRemote) != (y.Name == localRemote) {
				if x.Name == localRemote {
					return -1
				}
				return 1
			}
			return strings.Compare(x.Name, y.Name)
		},
		row: func(r remoteRow) []string {
			name := r.Name
			if r.Current {
				name += " (current)"
			}
			return []string{name, r.URL, r.Auth}
		},
	})
}

func (a *app) remoteRows() ([]remoteRow, error) {
	conf, err := loadConfig()
	if err != nil {
		return nil, err
	}
	cur := resolveRemote(conf, "")
	rows := []remoteRow{{Name: localRemote, URL: "unix://" + a.socket, Auth: "file access", Current: cur == localRemote}}
	for name, r := range conf.Remotes {
		rows = append(rows, remoteRow{Name: name, URL: "https://" + r.Addr, Auth: "tls", Current: cur == name})
	}
	return rows, nil
}

func newRemoteRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Remove a remote",
		Long: "Remove a remote from this client's config. The server still trusts this\n" +
			"client's certificate until its admin removes it (hangar config trust remove).",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if name == localRemote {
				return fmt.Errorf("the local remote cannot be removed")
			}
			conf, err := loadConfig()
			if err != nil {
				return err
			}
			if _, ok := conf.Remotes[name]; !ok {
				return fmt.Errorf("remote %q doesn't exist", name)
			}
			if conf.DefaultRemote == name {
				return fmt.Errorf("remote %s is the default remote: switch to another first", name)
			}
			delete(conf.Remotes, name)
			delete(conf.Projects, a.projectKey(name))
			if err := saveConfig(conf); err != nil {
				return err
			}
			certPath, err := serverCertPath(name)
			if err != nil {
				return err
			}
			if err := os.Remove(certPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove the server certificate: %w", err)
			}
			return nil
		},
	}
}

func newRemoteSwitchCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "switch NAME",
		Short: "Make a remote the default one",
		Long:  "Make a remote the one commands act on when their arguments name none.",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conf, err := loadConfig()
			if err != nil {
				return err
			}
			name := args[0]
			if _, ok := conf.Remotes[name]; !ok && name != localRemote {
				return fmt.Errorf("remote %q doesn't exist (see hangar remote list)", name)
			}
			conf.DefaultRemote = name
			if name == localRemote {
				conf.DefaultRemote = ""
			}
			return saveConfig(conf)
		},
	}
}

func newRemoteGetDefaultCmd(*app) *cobra.Command {
	return &cobra.Command{
		Use:   "get-default",
		Short: "Print the default remote's name",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf, err := loadConfig()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), resolveRemote(conf, ""))
			return err
		},
	}
}
