package auth

import "sync/atomic"

// grants is what one group (or one identity's built-in rules) holds,
// indexed for the questions Check asks: one map lookup per level.
type grants struct {
	admin    bool
	server   map[Entitlement]bool
	projects map[string]map[Entitlement]bool // held on the project object
	objects  map[Object]map[Entitlement]bool
	// inside marks projects holding some object granted here: seeing an
	// object means seeing (the name of) the project that holds it.
	inside map[string]bool
	// tree is the Authorizer's project nesting, shared by every group's
	// grants (nil in a grants compiled alone).
	tree *atomic.Pointer[parents]
}

func compile(perms []Permission) *grants {
	g := &grants{
		server:   map[Entitlement]bool{},
		projects: map[string]map[Entitlement]bool{},
		objects:  map[Object]map[Entitlement]bool{},
		inside:   map[string]bool{},
	}
	for _, p := range perms {
		o := p.Object
		switch o.Type {
		case TypeServer:
			if p.Entitlement == Admin {
				g.admin = true
			}
			g.server[p.Entitlement] = true
		case TypeProject:
			add(g.projects, o.Name, p.Entitlement)
		default:
			add(g.objects, o, p.Entitlement)
			if o.Project != "" {
				g.inside[o.Project] = true
			}
		}
	}
	return g
}

func add[K comparable](m map[K]map[Entitlement]bool, k K, e Entitlement) {
	if m[k] == nil {
		m[k] = map[Entitlement]bool{}
	}
	m[k][e] = true
}

// holds tells whether a set of entitlements held on one object grants e
// on it: directly, or can_view because any right on a thing includes
// seeing it.
func holds(set map[Entitlement]bool, e Entitlement) bool {
	return set[e] || (e == CanView && len(set) > 0)
}

// allows is the model: whether g grants e on o. The implications:
//   - admin on the server: everything;
//   - viewer on the server: every can_view* everywhere;
//   - operator on a project: every entitlement on every object in it, and
//     on the project all but can_edit and can_delete (LXD 5.0 gives a
//     restricted client no "manage-projects": editing its own project
//     would let it lift its own restricted.* and limits.*);
//   - viewer on a project: every can_view* in it;
//   - can_manage_instances on a project: creating (checked on the project)
//     and viewing and deleting its instances;
//   - can_view_instances on a project: viewing its instances;
//     can_operate_instances: viewing them and changing their state;
//   - any entitlement on an object: can_view on it, and can_view on the
//     project that holds it;
//   - what a project-level grant gives on project P it gives on every
//     project nested below P (tree.go): seed 003's permissions apply to
//     subgroups. Grants on single objects are not inherited.
func (g *grants) allows(o Object, e Entitlement) bool {
	if g.admin {
		return true
	}
	if g.server[Viewer] && viewing(e) {
		return true
	}
	if o.Type == TypeServer {
		return holds(g.server, e)
	}
	if o.Project != "" {
		if projectAllows(g.projects[o.Project], o, e) {
			return true
		}
		if o.Type == TypeProject && e == CanView && g.inside[o.Project] {
			return true
		}
		if len(g.projects) > 0 && g.tree != nil && g.inherited(o, e) {
			return true
		}
		if o.Type == TypeProject {
			return false
		}
	}
	return holds(g.objects[o], e)
}

// projectAllows tells whether the entitlements p, held on a project (o's
// own or one of its ancestors), grant e on o.
func projectAllows(p map[Entitlement]bool, o Object, e Entitlement) bool {
	if len(p) == 0 {
		return false
	}
	if p[Operator] && (o.Type != TypeProject || (e != CanEdit && e != CanDelete)) {
		return true
	}
	if p[Viewer] && viewing(e) {
		return true
	}
	switch o.Type {
	case TypeProject:
		return holds(p, e)
	case TypeInstance:
		switch e {
		case CanView:
			return p[CanManageInstances] || p[CanViewInstances] || p[CanOperateInstances]
		case CanDelete:
			return p[CanManageInstances]
		case CanUpdateState:
			return p[CanOperateInstances]
		}
	}
	return false
}
