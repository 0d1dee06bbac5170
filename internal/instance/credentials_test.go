package instance

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

const testCred = `{"source":{"env":"REAL_KEY"},"inject":[{"hosts":["api.test"],"as":{"header":"Authorization","format":"Bearer ${value}"}}]}`

func credReq(name string, cfg map[string]string, secrets map[string]string) CreateRequest {
	r := imageReq(name)
	r.Config, r.Secrets = cfg, secrets
	return r
}

// TestCreateCredentials: the guest's variable is a placeholder, the real
// value is stored apart and appears in no config; bad combinations of
// credentials and secrets are 400s naming the field.
func TestCreateCredentials(t *testing.T) {
	s, _, db, _ := newTestService(t)
	ctx := context.Background()
	cfg := map[string]string{"credentials.API_KEY": testCred}
	if err := launch(t, s, credReq("c1", cfg, map[string]string{"REAL_KEY": "real-secret"})); err != nil {
		t.Fatal(err)
	}
	in, err := s.Get(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	ph := in.Config["environment.API_KEY"]
	if !strings.HasPrefix(ph, "hgr-cred-") {
		t.Fatalf("environment.API_KEY = %q, want a placeholder", ph)
	}
	if _, ok := in.Config["environment.REAL_KEY"]; ok {
		t.Fatal("the secret's key became an environment variable")
	}
	all, _ := json.Marshal(in)
	if strings.Contains(string(all), "real-secret") {
		t.Fatalf("the secret is in the instance: %s", all)
	}
	rec, _, _ := s.snapshot(s.byName[ref{"default", "c1"}])
	if got, _ := db.InstanceSecrets(ctx, rec.ID); got["REAL_KEY"] != "real-secret" || len(got) != 1 {
		t.Fatalf("stored secrets %v", got)
	}
	p, ok, err := s.EgressPolicy(ctx, rec.ID)
	if err != nil || !ok || len(p.Rules) != 1 || p.Rules[0].Value != "Bearer real-secret" || p.Instance != "default/c1" {
		t.Fatalf("EgressPolicy: %+v %v %v", p, ok, err)
	}

	bad := []struct {
		name    string
		cfg     map[string]string
		secrets map[string]string
		msg     string
	}{
		{"secret missing", cfg, nil, `credentials.API_KEY: source.env "REAL_KEY" is not in the request's env`},
		{"secret nobody uses", cfg, map[string]string{"REAL_KEY": "x", "OTHER": "y"}, `env "OTHER": not the source.env`},
		{"secret without credential", nil, map[string]string{"OTHER": "y"}, `env "OTHER"`},
		{"placeholder set by hand", map[string]string{"credentials.API_KEY": testCred, "environment.API_KEY": "x"},
			map[string]string{"REAL_KEY": "x"}, "environment.API_KEY is set too"},
		{"secret with a newline", cfg, map[string]string{"REAL_KEY": "a\r\nX: y"}, "CR or LF"},
		{"bad credential", map[string]string{"credentials.API_KEY": `{"source":{"env":"REAL_KEY"},"inject":[]}`},
			map[string]string{"REAL_KEY": "x"}, "inject: at least one rule"},
		{"bad egress.mode", map[string]string{"egress.mode": "some"}, nil, `config key "egress.mode"`},
		{"bad egress.enabled", map[string]string{"egress.enabled": "maybe"}, nil, `config key "egress.enabled"`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := launch(t, s, credReq("bad", tc.cfg, tc.secrets))
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want a 400 with %q", err, tc.msg)
			}
		})
	}
}

// TestUpdateCredentialValues: a credential's value changes live; keys no
// credential names are refused and change nothing.
func TestUpdateCredentialValues(t *testing.T) {
	s, _, db, _ := newTestService(t)
	ctx := context.Background()
	if err := launch(t, s, credReq("c1", map[string]string{"credentials.API_KEY": testCred},
		map[string]string{"REAL_KEY": "v1"})); err != nil {
		t.Fatal(err)
	}
	if err := launch(t, s, imageReq("plain")); err != nil {
		t.Fatal(err)
	}
	id := s.byName[ref{"default", "c1"}].rec.ID
	steps := []struct {
		name, inst string
		env        map[string]string
		kind       error
		want       string
	}{
		{"rotate", "c1", map[string]string{"REAL_KEY": "v2"}, nil, "v2"},
		{"unknown key", "c1", map[string]string{"REAL_KEY": "v3", "NOPE": "x"}, errdefs.ErrInvalidArgument, "v2"},
		{"the placeholder's name is not a source", "c1", map[string]string{"API_KEY": "x"}, errdefs.ErrInvalidArgument, "v2"},
		{"newline", "c1", map[string]string{"REAL_KEY": "a\nb"}, errdefs.ErrInvalidArgument, "v2"},
		{"instance without credentials", "plain", map[string]string{"REAL_KEY": "x"}, errdefs.ErrInvalidArgument, "v2"},
		{"missing instance", "nope", map[string]string{"REAL_KEY": "x"}, errdefs.ErrNotFound, "v2"},
		{"nothing", "c1", nil, nil, "v2"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			err := s.UpdateCredentialValues(ctx, st.inst, st.env)
			if st.kind == nil && err != nil || st.kind != nil && !errors.Is(err, st.kind) {
				t.Fatalf("error %v, want %v", err, st.kind)
			}
			p, _, _ := s.EgressPolicy(ctx, id)
			if got, _ := db.InstanceSecrets(ctx, id); got["REAL_KEY"] != st.want || p.Rules[0].Value != "Bearer "+st.want {
				t.Fatalf("value %q (policy %+v), want %q", got["REAL_KEY"], p.Rules, st.want)
			}
		})
	}
}

// TestCredentialsCopyAndDelete: a copy keeps the credential working with
// its own stored value; deleting the source leaves the copy's.
func TestCredentialsCopyAndDelete(t *testing.T) {
	s, _, db, _ := newTestService(t)
	ctx := context.Background()
	if err := launch(t, s, credReq("c1", map[string]string{"credentials.API_KEY": testCred},
		map[string]string{"REAL_KEY": "v1"})); err != nil {
		t.Fatal(err)
	}
	srcID := s.byName[ref{"default", "c1"}].rec.ID
	if err := s.Stop(ctx, "c1", StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := launch(t, s, CreateRequest{Name: "c2", Source: Source{Type: SourceCopy, Instance: "c1"}}); err != nil {
		t.Fatal(err)
	}
	cpID := s.byName[ref{"default", "c2"}].rec.ID
	if err := launch(t, s, CreateRequest{Name: "c3", Source: Source{Type: SourceCopy, Instance: "c1"},
		Secrets: map[string]string{"REAL_KEY": "x"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("a copy with its own values: %v, want a 400", err)
	}
	if err := s.Delete(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.InstanceSecrets(ctx, srcID); len(got) != 0 {
		t.Fatalf("the deleted source's secrets remain: %v", got)
	}
	if p, ok, err := s.EgressPolicy(ctx, cpID); !ok || err != nil || p.Rules[0].Value != "Bearer v1" {
		t.Fatalf("copy's policy %+v %v %v", p, ok, err)
	}
	if _, ok, _ := s.EgressPolicy(ctx, srcID); ok {
		t.Fatal("a deleted instance still has a policy")
	}
}

func TestEgressOf(t *testing.T) {
	cases := []struct {
		cfg  map[string]string
		on   bool
		mode string
	}{
		{nil, false, "all"},
		{map[string]string{"egress.enabled": "true"}, true, "all"},
		{map[string]string{"egress.enabled": "false", "credentials.K": testCred}, true, "all"},
		{map[string]string{"egress.enabled": "1", "egress.mode": "http_https_only"}, true, "http_https_only"},
	}
	for _, tc := range cases {
		if on, mode := EgressOf(tc.cfg); on != tc.on || mode != tc.mode {
			t.Errorf("EgressOf(%v) = %v %q, want %v %q", tc.cfg, on, mode, tc.on, tc.mode)
		}
	}
}

// TestStartTrustsEgressCA: the driver is handed the proxy's CA exactly
// when the instance's traffic goes through the proxy, and a later start
// follows a config change both ways.
func TestStartTrustsEgressCA(t *testing.T) {
	const ca = "-----BEGIN CERTIFICATE-----\nTEST\n-----END CERTIFICATE-----\n"
	tests := []struct {
		name    string
		cfg     map[string]string
		secrets map[string]string
		daemon  string // the daemon's CA; "" = no proxy
		want    bool
	}{
		{"no egress", nil, nil, ca, false},
		{"egress.enabled", map[string]string{"egress.enabled": "true"}, nil, ca, true},
		{"egress.enabled false", map[string]string{"egress.enabled": "false", "egress.mode": "all"}, nil, ca, false},
		{"a credential", map[string]string{"credentials.API_KEY": testCred}, map[string]string{"REAL_KEY": "real-secret"}, ca, true},
		{"a credential, egress.enabled false", map[string]string{"credentials.API_KEY": testCred, "egress.enabled": "false"},
			map[string]string{"REAL_KEY": "real-secret"}, ca, true},
		{"egress but no proxy", map[string]string{"egress.enabled": "true"}, nil, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, drv, _, _ := newTestService(t)
			s.cfg.EgressCA = []byte(tc.daemon)
			if tc.daemon == "" {
				s.cfg.EgressCA = nil
			}
			if err := launch(t, s, credReq("c1", tc.cfg, tc.secrets)); err != nil {
				t.Fatal(err)
			}
			got := drv.lastSpec().EgressCA
			if tc.want && string(got) != ca || !tc.want && got != nil {
				t.Fatalf("Spec.EgressCA = %q, want it: %v", got, tc.want)
			}
			if strings.Contains(string(got), "PRIVATE KEY") {
				t.Fatal("a key went into the spec")
			}
		})
	}

	// A restart reads the config as it is then.
	s, drv, _, _ := newTestService(t)
	s.cfg.EgressCA = []byte(ca)
	ctx := context.Background()
	if err := launch(t, s, credReq("c2", map[string]string{"egress.enabled": "true"}, nil)); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		enabled string
		want    bool
	}{{"false", false}, {"true", true}} {
		if err := s.Stop(ctx, "c2", StopOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		if err := s.Patch(ctx, "c2", Patch{Config: map[string]string{"egress.enabled": step.enabled}}, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.Start(ctx, "c2"); err != nil {
			t.Fatal(err)
		}
		if got := drv.lastSpec().EgressCA; (got != nil) != step.want {
			t.Fatalf("egress.enabled=%s: Spec.EgressCA = %q", step.enabled, got)
		}
	}
}
