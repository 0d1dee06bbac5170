package daemon

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/project"
)

// A lifecycle event names who caused it and in which project, from the
// request's context, unless the entity names its own project.
func TestLifecycleRequestorAndProject(t *testing.T) {
	cert := auth.Identity{Kind: auth.KindCertificate, Name: "bob", Fingerprint: "ab12", Address: "127.0.0.1:5000"}
	tests := []struct {
		name        string
		ctx         context.Context
		entity      event.Entity
		wantProject string
		want        *event.Requestor
	}{
		{"daemon's own work", context.Background(), event.Entity{Kind: event.EntityInstance, Name: "c1"}, "default", nil},
		{"unix root", auth.WithIdentity(context.Background(), auth.Identity{Kind: auth.KindUnix, Name: "root", Address: "@"}),
			event.Entity{Kind: event.EntityInstance, Name: "c1"}, "default", &event.Requestor{Username: "root", Protocol: "unix", Address: "@"}},
		{"certificate in a project", project.WithProject(auth.WithIdentity(context.Background(), cert), project.Project{Name: "p1"}),
			event.Entity{Kind: event.EntityInstance, Name: "c1"}, "p1", &event.Requestor{Username: "ab12", Protocol: "tls", Address: "127.0.0.1:5000"}},
		{"entity names its project", project.WithProject(auth.WithIdentity(context.Background(), cert), project.Project{Name: "p1"}),
			event.Entity{Kind: event.EntityProfile, Name: "default", Project: "default"}, "default", &event.Requestor{Username: "ab12", Protocol: "tls", Address: "127.0.0.1:5000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hub := event.New(10, "none")
			sub, err := hub.Subscribe(nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			(&lifecycle{hub: hub}).Lifecycle(tt.ctx, "instance-created", tt.entity, nil)
			ev := <-sub.C()
			if ev.Project != tt.wantProject || ev.Lifecycle.Entity.Project != tt.wantProject {
				t.Errorf("project %q (entity %q), want %q", ev.Project, ev.Lifecycle.Entity.Project, tt.wantProject)
			}
			if diff := cmp.Diff(tt.want, ev.Lifecycle.Requestor); diff != "" {
				t.Errorf("requestor (-want +got):\n%s", diff)
			}
		})
	}
}
