package egress

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Credential is one secret an instance may use without seeing it: the
// guest's environment holds a placeholder under the credential's name,
// the real value comes from the creation request's env map under
// Source.Env and is only ever written into the requests Inject names.
type Credential struct {
	Source Source      `json:"source"`
	Inject []Injection `json:"inject"`
}

// Source says where the real value comes from: the key of the request's
// env map that holds it.
type Source struct {
	Env string `json:"env"`
}

// Injection is one rule: requests to Hosts (none: every host) get the
// header As names.
type Injection struct {
	Hosts []string `json:"hosts,omitempty"`
	As    Header   `json:"as"`
}

// Header is an HTTP header set on a matching request: Format with
// ${value} replaced by the real value.
type Header struct {
	Header string `json:"header"`
	Format string `json:"format"`
}

// ValuePlaceholder is what a header's Format holds where the real value
// goes.
const ValuePlaceholder = "${value}"

// ParseCredential reads one credential (the value of a credentials.NAME
// config key) and checks its shape. name is the guest-visible variable,
// for the messages.
func ParseCredential(name, raw string) (Credential, error) {
	var c Credential
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Credential{}, errdefs.Invalid("credentials.%s: not a credential: %v", name, err)
	}
	if dec.More() {
		return Credential{}, errdefs.Invalid("credentials.%s: trailing data after the credential", name)
	}
	if err := c.Validate(name); err != nil {
		return Credential{}, err
	}
	return c, nil
}

// Validate checks every field; name is the guest-visible variable the
// credential is under.
func (c Credential) Validate(name string) error {
	if err := ValidEnvName(name); err != nil {
		return errdefs.Invalid("credentials.%s: name: %v", name, err)
	}
	if c.Source.Env == "" {
		return errdefs.Invalid("credentials.%s: source.env is required", name)
	}
	if err := ValidEnvName(c.Source.Env); err != nil {
		return errdefs.Invalid("credentials.%s: source.env: %v", name, err)
	}
	if len(c.Inject) == 0 {
		return errdefs.Invalid("credentials.%s: inject: at least one rule is required", name)
	}
	for i, in := range c.Inject {
		for j, h := range in.Hosts {
			if err := ValidHostPattern(h); err != nil {
				return errdefs.Invalid("credentials.%s: inject[%d].hosts[%d]: %v", name, i, j, err)
			}
		}
		if !validHeaderName(in.As.Header) {
			return errdefs.Invalid("credentials.%s: inject[%d].as.header: %q is not an HTTP header name", name, i, in.As.Header)
		}
		if !strings.Contains(in.As.Format, ValuePlaceholder) {
			return errdefs.Invalid("credentials.%s: inject[%d].as.format: must contain %s", name, i, ValuePlaceholder)
		}
		if strings.ContainsAny(in.As.Format, "\r\n\x00") {
			return errdefs.Invalid("credentials.%s: inject[%d].as.format: no CR, LF or NUL allowed", name, i)
		}
	}
	return nil
}

// ValidEnvName accepts what a POSIX shell takes as a variable name.
func ValidEnvName(s string) error {
	if s == "" {
		return fmt.Errorf("empty")
	}
	for i, r := range s {
		ok := r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return fmt.Errorf("%q is not a variable name (letters, digits, _; not starting with a digit)", s)
		}
	}
	return nil
}

// validHeaderName: RFC 9110's token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}

// ValidHostPattern accepts a hostname ("api.example.com") or a suffix
// pattern ("*.example.com": any name below example.com, not example.com
// itself). IP literals are refused: a credential names a service, and
// HTTPS interception needs a name to put in the certificate.
func ValidHostPattern(p string) error {
	name := strings.TrimPrefix(p, "*.")
	if strings.Contains(name, "*") {
		return fmt.Errorf("%q: a wildcard only as the first label (*.example.com)", p)
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return fmt.Errorf("%q: an IP address, not a hostname", p)
	}
	if len(name) == 0 || len(name) > 253 {
		return fmt.Errorf("%q is not a hostname", p)
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a hostname", p)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%q is not a hostname", p)
			}
		}
	}
	return nil
}

// MatchHost tells whether host (no port) is matched by pattern:
// case-insensitive, a trailing dot ignored, "*.suffix" matching any name
// strictly below suffix.
func MatchHost(pattern, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	pattern = strings.ToLower(strings.TrimSuffix(pattern, "."))
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+suffix) && len(host) > len(suffix)+1
	}
	return host == pattern
}

// Matches tells whether the injection applies to host: no hosts means
// every host.
func (in Injection) Matches(host string) bool {
	if len(in.Hosts) == 0 {
		return true
	}
	for _, p := range in.Hosts {
		if MatchHost(p, host) {
			return true
		}
	}
	return false
}

// Render is the header's value for the real value v.
func (h Header) Render(v string) string { return strings.ReplaceAll(h.Format, ValuePlaceholder, v) }

// NewPlaceholder makes the value the guest sees instead of a secret: a
// random token that says what it is ("hgr-cred-" and 32 hex digits).
func NewPlaceholder() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return fmt.Sprintf("hgr-cred-%x", b)
}
