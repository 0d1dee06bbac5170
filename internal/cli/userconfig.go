package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// ConfigEnv names the environment variable that overrides where the CLI
// keeps its own settings.
const ConfigEnv = "HANGAR_CONF"

// userConfig is the CLI's own settings, kept between runs as lxc keeps
// its remotes' current projects in config.yml.
type userConfig struct {
	// Projects is the current project per daemon socket: switching on
	// one hangard does not change what another command sees on another.
	Projects map[string]string `yaml:"projects,omitempty"`
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
	conf := userConfig{Projects: map[string]string{}}
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
		return userConfig{Projects: map[string]string{}}, fmt.Errorf("read CLI config %s: %w", path, err)
	}
	if conf.Projects == nil {
		conf.Projects = map[string]string{}
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
