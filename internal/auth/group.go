package auth

import (
	"regexp"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// Group is a named set of permissions and the identities that hold them.
type Group struct {
	Name        string
	Description string
	Permissions []Permission
	Members     []Member
}

// Permission is one entitlement on one object.
type Permission struct {
	Object      Object
	Entitlement Entitlement
}

// Member names an identity independently of how it reached the daemon:
// the authentication method ("tls", "token", "unix") and the identifier
// that method proves (a certificate's fingerprint, a token's name).
type Member struct {
	Method string
	ID     string
}

// The authentication methods a Member may name.
const (
	MethodTLS   = "tls"
	MethodToken = "token"
	MethodUnix  = "unix"
	MethodUser  = "user"
)

// MemberOf returns the Member that names id, and false for identities no
// group can name (the daemon itself, untrusted clients).
func MemberOf(id Identity) (Member, bool) {
	switch id.Kind {
	case KindCertificate:
		return Member{Method: MethodTLS, ID: id.Fingerprint}, true
	case KindToken:
		return Member{Method: MethodToken, ID: id.Name}, true
	case KindUnix:
		return Member{Method: MethodUnix, ID: id.Name}, true
	case KindUser:
		return Member{Method: MethodUser, ID: id.Name}, true
	}
	return Member{}, false
}

var groupName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate refuses a group a check could not use: a bad name, an
// entitlement that does not apply to its object's type, an object without
// the name its type needs, a member of an unknown method.
func (g Group) Validate() error {
	if !groupName.MatchString(g.Name) {
		return errdefs.Invalid("invalid group name %q: letters, digits, '_', '.' and '-', at most 64", g.Name)
	}
	for _, p := range g.Permissions {
		if err := p.Validate(); err != nil {
			return err
		}
	}
	for _, m := range g.Members {
		switch m.Method {
		case MethodTLS, MethodToken, MethodUnix, MethodUser:
		default:
			return errdefs.Invalid("unknown authentication method %q (want tls, token, unix or user)", m.Method)
		}
		if m.ID == "" {
			return errdefs.Invalid("empty %s identity in group %q", m.Method, g.Name)
		}
	}
	return nil
}

// Validate refuses a permission that cannot mean anything.
func (p Permission) Validate() error {
	o := p.Object
	if _, ok := Entitlements[o.Type]; !ok {
		return errdefs.Invalid("unknown entity type %q", o.Type)
	}
	if !Valid(o.Type, p.Entitlement) {
		return errdefs.Invalid("entitlement %q does not apply to %s", p.Entitlement, o.Type)
	}
	switch o.Type {
	case TypeServer:
		if o.Name != "" || o.Project != "" {
			return errdefs.Invalid("the server takes no name or project")
		}
	case TypeStoragePool, TypeCertificate:
		if o.Name == "" || o.Project != "" {
			return errdefs.Invalid("a %s needs a name and no project", o.Type)
		}
	case TypeProject:
		if o.Name == "" || o.Project != o.Name {
			return errdefs.Invalid("a project permission needs the project's name")
		}
	default:
		if o.Name == "" || o.Project == "" {
			return errdefs.Invalid("a %s needs a project and a name", o.Type)
		}
	}
	return nil
}
