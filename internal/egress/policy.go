package egress

import (
	"context"
	"net/netip"
	"sort"
)

// Policy is what the proxy does for one instance: the headers it sets on
// requests to the hosts its credentials name.
type Policy struct {
	// Instance names the instance in logs ("project/name").
	Instance string
	Rules    []Rule
}

// Rule is one injection with its real value rendered.
type Rule struct {
	Hosts  []string // patterns; none: every host
	Header string
	Value  string
}

// Resolver tells the proxy which instance holds a source address on a
// bridge, and its policy. ok is false for an address no instance with
// egress holds: its connections are closed.
type Resolver interface {
	Policy(ctx context.Context, src netip.Addr) (p Policy, ok bool, err error)
}

// BuildPolicy renders credentials (by guest-visible name) with the real
// values (by source env key). A credential whose value is missing is left
// out: no header is better than a header with an empty secret.
func BuildPolicy(instance string, creds map[string]Credential, values map[string]string) Policy {
	p := Policy{Instance: instance}
	names := make([]string, 0, len(creds))
	for n := range creds {
		names = append(names, n)
	}
	sort.Strings(names) // a stable order: the last rule for a header wins
	for _, n := range names {
		c := creds[n]
		v, ok := values[c.Source.Env]
		if !ok {
			continue
		}
		for _, in := range c.Inject {
			p.Rules = append(p.Rules, Rule{Hosts: in.Hosts, Header: in.As.Header, Value: in.As.Render(v)})
		}
	}
	return p
}

// Names tells whether some rule applies to host: only then does the
// proxy terminate TLS for it.
func (p Policy) Names(host string) bool {
	for _, r := range p.Rules {
		if (Injection{Hosts: r.Hosts}).Matches(host) {
			return true
		}
	}
	return false
}

// For returns the rules that apply to host.
func (p Policy) For(host string) []Rule {
	var out []Rule
	for _, r := range p.Rules {
		if (Injection{Hosts: r.Hosts}).Matches(host) {
			out = append(out, r)
		}
	}
	return out
}
