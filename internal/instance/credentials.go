package instance

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/hangar-dev/hangar/internal/egress"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/store"
)

// Credentials (seed 002): credentials.NAME holds one credential as JSON
// (egress.Credential). The guest sees NAME as a placeholder, kept in the
// config as environment.NAME ("hgr-cred-" and 32 random hex digits, made
// at create, so exec and every API show the same harmless value); the
// real value, sent at create in CreateRequest.Secrets under the
// credential's source.env, lives only in the store's instance_secrets
// table, which no API returns. The egress proxy reads it
// (EgressPolicy) to set the credential's headers on the way out.
//
// Copies and forks take the source's credentials, placeholders and real
// values: a fork is the same workload and must keep working. A credential
// added later through a config update has no value until
// UpdateCredentialValues gives it one (until then no header is set).

// Config keys of credentials and egress.
const (
	prefixCredentials = "credentials."
	keyEgressEnabled  = "egress.enabled"
	keyEgressMode     = "egress.mode"
)

func validateEgressMode(v string) error {
	switch v {
	case "", "all", "http_https_only":
		return nil
	}
	return fmt.Errorf("want all or http_https_only")
}

// credentialsOf parses an instance's credentials.* keys, by guest-visible
// name.
func credentialsOf(cfg map[string]string) (map[string]egress.Credential, error) {
	out := map[string]egress.Credential{}
	for k, v := range cfg {
		name, ok := strings.CutPrefix(k, prefixCredentials)
		if !ok {
			continue
		}
		c, err := egress.ParseCredential(name, v)
		if err != nil {
			return nil, err
		}
		out[name] = c
	}
	return out, nil
}

// EgressOf tells whether an expanded config sends the instance's web
// traffic through the egress proxy (egress.enabled, or any credential),
// and in which mode.
func EgressOf(cfg map[string]string) (enabled bool, mode string) {
	enabled, _ = parseBool(cfg[keyEgressEnabled])
	for k := range cfg {
		if strings.HasPrefix(k, prefixCredentials) {
			enabled = true
			break
		}
	}
	mode = cfg[keyEgressMode]
	if mode == "" {
		mode = "all"
	}
	return enabled, mode
}

// prepareCredentials checks a new instance's credentials against the
// request's secrets, gives each credential its placeholder in config, and
// returns the secrets to store. Every credential's source.env must be a
// secret, and every secret must be some credential's source.env: a value
// nobody reads is a mistake worth a 400, not a secret kept for nothing.
func prepareCredentials(config, secrets map[string]string) (map[string]string, error) {
	creds, err := credentialsOf(config)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	names := make([]string, 0, len(creds))
	for n := range creds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		env := creds[n].Source.Env
		if _, ok := secrets[env]; !ok {
			return nil, errdefs.Invalid("credentials.%s: source.env %q is not in the request's env", n, env)
		}
		used[env] = true
		if _, set := config[prefixEnvironment+n]; set {
			return nil, errdefs.Invalid("credentials.%s: environment.%s is set too; the credential's placeholder is that variable", n, n)
		}
		config[prefixEnvironment+n] = egress.NewPlaceholder()
	}
	out := map[string]string{}
	for k, v := range secrets {
		if !used[k] {
			return nil, errdefs.Invalid("env %q: not the source.env of any credential", k)
		}
		if err := egress.ValidEnvName(k); err != nil {
			return nil, errdefs.Invalid("env %q: %v", k, err)
		}
		if strings.IndexByte(v, 0) >= 0 || strings.ContainsAny(v, "\r\n") {
			// It goes into an HTTP header.
			return nil, errdefs.Invalid("env %q: the value holds a NUL, CR or LF", k)
		}
		out[k] = v
	}
	return out, nil
}

// UpdateCredentialValues replaces the real values of credentials whose
// source.env is a key of env, live: the next request through the egress
// proxy carries the new value. A key no credential of the instance names
// is a 400 and nothing changes.
func (s *Service) UpdateCredentialValues(ctx context.Context, name string, env map[string]string) error {
	if err := s.allow(ctx, name, canEdit); err != nil {
		return err
	}
	in, err := s.lockInstance(ctx, name)
	if err != nil {
		return err
	}
	defer in.op.Unlock()
	rec, _, _ := s.snapshot(in)
	ecfg, _, err := s.expanded(rec)
	if err != nil {
		return err
	}
	creds, err := credentialsOf(ecfg)
	if err != nil {
		return err
	}
	named := map[string]bool{}
	for _, c := range creds {
		named[c.Source.Env] = true
	}
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !named[k] {
			return errdefs.Invalid("env %q: not the source.env of any credential of instance %q", k, name)
		}
		if strings.IndexByte(env[k], 0) >= 0 || strings.ContainsAny(env[k], "\r\n") {
			return errdefs.Invalid("env %q: the value holds a NUL, CR or LF", k)
		}
	}
	if err := s.cfg.DB.SetInstanceSecrets(ctx, rec.ID, env); err != nil {
		return fmt.Errorf("instance %s: credential values: %w", name, err)
	}
	s.log.Info("credential values updated", "instance", name, "keys", keys)
	return nil
}

// EgressPolicy is the egress proxy's view of the instance with store id
// id: its credentials with their real values. ok is false when it is
// gone or has no egress. It is called by the daemon for the proxy, for
// a source address the network layer mapped to this instance, and takes
// no authorization: its caller is the daemon, not a client.
func (s *Service) EgressPolicy(ctx context.Context, id int64) (p egress.Policy, ok bool, err error) {
	s.mu.RLock()
	in := s.byRuntime[runtimeID(id)]
	s.mu.RUnlock()
	if in == nil {
		return egress.Policy{}, false, nil
	}
	rec, _, _ := s.snapshot(in)
	ecfg, _, err := s.expanded(rec)
	if err != nil {
		return egress.Policy{}, false, err
	}
	if on, _ := EgressOf(ecfg); !on {
		return egress.Policy{}, false, nil
	}
	creds, err := credentialsOf(ecfg)
	if err != nil {
		return egress.Policy{}, false, err
	}
	values, err := s.cfg.DB.InstanceSecrets(ctx, id)
	if err != nil {
		return egress.Policy{}, false, err
	}
	return egress.BuildPolicy(rec.Project+"/"+rec.Name, creds, values), true, nil
}

// storeSecrets writes a new instance's secrets: the request's, or a
// copy's source's.
func (s *Service) storeSecrets(ctx context.Context, rec store.Instance, secrets map[string]string, copyOf *copySource) error {
	if copyOf != nil {
		src, err := s.cfg.DB.InstanceSecrets(ctx, copyOf.id)
		if err != nil {
			return err
		}
		for k, v := range secrets {
			src[k] = v
		}
		secrets = src
	}
	return s.cfg.DB.SetInstanceSecrets(ctx, rec.ID, secrets)
}
