package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Certificate types: a client may use the whole API (as its restrictions
// allow), a metrics certificate only GET /1.0/metrics.
const (
	CertificateTypeClient  = "client"
	CertificateTypeMetrics = "metrics"
)

// CertificatePut is the writable part of a trusted certificate.
type CertificatePut struct {
	Name       string   `json:"name" yaml:"name"`
	Type       string   `json:"type" yaml:"type"`
	Restricted bool     `json:"restricted" yaml:"restricted"`
	Projects   []string `json:"projects" yaml:"projects"`
	// Certificate is PEM in answers and PUT; base64 DER in POST, as LXD.
	Certificate string `json:"certificate" yaml:"certificate"`
}

// Certificate is a trusted client certificate.
type Certificate struct {
	CertificatePut `yaml:",inline"`
	Fingerprint    string `json:"fingerprint" yaml:"fingerprint"`
}

// CertificatesPost adds a certificate (Certificate set), asks for a trust
// token (Token true), or, from an untrusted client, redeems a token or the
// trust password given as Password: the client's TLS certificate is then
// the one added.
type CertificatesPost struct {
	CertificatePut `yaml:",inline"`
	Password       string `json:"password" yaml:"password"`
	Token          bool   `json:"token" yaml:"token"`
}

// CertificateAddToken is what a trust token carries; its text form is the
// base64 of its JSON (String), which `lxc remote add NAME TOKEN` decodes
// to find the server and check its certificate.
type CertificateAddToken struct {
	ClientName  string    `json:"client_name" yaml:"client_name"`
	Fingerprint string    `json:"fingerprint" yaml:"fingerprint"`
	Addresses   []string  `json:"addresses" yaml:"addresses"`
	Secret      string    `json:"secret" yaml:"secret"`
	ExpiresAt   time.Time `json:"expires_at" yaml:"expires_at"`
}

// String is the token as users pass it around.
func (t CertificateAddToken) String() string {
	b, err := json.Marshal(t)
	if err != nil { // cannot happen: strings, a list and a time
		return ""
	}
	return base64.StdEncoding.EncodeToString(b)
}

// DecodeCertificateAddToken reads a token's text form.
func DecodeCertificateAddToken(s string) (CertificateAddToken, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return CertificateAddToken{}, fmt.Errorf("token is not base64: %w", err)
	}
	var t CertificateAddToken
	if err := json.Unmarshal(b, &t); err != nil {
		return CertificateAddToken{}, fmt.Errorf("token is not JSON: %w", err)
	}
	if t.Secret == "" {
		return CertificateAddToken{}, errors.New("token has no secret")
	}
	return t, nil
}

// CertificateAddTokenFromOperation reads a token operation's metadata
// (what `lxc config trust add` and list-tokens do).
func CertificateAddTokenFromOperation(op Operation) (CertificateAddToken, error) {
	req, ok := op.Metadata["request"].(map[string]any)
	if !ok {
		return CertificateAddToken{}, fmt.Errorf("operation %s has no token request", op.ID)
	}
	t := CertificateAddToken{}
	t.ClientName, _ = req["name"].(string)
	t.Secret, _ = op.Metadata["secret"].(string)
	t.Fingerprint, _ = op.Metadata["fingerprint"].(string)
	if t.Secret == "" || t.Fingerprint == "" {
		return CertificateAddToken{}, fmt.Errorf("operation %s is not a certificate add token", op.ID)
	}
	addrs, _ := op.Metadata["addresses"].([]any)
	for _, a := range addrs {
		if s, ok := a.(string); ok {
			t.Addresses = append(t.Addresses, s)
		}
	}
	if s, ok := op.Metadata["expiresAt"].(string); ok {
		exp, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return CertificateAddToken{}, fmt.Errorf("operation %s expiresAt: %w", op.ID, err)
		}
		t.ExpiresAt = exp
	}
	return t, nil
}
