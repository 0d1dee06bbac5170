package project

import "context"

// Default is the project that always exists and that requests without a
// project act in.
const Default = "default"

// Features a project may have: each gives it its own set of one kind of
// object; without it the project shares the default project's.
const (
	FeatureImages         = "features.images"
	FeatureProfiles       = "features.profiles"
	FeatureStorageVolumes = "features.storage.volumes"
	FeatureNetworks       = "features.networks"
)

// Project is a project's record.
type Project struct {
	Name        string
	Description string
	// Parent is the project this one nests in, "" for a top-level one.
	Parent string
	Config map[string]string
}

// Scope returns the project that holds objects of feature's kind for p:
// p itself when it has the feature (the default project has them all),
// else the default project.
func (p Project) Scope(feature string) string {
	if p.Name == "" || p.Name == Default || p.Config[feature] == "true" {
		return p.nameOrDefault()
	}
	return Default
}

func (p Project) nameOrDefault() string {
	if p.Name == "" {
		return Default
	}
	return p.Name
}

type ctxKey struct{}

// WithProject returns ctx acting in p.
func WithProject(ctx context.Context, p Project) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the project ctx acts in: the default project when none was
// set (daemon-internal work such as recovery and schedules set the
// instance's own).
func From(ctx context.Context) Project {
	if p, ok := ctx.Value(ctxKey{}).(Project); ok && p.Name != "" {
		return p
	}
	return Project{Name: Default}
}

// Name returns the name of the project ctx acts in.
func Name(ctx context.Context) string { return From(ctx).Name }

type allKey struct{}

// WithAll returns ctx listing across every project (LXD's all-projects),
// for the lists that support it.
func WithAll(ctx context.Context) context.Context {
	return context.WithValue(ctx, allKey{}, true)
}

// All tells whether ctx lists across every project.
func All(ctx context.Context) bool {
	all, _ := ctx.Value(allKey{}).(bool)
	return all
}

// Sees tells whether a list in ctx shows an object of project p: every
// project's with All, else only ctx's own.
func Sees(ctx context.Context, p string) bool {
	return All(ctx) || p == Name(ctx)
}
