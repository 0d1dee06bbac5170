package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// hangarHome is a hangar CLI with a config dir (HANGAR_CONF: remotes,
// client certificate) of its own, running in the daemon's network
// namespace so that it reaches the daemon's 127.0.0.1: another user on
// another machine, as far as hangard can tell. Its --socket names no
// daemon, so everything it does goes over HTTPS.
type hangarHome struct {
	d    *daemon
	conf string
}

func (d *daemon) newHangarHome(t *testing.T) *hangarHome {
	t.Helper()
	return &hangarHome{d: d, conf: t.TempDir()}
}

func (h *hangarHome) run(args ...string) (stdout, stderr string, code int) {
	h.d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), lxcTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + h.d.netns, "--",
		filepath.Join(binDir, "hangar"), "--socket", filepath.Join(h.conf, "no-daemon.sock")}, args...)...)
	env := []string{"HANGAR_CONF=" + h.conf}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HANGAR_") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.WaitDelay = time.Second
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		h.d.t.Fatalf("hangar %s: no answer after %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), lxcTimeout, o.String(), e.String())
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		h.d.t.Fatalf("run hangar %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

func (h *hangarHome) must(args ...string) string {
	h.d.t.Helper()
	out, errOut, code := h.run(args...)
	if code != 0 {
		h.d.t.Fatalf("hangar %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (h *hangarHome) mustFail(t *testing.T, want string, args ...string) {
	t.Helper()
	out, errOut, code := h.run(args...)
	if code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("hangar %s: exit %d, stderr %q (stdout %q), want a failure saying %q", strings.Join(args, " "), code, errOut, out, want)
	}
}

// hangarToken asks for a trust token with `hangar config trust add` over
// the unix socket, as the host's admin does.
func (d *daemon) hangarToken(args ...string) string {
	d.t.Helper()
	tok := strings.TrimSpace(d.must(append([]string{"config", "trust", "add", "-q"}, args...)...))
	if _, err := api.DecodeCertificateAddToken(tok); err != nil {
		d.t.Fatalf("hangar config trust add printed %q: %v", tok, err)
	}
	return tok
}

func TestRemoteCLI(t *testing.T) {
	d := startDaemon(t, "")
	c := d.client()
	// The way: the server key through the CLI.
	d.must("config", "set", "core.https_address", httpsAddr)
	if got := strings.TrimSpace(d.must("config", "get", "core.https_address")); got != httpsAddr {
		t.Fatalf("hangar config get core.https_address = %q, want %q", got, httpsAddr)
	}
	d.must("image", "import", imageTarball, "--alias", "busybox", "--os", "busybox")

	out := d.must("config", "trust", "add", "alice")
	tok := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if !strings.HasPrefix(out, "Client alice certificate add token:\n") {
		t.Fatalf("hangar config trust add alice:\n%s", out)
	}
	if out := d.must("config", "trust", "list-tokens", "-f", "csv"); !strings.Contains(out, "alice,"+tok) {
		t.Fatalf("list-tokens does not show alice's token:\n%s", out)
	}

	alice := d.newHangarHome(t)
	t.Run("token", func(t *testing.T) {
		if out := alice.must("remote", "add", "h", tok); !strings.Contains(out, "https://"+httpsAddr) {
			t.Errorf("remote add: %q", out)
		}
		for _, f := range []string{"client.crt", "client.key", "servercerts/h.crt"} {
			if _, err := os.Stat(filepath.Join(alice.conf, f)); err != nil {
				t.Errorf("after remote add: %v", err)
			}
		}
		if out := d.must("config", "trust", "list-tokens", "-f", "csv"); strings.Contains(out, "alice") {
			t.Errorf("a used token is still listed:\n%s", out)
		}
		certs := d.must("config", "trust", "list", "-f", "csv")
		if !strings.Contains(certs, "client,alice,") {
			t.Errorf("trust list after the token:\n%s", certs)
		}
		if out := alice.must("remote", "list", "-f", "csv"); !strings.Contains(out, "h,https://"+httpsAddr+",tls") {
			t.Errorf("remote list:\n%s", out)
		}
		alice.must("list", "h:")
		alice.must("launch", "busybox", "h:c1")
		if out := alice.must("list", "h:", "-f", "csv"); !strings.Contains(out, "c1,RUNNING,") {
			t.Errorf("hangar list h: after launch:\n%s", out)
		}
		if out := alice.must("exec", "h:c1", "--", "echo", "hi"); out != "hi\n" {
			t.Errorf("hangar exec over TLS: %q", out)
		}
		if out := alice.must("info", "h:c1"); !strings.Contains(out, "Name: c1") || !strings.Contains(out, "RUNNING") {
			t.Errorf("hangar info h:c1:\n%s", out)
		}
		// The default remote serves commands without a prefix.
		alice.must("remote", "switch", "h")
		if out := alice.must("list", "-f", "csv"); !strings.Contains(out, "c1,RUNNING,") {
			t.Errorf("hangar list with h as the default remote:\n%s", out)
		}
		alice.mustFail(t, "default remote", "remote", "remove", "h")
		alice.must("remote", "switch", "local")
	})

	t.Run("bad input", func(t *testing.T) {
		bob := d.newHangarHome(t)
		bob.mustFail(t, "already been used", "remote", "add", "h", tok)
		bob.mustFail(t, "neither a trust token", "remote", "add", "h", "notatoken")
		bob.mustFail(t, `remote "nope" doesn't exist`, "list", "nope:")
		bob.mustFail(t, `remote "nope" doesn't exist`, "exec", "nope:c1", "--", "true")
		bob.mustFail(t, `remote "nope" doesn't exist`, "launch", "busybox", "nope:c2")
		// A token whose fingerprint is not the server's is never sent to
		// it: the address may be someone else's.
		forged := api.CertificateAddToken{ClientName: "bob", Fingerprint: strings.Repeat("ab", 32),
			Addresses: []string{httpsAddr}, Secret: "s3cret"}
		bob.mustFail(t, "not the expected "+strings.Repeat("ab", 32), "remote", "add", "h", forged.String())
		if out := bob.must("remote", "list", "-f", "csv"); strings.Contains(out, "h,") {
			t.Errorf("failed remote adds left a remote:\n%s", out)
		}
		// A revoked token is refused by the server.
		gone := d.hangarToken("gone")
		d.must("config", "trust", "revoke-token", "gone")
		if out := d.must("config", "trust", "list-tokens", "-f", "csv"); strings.Contains(out, "gone") {
			t.Errorf("a revoked token is still listed:\n%s", out)
		}
		bob.mustFail(t, "revoked", "remote", "add", "h", gone)
		if _, errOut, code := d.hangar("config", "trust", "revoke-token", "gone"); code == 0 || !strings.Contains(errOut, `no pending trust token for "gone"`) {
			t.Errorf("revoking a token twice: exit %d, %q", code, errOut)
		}
	})

	t.Run("add-certificate", func(t *testing.T) {
		certPEM, _, err := client.GenerateClientCertificate("prometheus")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "prom.crt")
		if err := os.WriteFile(path, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		d.must("config", "trust", "add-certificate", path, "--type", "metrics")
		if out := d.must("config", "trust", "list", "-f", "csv"); !strings.Contains(out, "metrics,prometheus,prometheus,") {
			t.Errorf("trust list after add-certificate:\n%s", out)
		}
		if _, errOut, code := d.hangar("config", "trust", "add-certificate", path, "--type", "metrics"); code == 0 || errOut == "" {
			t.Errorf("adding a certificate twice: exit %d, %q", code, errOut)
		}
		bad := filepath.Join(t.TempDir(), "bad.crt")
		if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := d.hangar("config", "trust", "add-certificate", bad); code == 0 || !strings.Contains(errOut, "not an X.509 certificate") {
			t.Errorf("adding garbage: exit %d, %q", code, errOut)
		}
	})

	t.Run("password", func(t *testing.T) {
		d.must("config", "set", "core.trust_password=s3cret")
		carol := d.newHangarHome(t)
		carol.mustFail(t, "--accept-certificate", "remote", "add", "x", "https://"+httpsAddr, "--password", "s3cret")
		carol.mustFail(t, "wrong trust password", "remote", "add", "x", "https://"+httpsAddr, "--password", "wrong", "--accept-certificate")
		carol.must("remote", "add", "x", "https://"+httpsAddr, "--password", "s3cret", "--accept-certificate")
		if out := carol.must("list", "x:", "-f", "csv"); !strings.Contains(out, "c1,RUNNING,") {
			t.Errorf("hangar list x: %q", out)
		}
	})

	t.Run("restricted", func(t *testing.T) {
		// p1 uses the default project's images; p2 holds an instance
		// the restricted client must not see.
		d.must("project", "create", "p1", "features.images=false", "features.profiles=false")
		d.must("project", "create", "p2", "features.images=false", "features.profiles=false")
		// The harness's clean-up empties the default project only.
		t.Cleanup(func() {
			for _, pi := range [][2]string{{"p1", "rc1"}, {"p2", "secret"}} {
				if _, errOut, code := d.hangar("--project", pi[0], "delete", "--force", pi[1]); code != 0 && !strings.Contains(errOut, "not found") {
					t.Errorf("clean-up: delete %s in %s: %s", pi[1], pi[0], errOut)
				}
			}
		})
		d.must("--project", "p2", "init", "busybox", "secret")
		rtok := d.hangarToken("rita", "--restricted", "--projects", "p1")
		rita := d.newHangarHome(t)
		rita.must("remote", "add", "r", rtok)
		fp := ""
		for _, cert := range mustCertificates(t, c) {
			if cert.Name == "rita" {
				fp = cert.Fingerprint
				if !cert.Restricted || strings.Join(cert.Projects, ",") != "p1" {
					t.Errorf("rita's certificate: restricted %v, projects %v", cert.Restricted, cert.Projects)
				}
			}
		}
		if out := d.must("config", "trust", "show", fp[:12]); !strings.Contains(out, "name: rita") || !strings.Contains(out, "- p1") {
			t.Errorf("trust show:\n%s", out)
		}
		rita.must("--project", "p1", "launch", "busybox", "r:rc1")
		if out := rita.must("--project", "p1", "exec", "r:rc1", "--", "echo", "in p1"); out != "in p1\n" {
			t.Errorf("exec in p1: %q", out)
		}
		// The current project of a remote is kept per remote.
		rita.must("remote", "switch", "r")
		rita.must("project", "switch", "p1")
		if out := rita.must("list", "-f", "csv"); !strings.Contains(out, "rc1,RUNNING,") || strings.Contains(out, "secret") || strings.HasPrefix(out, "c1,") || strings.Contains(out, "\nc1,") {
			t.Errorf("rita's list in p1:\n%s", out)
		}
		rita.mustFail(t, "not found", "--project", "p2", "info", "r:secret")
		rita.mustFail(t, "not found", "--project", "p2", "exec", "r:secret", "--", "true")
		if out, _, _ := rita.run("--project", "p2", "list", "r:", "-f", "csv"); strings.Contains(out, "secret") {
			t.Errorf("rita lists p2's instances:\n%s", out)
		}
		rita.mustFail(t, "not found", "--project", "default", "info", "r:c1")
		// Groups: members by certificate name, permissions by entity.
		d.must("auth", "group", "create", "ops", "--description", "operators")
		d.must("auth", "group", "permission", "add", "ops", "instance", "secret", "can_view", "project=p2")
		d.must("auth", "group", "permission", "add", "ops", "server", "viewer")
		if _, errOut, code := d.hangar("auth", "group", "permission", "add", "ops", "server", "viewer"); code == 0 || !strings.Contains(errOut, "already has viewer") {
			t.Errorf("adding a permission twice: exit %d, %q", code, errOut)
		}
		d.must("auth", "identity", "group", "add", "tls/rita", "ops")
		show := d.must("auth", "group", "show", "ops")
		for _, want := range []string{"url: /1.0/instances/secret?project=p2", "entitlement: can_view", "- " + fp, "description: operators"} {
			if !strings.Contains(show, want) {
				t.Errorf("group show lacks %q:\n%s", want, show)
			}
		}
		d.must("auth", "group", "permission", "remove", "ops", "server", "viewer")
		d.must("auth", "identity", "group", "remove", "tls/"+fp, "ops")
		if out := d.must("auth", "group", "list", "-f", "csv"); out != "ops,operators,1,0\n" {
			t.Errorf("group list: %q", out)
		}
		d.must("auth", "group", "rename", "ops", "ops2")
		d.must("auth", "group", "delete", "ops2")
		if _, errOut, code := d.hangar("auth", "group", "show", "ops2"); code == 0 || !strings.Contains(errOut, "not found") {
			t.Errorf("show a deleted group: exit %d, %q", code, errOut)
		}

		// Removing the certificate ends rita's access.
		d.must("config", "trust", "remove", fp)
		rita.mustFail(t, "not authorized", "--project", "p1", "list", "r:")
	})
}

func mustCertificates(t *testing.T, c *client.Client) []api.Certificate {
	t.Helper()
	certs, err := c.GetCertificates(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return certs
}
