package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// newTrustCmd is `hangar config trust`: the server's trust store, as
// `lxc config trust` has it. A REMOTE: prefix on its arguments is not
// taken: it acts on the default remote.
func newTrustCmd(a *app) *cobra.Command {
	cmd := groupCmd("trust", "Manage the clients the server trusts")
	cmd.Long = "Manage trusted client certificates and the one-time tokens that let a new\n" +
		"client (`hangar remote add NAME TOKEN`, `lxc remote add NAME TOKEN`) get its\n" +
		"certificate trusted."
	cmd.AddCommand(
		newTrustAddCmd(a),
		newTrustAddCertificateCmd(a),
		newTrustListCmd(a),
		newTrustShowCmd(a),
		newTrustEditCmd(a),
		newTrustRemoveCmd(a),
		newTrustListTokensCmd(a),
		newTrustRevokeTokenCmd(a),
	)
	return cmd
}

// restrictionFlags are --restricted and --projects of trust add and
// add-certificate.
type restrictionFlags struct {
	restricted bool
	projects   []string
}

func (f *restrictionFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&f.restricted, "restricted", false, "confine the client to the projects of --projects")
	cmd.Flags().StringSliceVar(&f.projects, "projects", nil, "projects a restricted client may use (comma-separated)")
}

// check refuses projects without --restricted, which would silently grant
// every project.
func (f *restrictionFlags) check(cmd *cobra.Command) error {
	if len(f.projects) > 0 && !f.restricted {
		return usageErrorf(cmd, "--projects confines only a --restricted client: add --restricted")
	}
	for _, p := range f.projects {
		if strings.TrimSpace(p) == "" {
			return usageErrorf(cmd, "--projects: empty project name")
		}
	}
	return nil
}

func newTrustAddCmd(a *app) *cobra.Command {
	var (
		name  string
		quiet bool
		r     restrictionFlags
	)
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Make a one-time trust token for a new client",
		Long: "Make a one-time token that lets the client who redeems it have its certificate\n" +
			"trusted under NAME, with the restrictions given here. Tokens live until used,\n" +
			"revoked, expired (core.remote_token_expiry) or the daemon restarts.",
		Example: "  hangar config trust add alice\n  hangar config trust add ci --restricted --projects team-a,team-b",
		Args:    rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && name != "" && name != args[0]:
				return usageErrorf(cmd, "two names given: %q and --name %q", args[0], name)
			case len(args) == 1:
				name = args[0]
			case name == "":
				return usageErrorf(cmd, "missing the client's NAME")
			}
			if err := r.check(cmd); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			tok, err := c.CreateToken(cmd.Context(), client.TokenRequest{Name: name, Restricted: r.restricted, Projects: r.projects})
			if err != nil {
				return err
			}
			if quiet {
				fmt.Fprintln(a.out, tok.String())
				return nil
			}
			fmt.Fprintf(a.out, "Client %s certificate add token:\n%s\n", name, tok.String())
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the client's name (as lxc's --name)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print the token alone")
	r.add(cmd)
	return cmd
}

func newTrustAddCertificateCmd(a *app) *cobra.Command {
	var (
		name, typ string
		r         restrictionFlags
	)
	cmd := &cobra.Command{
		Use:   "add-certificate FILE",
		Short: "Trust a client certificate file",
		Long: "Trust the certificate in FILE (PEM or DER; - reads standard input). Without\n" +
			"--name the certificate's common name names it. --type metrics lets it read\n" +
			"only /1.0/metrics.",
		Example: "  hangar config trust add-certificate alice.crt --name alice\n" +
			"  hangar config trust add-certificate prom.crt --type metrics",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if typ != api.CertificateTypeClient && typ != api.CertificateTypeMetrics {
				return usageErrorf(cmd, "--type %q: want client or metrics", typ)
			}
			if err := r.check(cmd); err != nil {
				return err
			}
			var (
				data []byte
				err  error
			)
			if args[0] == "-" {
				data, err = io.ReadAll(a.in)
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return fmt.Errorf("read certificate: %w", err)
			}
			der, err := client.CertificateDER(data)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			put := api.CertificatePut{Name: name, Type: typ, Restricted: r.restricted, Projects: r.projects}
			if put.Projects == nil {
				put.Projects = []string{}
			}
			fp, err := c.AddCertificate(cmd.Context(), der, put)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "Certificate %s trusted\n", shortFingerprint(fp))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the certificate (default: its common name)")
	cmd.Flags().StringVar(&typ, "type", api.CertificateTypeClient, "client or metrics")
	r.add(cmd)
	return cmd
}

// certificateDetails are what trust list shows of a certificate's PEM.
func certificateDetails(pemText string) (cn, issued, expires string) {
	cert, err := client.ParseCertificatePEM([]byte(pemText))
	if err != nil {
		return "", "", ""
	}
	return cert.Subject.CommonName, formatTime(cert.NotBefore), formatTime(cert.NotAfter)
}

func newTrustListCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{Use: "list", Short: "List trusted certificates"}, listing[api.Certificate]{
		header: []string{"TYPE", "NAME", "COMMON NAME", "FINGERPRINT", "ISSUE DATE", "EXPIRY DATE", "RESTRICTED", "PROJECTS"},
		fetch: func(ctx context.Context, c *client.Client) ([]api.Certificate, error) {
			return c.GetCertificates(ctx)
		},
		compare: func(x, y api.Certificate) int {
			if c := strings.Compare(x.Name, y.Name); c != 0 {
				return c
			}
			return strings.Compare(x.Fingerprint, y.Fingerprint)
		},
		row: func(c api.Certificate) []string {
			cn, issued, expires := certificateDetails(c.Certificate)
			return []string{c.Type, c.Name, cn, shortFingerprint(c.Fingerprint), issued, expires,
				yesNo(c.Restricted), strings.Join(c.Projects, ",")}
		},
	})
}

func newTrustShowCmd(a *app) *cobra.Command {
	return showCmd(a, &cobra.Command{Use: "show FINGERPRINT", Short: "Show a trusted certificate as YAML"},
		func(ctx context.Context, c *client.Client, fp string) (any, error) {
			cert, _, err := c.GetCertificate(ctx, fp)
			if err != nil {
				return nil, err
			}
			if cert.Projects == nil {
				cert.Projects = []string{}
			}
			return cert, nil
		})
}

func newTrustEditCmd(a *app) *cobra.Command {
	return editCmd(a, &cobra.Command{
		Use:   "edit FINGERPRINT",
		Short: "Edit a trusted certificate as YAML",
		Long: "Edit a trusted certificate's name, type, restriction and projects as YAML.\n\n" +
			"Opens $VISUAL, $EDITOR or vi; when standard input is not a terminal,\n" +
			"the new record is read from it instead.",
	}, editing[api.CertificatePut]{
		what: func(fp string) string { return "certificate " + fp },
		get: func(ctx context.Context, c *client.Client, fp string) (api.CertificatePut, string, error) {
			cert, etag, err := c.GetCertificate(ctx, fp)
			if err != nil {
				return api.CertificatePut{}, "", err
			}
			put := cert.CertificatePut
			if put.Projects == nil {
				put.Projects = []string{}
			}
			return put, etag, nil
		},
		put: func(ctx context.Context, c *client.Client, fp string, put api.CertificatePut, etag string) error {
			return c.UpdateCertificate(ctx, fp, put, etag)
		},
	})
}

func newTrustRemoveCmd(a *app) *cobra.Command {
	return deleteCmd(a, &cobra.Command{Use: "remove FINGERPRINT...", Short: "Stop trusting certificates"},
		func(ctx context.Context, c *client.Client, fp string) error {
			return c.DeleteCertificate(ctx, fp)
		})
}

func newTrustListTokensCmd(a *app) *cobra.Command {
	return listCmd(a, &cobra.Command{Use: "list-tokens", Short: "List the pending trust tokens"}, listing[client.TrustToken]{
		header: []string{"NAME", "TOKEN", "EXPIRES AT"},
		fetch: func(ctx context.Context, c *client.Client) ([]client.TrustToken, error) {
			return c.GetTokens(ctx)
		},
		compare: func(x, y client.TrustToken) int { return strings.Compare(x.ClientName, y.ClientName) },
		row: func(t client.TrustToken) []string {
			exp := ""
			if !t.ExpiresAt.IsZero() {
				exp = formatTime(t.ExpiresAt)
			}
			return []string{t.ClientName, t.String(), exp}
		},
	})
}

func newTrustRevokeTokenCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-token NAME",
		Short: "Revoke the pending trust tokens of a client",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			_, err = c.RevokeToken(cmd.Context(), args[0])
			return err
		},
	}
}

// certificateFingerprintOf resolves a tls identity given as a certificate
// name or fingerprint (prefix) to its full fingerprint.
func certificateFingerprintOf(ctx context.Context, c *client.Client, id string) (string, error) {
	certs, err := c.GetCertificates(ctx)
	if err != nil {
		return "", err
	}
	var found []string
	for _, cert := range certs {
		if cert.Name == id || strings.HasPrefix(cert.Fingerprint, strings.ToLower(id)) {
			found = append(found, cert.Fingerprint)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no trusted certificate named %q or with that fingerprint", id)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%q names %d certificates: give more of the fingerprint", id, len(found))
}
