package auth

// Nested projects (seed 003's groups): a permission held on project P
// applies to every project below P. The Authorizer keeps the nesting as
// a map child -> parent, swapped whole by the project domain after every
// write (SetProjectTree), so a check reads it without a lock. A check
// whose group holds nothing on the object's project walks the object's
// ancestors, one map lookup per level, and only for groups holding some
// project-level grant: a check on a flat tree costs what it did.

// parents maps a project to the project it nests in; top-level projects
// are absent.
type parents map[string]string

// maxDepth bounds an ancestor walk: the project domain refuses loops,
// this keeps a bad map from spinning a check.
const maxDepth = 64

// SetProjectTree replaces the project nesting the Authorizer knows:
// parent maps each nested project to its parent. The daemon calls it at
// start and after every project write.
func (a *Authorizer) SetProjectTree(parent map[string]string) {
	m := make(parents, len(parent))
	for child, p := range parent {
		if p != "" && p != child {
			m[child] = p
		}
	}
	a.tree.Store(&m)
}

// inherited tells whether a project-level grant of g on an ancestor of
// o's project grants e on o.
func (g *grants) inherited(o Object, e Entitlement) bool {
	tree := g.tree.Load()
	if tree == nil || len(*tree) == 0 {
		return false
	}
	m := *tree
	p, n := m[o.Project], 0
	for p != "" && n < maxDepth {
		if projectAllows(g.projects[p], o, e) {
			return true
		}
		p, n = m[p], n+1
	}
	return false
}
