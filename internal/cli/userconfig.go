package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/hangar-dev/hangar/client"
)

// ConfigEnv names the environment variable that overrides where the CLI
// keeps its own settings.
const ConfigEnv = "HANGAR_CONF"

// userConfig is the CLI's own settings, kept between runs as lxc keeps
// its remotes' current projects in config.yml.
type userConfig struct {
	// Projects is the current project per daemon: by socket path for
	// the local daemon, by "remote:NAME" for a remote one. Switching on
	// one hangard does not change what another command sees on another.
	Projects map[string]string `yaml:"projects,omitempty"`
	// DefaultRemote is the remote of commands that name none ("" is
	// local: the --socket daemon); `hangar remote switch` sets it.
	DefaultRemote string `yaml:"default-remote,omitempty"`
	// Remotes are the hangards reached over HTTPS, by name. The server
	// certificate each is pinned to is servercerts/NAME.crt beside this
	// file, as lxc keeps it.
	Remotes map[string]remoteConfig `yaml:"remotes,omitempty"`
}

// remoteConfig is one remote hangard.
type remoteConfig struct {
	// Addr is its HOST:PORT.
	Addr string `yaml:"addr"`
}

// configDir is the folder of config.yml: $HANGAR_CONF, else hangar in
// the user's config directory. It also holds the client certificate.
func configDir() (string, error) {
	path, err := configPath()
	if err != nil {
		return "", err
	}
	return filepath.Dir(path), nil
}

// configPath is $HANGAR_CONF/config.yml, else config.yml in the user's
// config directory's hangar folder ($XDG_CONFIG_HOME or ~/.config).
func configPath() (string, error) {
	if d := os.Getenv(ConfigEnv); d != "" {
		return filepath.Join(d, "config.yml"), nil
	}
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the CLI config: %w", err)
	}
	return filepath.Join(d, "hangar", "config.yml"), nil
}

// loadConfig reads the CLI config; a missing file is an empty config.
func loadConfig() (userConfig, error) {
	conf := userConfig{Projects: map[string]string{}, Remotes: map[string]remoteConfig{}}
	path, err := configPath()
	if err != nil {
		return conf, err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return conf, nil
	}
	if err != nil {
		return conf, fmt.Errorf("read CLI config: %w", err)
	}
	if err := yaml.Unmarshal(data, &conf); err != nil {
		return userConfig{Projects: map[string]string{}, Remotes: map[string]remoteConfig{}}, fmt.Errorf("read CLI config %s: %w", path, err)
	}
	if conf.Projects == nil {
		conf.Projects = map[string]string{}
	}
	if conf.Remotes == nil {
		conf.Remotes = map[string]remoteConfig{}
	}
	return conf, nil
}

// saveConfig writes the CLI config through a temporary file, so that a
// crash never leaves half a file.
func saveConfig(conf userConfig) error {
	path, err := configPath()
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(conf)
	if err != nil {
		return fmt.Errorf("encode CLI config: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write CLI config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config.yml.*")
	if err != nil {
		return fmt.Errorf("write CLI config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write CLI config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write CLI config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write CLI config: %w", err)
	}
	return nil
}

// writeConfigFile writes one file of the config dir (a certificate, a
// key) through a temporary file, with mode perm.
func writeConfigFile(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// clientCertificate returns the CLI's client certificate and key (PEM),
// client.crt and client.key in the config dir, making them on first use
// as lxc does: it is what remotes trust.
func clientCertificate() (certPEM, keyPEM []byte, err error) {
	dir, err := configDir()
	if err != nil {
		return nil, nil, err
	}
	crtPath, keyPath := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	certPEM, cerr := os.ReadFile(crtPath)
	keyPEM, kerr := os.ReadFile(keyPath)
	switch {
	case cerr == nil && kerr == nil:
		return certPEM, keyPEM, nil
	case !errors.Is(cerr, fs.ErrNotExist) && cerr != nil:
		return nil, nil, fmt.Errorf("read client certificate: %w", cerr)
	case !errors.Is(kerr, fs.ErrNotExist) && kerr != nil:
		return nil, nil, fmt.Errorf("read client key: %w", kerr)
	case cerr == nil || kerr == nil:
		// Half a pair would be replaced by a new one the remotes do
		// not know: say so rather than lose the old certificate.
		return nil, nil, fmt.Errorf("only one of %s and %s exists: restore the other or remove both", crtPath, keyPath)
	}
	certPEM, keyPEM, err = client.GenerateClientCertificate(certificateCommonName())
	if err != nil {
		return nil, nil, err
	}
	// The key first: a certificate without its key is the broken state.
	if err := writeConfigFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, nil, fmt.Errorf("write client key: %w", err)
	}
	if err := writeConfigFile(crtPath, certPEM, 0o644); err != nil {
		return nil, nil, fmt.Errorf("write client certificate: %w", err)
	}
	return certPEM, keyPEM, nil
}

// certificateCommonName is user@host, as lxc names its client
// certificates, so that a server's trust list says whose it is.
func certificateCommonName() string {
	host, _ := os.Hostname()
	user := os.Getenv("USER")
	if user == "" {
		user = "hangar"
	}
	if host == "" {
		return user
	}
	return user + "@" + host
}

// serverCertPath is where the certificate of remote name is pinned.
func serverCertPath(name string) (string, error) {
	dir, err := configDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "servercerts", name+".crt"), nil
}
