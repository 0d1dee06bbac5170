package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/api"
)

func TestSplitRemote(t *testing.T) {
	tests := []struct{ arg, remote, name string }{
		{"c1", "", "c1"},
		{"prod:c1", "prod", "c1"},
		{"prod:", "prod", ""},
		{":c1", "", "c1"},
		{"a:b:c", "a", "b:c"},
	}
	for _, tt := range tests {
		if r, n := splitRemote(tt.arg); r != tt.remote || n != tt.name {
			t.Errorf("splitRemote(%q) = %q, %q; want %q, %q", tt.arg, r, n, tt.remote, tt.name)
		}
	}
}

func TestListRemoteArg(t *testing.T) {
	tests := []struct {
		arg, remote, filter, err string
	}{
		{"web", "", "web", ""},
		{"prod:", "prod", "", ""},
		{"prod:web", "prod", "web", ""},
		{"user.url=http://x", "", "user.url=http://x", ""},
		{"status=running", "", "status=running", ""},
		{":web", "", "", "empty remote name"},
	}
	for _, tt := range tests {
		r, f, err := listRemoteArg(tt.arg)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("listRemoteArg(%q): error %v, want %q", tt.arg, err, tt.err)
			}
			continue
		}
		if err != nil || r != tt.remote || f != tt.filter {
			t.Errorf("listRemoteArg(%q) = %q, %q, %v; want %q, %q", tt.arg, r, f, err, tt.remote, tt.filter)
		}
	}
}

func TestImageRemote(t *testing.T) {
	conf := userConfig{Remotes: map[string]remoteConfig{"prod": {Addr: "10.0.0.1:8443"}}}
	tests := []struct{ arg, remote, image string }{
		{"busybox", "", "busybox"},
		{"prod:busybox", "prod", "busybox"},
		{"local:busybox", "local", "busybox"},
		// Not a remote: left for the daemon (or the registry code).
		{"unknown:busybox", "", "unknown:busybox"},
		{"oci:alpine", "", "oci:alpine"},
		{"127.0.0.1:5000/test/app:1", "", "127.0.0.1:5000/test/app:1"},
		{"docker.io/library/alpine:3.20", "", "docker.io/library/alpine:3.20"},
	}
	for _, tt := range tests {
		if r, img := imageRemote(conf, tt.arg); r != tt.remote || img != tt.image {
			t.Errorf("imageRemote(%q) = %q, %q; want %q, %q", tt.arg, r, img, tt.remote, tt.image)
		}
	}
}

// withRemotes makes a CLI config dir with the given remotes and default.
func withRemotes(t *testing.T, def string, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv(ConfigEnv, dir)
	conf := userConfig{Projects: map[string]string{}, Remotes: map[string]remoteConfig{}, DefaultRemote: def}
	for _, n := range names {
		conf.Remotes[n] = remoteConfig{Addr: "127.0.0.1:1"}
	}
	if err := saveConfig(conf); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLaunchRemote(t *testing.T) {
	tests := []struct {
		def        string
		args       []string
		wantArgs   []string
		wantRemote string
		err        string
	}{
		{"", []string{"busybox"}, []string{"busybox"}, "", ""},
		{"", []string{"busybox", "c1"}, []string{"busybox", "c1"}, "", ""},
		{"", []string{"busybox", "prod:c1"}, []string{"busybox", "c1"}, "prod", ""},
		{"", []string{"prod:busybox", "prod:c1"}, []string{"busybox", "c1"}, "prod", ""},
		{"", []string{"prod:busybox"}, []string{"busybox"}, "prod", ""},
		{"prod", []string{"prod:busybox", "c1"}, []string{"busybox", "c1"}, "prod", ""},
		{"", []string{"prod:busybox", "c1"}, nil, "", "copies no image between remotes"},
		{"", []string{"prod:busybox", "lab:c1"}, nil, "", "copies no image between remotes"},
		{"", []string{"busybox", "nope:c1"}, nil, "", `remote "nope" doesn't exist`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			withRemotes(t, tt.def, "prod", "lab")
			a := &app{}
			args, err := a.launchRemote(tt.args)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(args, " ") != strings.Join(tt.wantArgs, " ") || a.remote != tt.wantRemote {
				t.Errorf("args %q, remote %q; want %q, %q", args, a.remote, tt.wantArgs, tt.wantRemote)
			}
		})
	}
}

func TestUseRemote(t *testing.T) {
	withRemotes(t, "", "prod", "lab")
	tests := []struct {
		remotes []string
		want    string
		err     string
	}{
		{[]string{""}, "", ""},
		{[]string{"prod"}, "prod", ""},
		{[]string{"local"}, "local", ""},
		{[]string{"prod", "prod"}, "prod", ""},
		{[]string{"prod", "lab"}, "", "two remotes"},
		{[]string{"nope"}, "", `remote "nope" doesn't exist`},
		{[]string{"a/b"}, "", "invalid remote name"},
	}
	for _, tt := range tests {
		a := &app{}
		var err error
		for _, r := range tt.remotes {
			if err = a.useRemote(r); err != nil {
				break
			}
		}
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("useRemote(%q): error %v, want %q", tt.remotes, err, tt.err)
			}
			continue
		}
		if err != nil || a.remote != tt.want {
			t.Errorf("useRemote(%q): remote %q, %v; want %q", tt.remotes, a.remote, err, tt.want)
		}
	}
}

// TestRemoteCommandErrors runs remote commands that must fail before any
// connection: bad names, bad tokens, unknown remotes.
func TestRemoteCommandErrors(t *testing.T) {
	badFingerprint := api.CertificateAddToken{ClientName: "x", Fingerprint: "zz", Addresses: []string{"127.0.0.1:1"}, Secret: "s"}
	noAddress := api.CertificateAddToken{ClientName: "x", Fingerprint: strings.Repeat("ab", 32), Secret: "s"}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"remote", "add", "local", "https://127.0.0.1:1"}, `"local" is the local daemon's name`},
		{[]string{"remote", "add", "a:b", "https://127.0.0.1:1"}, "invalid remote name"},
		{[]string{"remote", "add", "prod", "https://127.0.0.1:1"}, "remote prod exists already"},
		{[]string{"remote", "add", "x", "garbage"}, "neither a trust token"},
		{[]string{"remote", "add", "x", badFingerprint.String()}, "is not a SHA-256 in hex"},
		{[]string{"remote", "add", "x", noAddress.String()}, "names no server address"},
		{[]string{"remote", "add", "x", "ftp://host"}, "only https:// is supported"},
		{[]string{"remote", "remove", "nope"}, `remote "nope" doesn't exist`},
		{[]string{"remote", "remove", "local"}, "cannot be removed"},
		{[]string{"remote", "switch", "nope"}, `remote "nope" doesn't exist`},
		{[]string{"list", "nope:"}, `remote "nope" doesn't exist`},
		{[]string{"info", "nope:c1"}, `remote "nope" doesn't exist`},
		{[]string{"exec", "nope:c1", "--", "true"}, `remote "nope" doesn't exist`},
		{[]string{"launch", "busybox", "nope:c1"}, `remote "nope" doesn't exist`},
		// A remote whose pinned certificate is gone is not talked to.
		{[]string{"list", "prod:"}, "read its pinned server certificate"},
		{[]string{"config", "trust", "add"}, "missing the client's NAME"},
		{[]string{"config", "trust", "add", "bob", "--projects", "p1"}, "add --restricted"},
		{[]string{"config", "trust", "add-certificate", "/nonexistent.crt"}, "read certificate"},
		{[]string{"config", "trust", "add-certificate", "x.crt", "--type", "admin"}, `--type "admin": want client or metrics`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			withRemotes(t, "", "prod")
			sock := filepath.Join(t.TempDir(), "none.sock")
			code, out, errOut := runCLI(t, sock, "", tt.args...)
			if code == 0 || !strings.Contains(errOut, tt.want) {
				t.Errorf("exit %d, stderr %q (stdout %q); want a failure saying %q", code, errOut, out, tt.want)
			}
		})
	}
}

func TestRemoteListSwitch(t *testing.T) {
	dir := withRemotes(t, "", "prod")
	sock := filepath.Join(t.TempDir(), "none.sock")
	if code, out, errOut := runCLI(t, sock, "", "remote", "list", "-f", "csv"); code != 0 ||
		out != "local (current),unix://"+sock+",file access\nprod,https://127.0.0.1:1,tls\n" {
		t.Fatalf("remote list: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, sock, "", "remote", "switch", "prod"); code != 0 {
		t.Fatalf("remote switch: %s", errOut)
	}
	if code, out, _ := runCLI(t, sock, "", "remote", "get-default"); code != 0 || out != "prod\n" {
		t.Errorf("get-default after switch: %q", out)
	}
	if code, _, errOut := runCLI(t, sock, "", "remote", "remove", "prod"); code == 0 || !strings.Contains(errOut, "default remote") {
		t.Errorf("removing the default remote: %d %q", code, errOut)
	}
	runCLI(t, sock, "", "remote", "switch", "local")
	if err := os.MkdirAll(filepath.Join(dir, "servercerts"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "servercerts", "prod.crt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, sock, "", "remote", "remove", "prod"); code != 0 {
		t.Fatalf("remote remove: %s", errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "servercerts", "prod.crt")); !os.IsNotExist(err) {
		t.Errorf("the pinned certificate outlived its remote: %v", err)
	}
	if code, out, _ := runCLI(t, sock, "", "remote", "list", "-f", "csv"); code != 0 || strings.Contains(out, "prod") {
		t.Errorf("remote list after remove: %q", out)
	}
}

func TestClientCertificateMadeOnce(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(ConfigEnv, dir)
	c1, k1, err := clientCertificate()
	if err != nil {
		t.Fatal(err)
	}
	c2, k2, err := clientCertificate()
	if err != nil {
		t.Fatal(err)
	}
	if string(c1) != string(c2) || string(k1) != string(k2) {
		t.Error("a second use made a new client certificate")
	}
	if st, err := os.Stat(filepath.Join(dir, "client.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("client.key: %v, mode %v", err, st.Mode())
	}
	// Half a pair is an error, not a silent new identity.
	if err := os.Remove(filepath.Join(dir, "client.key")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := clientCertificate(); err == nil || !strings.Contains(err.Error(), "only one of") {
		t.Errorf("with client.key missing: %v", err)
	}
}
