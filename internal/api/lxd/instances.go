package lxd

import (
	"context"
	"net/http"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/operation"
	"github.com/hangar-dev/hangar/internal/project"
)

// instanceResources names an operation's instances as LXD does: under
// "instances" and, for a container, under "containers" too, where clients
// written for LXD 3 look for the name of the container they created.
func instanceResources(typ string, names ...string) map[string][]string {
	res := map[string][]string{"instances": make([]string, len(names))}
	for i, n := range names {
		res["instances"][i] = instanceURL(n)
	}
	if typ == api.InstanceTypeContainer {
		res["containers"] = make([]string, len(names))
		for i, n := range names {
			res["containers"][i] = "/1.0/containers/" + n
		}
	}
	return res
}

// inInstanceProject returns ctx acting in an instance's project p, for a
// list across projects that reads more of each instance.
func inInstanceProject(ctx context.Context, p string) context.Context {
	if project.Name(ctx) == p {
		return ctx
	}
	return project.WithProject(ctx, project.Project{Name: p})
}

// typeOf is the type of the named instance, "" when there is none.
func (s *Server) typeOf(ctx context.Context, name string) string {
	inst, err := s.Instances.Get(ctx, name)
	if err != nil {
		return ""
	}
	return string(inst.Type)
}

// startOp runs fn as a task operation and answers 202.
func (s *Server) startOp(w http.ResponseWriter, r *http.Request, description string, resources map[string][]string, fn func(ctx context.Context) error) {
	op := s.Ops.Start(operation.Spec{
		Context:     r.Context(),
		Class:       api.OperationClassTask,
		Description: description,
		Resources:   resources,
		Run:         func(ctx context.Context, _ *operation.Op) error { return fn(ctx) },
	})
	writeAsync(w, op.Snapshot())
}

func (s *Server) listInstances(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	// Listing reads the project: an identity that may not view it (a
	// metrics certificate, a restricted one elsewhere) is refused, as
	// LXD refuses it, rather than shown an empty list.
	if !project.All(r.Context()) {
		if err := s.allow(r, auth.Project(project.Name(r.Context())), auth.CanView); err != nil {
			writeError(w, err)
			return
		}
	}
	f, err := parseFilter(r.URL.Query().Get("filter"))
	if err != nil {
		writeError(w, err)
		return
	}
	typ, err := urlType(r)
	if err != nil {
		writeError(w, err)
		return
	}
	base := collectionURL(r) + "/"
	if rec == 0 && f == nil && typ == "" && !project.All(r.Context()) {
		names := s.Instances.Names(r.Context())
		urls := make([]string, len(names))
		for i, n := range names {
			urls[i] = base + n
		}
		writeSync(w, urls, "")
		return
	}
	if rec == 2 {
		all := s.Instances.ListFull(r.Context())
		kept := make([]api.InstanceFull, 0, len(all))
		for _, in := range all {
			if typ != "" && string(in.Type) != typ {
				continue
			}
			full := toAPIFull(in)
			// instanceFields copies the instance into a closure: only
			// for a filter that reads it.
			if f == nil || f.match(instanceFields(full.Instance)) {
				kept = append(kept, full)
			}
		}
		// One query per instance kept: lxc list counts them (SNAPSHOTS).
		for i := range kept {
			if kept[i].Snapshots, err = s.snapshotsOf(inInstanceProject(r.Context(), kept[i].Project), kept[i].Name); err != nil {
				writeError(w, err)
				return
			}
		}
		writeSync(w, kept, "")
		return
	}
	all := s.Instances.List(r.Context())
	kept := make([]api.Instance, 0, len(all))
	for _, in := range all {
		if typ != "" && string(in.Type) != typ {
			continue
		}
		if a := toAPIInstance(in); f == nil || f.match(instanceFields(a)) {
			kept = append(kept, a)
		}
	}
	if rec == 0 {
		urls := make([]string, len(kept))
		for i, in := range kept {
			urls[i] = inProject(base+in.Name, in.Project)
		}
		writeSync(w, urls, "")
		return
	}
	writeSync(w, kept, "")
}

func (s *Server) createInstance(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Type") == "application/octet-stream" {
		s.importBackup(w, r) // backups.go
		return
	}
	var req api.InstancesPost
	err := decode(r, &req)
	if err != nil {
		writeError(w, err)
		return
	}
	// Before the service looks at the rest, so that lxc copy and move
	// hear what is missing rather than a complaint about the source
	// instance's config they send along.
	switch {
	case req.Source.Type == "migration":
		writeError(w, errdefs.NotImplemented("source type %q: moving instances between servers is not supported", req.Source.Type))
		return
	case req.Source.Type == "copy" && req.Source.Refresh:
		writeError(w, errdefs.NotImplemented("source: refreshing an existing copy is not supported"))
		return
	case req.Source.Type == "copy" && req.Source.Project != "" && req.Source.Project != defaultProject:
		writeError(w, errdefs.NotFound("project %q not found", req.Source.Project))
		return
	}
	// POST /1.0/virtual-machines creates a VM when the body names no type.
	if req.Type == "" {
		if req.Type, err = urlType(r); err != nil {
			writeError(w, err)
			return
		}
	}
	user, pass, err := registryAuth(r)
	if err != nil {
		writeError(w, err)
		return
	}
	c, err := s.Instances.Create(r.Context(), fromInstancesPost(req), instance.CreateOptions{RegistryUsername: user, RegistryPassword: pass})
	if err != nil {
		writeError(w, err)
		return
	}
	s.startCreate(w, r, c) // images_oci.go: with pull progress
}

func (s *Server) getInstance(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if rec >= 1 {
		full, err := s.Instances.GetFull(r.Context(), name)
		if err != nil {
			writeError(w, err)
			return
		}
		out := toAPIFull(full)
		if out.Snapshots, err = s.snapshotsOf(r.Context(), name); err != nil {
			writeError(w, err)
			return
		}
		writeSync(w, out, instanceETag(full.Instance))
		return
	}
	inst, err := s.Instances.Get(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPIInstance(inst), instanceETag(inst))
}

func (s *Server) putInstance(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var put api.InstancePut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	if put.Restore != "" {
		s.restoreSnapshot(w, r, name, put) // snapshots.go
		return
	}
	// Validate and apply before answering, so bad input is a 400 here and
	// not a failed operation; the operation only reports the done change.
	if err := s.Instances.Update(r.Context(), name, fromInstancePut(put), instanceMatch(ifMatch(r))); err != nil {
		writeError(w, err)
		return
	}
	s.startOp(w, r, "Updating instance", instanceResources(s.typeOf(r.Context(), name), name), func(context.Context) error { return nil })
}

func (s *Server) patchInstance(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var patch instancePatch
	if err := decode(r, &patch); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Instances.Patch(r.Context(), name, patch.core(), instanceMatch(ifMatch(r))); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) deleteInstance(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.Instances.CheckDelete(r.Context(), name); err != nil {
		writeError(w, err)
		return
	}
	s.startOp(w, r, "Deleting instance", instanceResources(s.typeOf(r.Context(), name), name), func(ctx context.Context) error {
		return s.Instances.Delete(ctx, name)
	})
}

func (s *Server) renameInstance(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.InstancePost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Migration || req.Live {
		writeError(w, errdefs.NotImplemented("migration is not supported by hangard yet"))
		return
	}
	// Bad names and names in use are answered here, not by a failed
	// operation.
	if err := s.Instances.CheckRename(r.Context(), name, req.Name); err != nil {
		writeError(w, err)
		return
	}
	s.startOp(w, r, "Renaming instance", instanceResources(s.typeOf(r.Context(), name), name, req.Name), func(ctx context.Context) error {
		return s.Instances.Rename(ctx, name, req.Name)
	})
}

// forkInstance forks an instance (hangar_fork): the operation's metadata
// says whether the fork runs the source's processes.
func (s *Server) forkInstance(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req api.InstanceForkPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.Name == "" {
		writeError(w, errdefs.Invalid("name: the fork needs a name"))
		return
	}
	// A missing source, a bad name or one in use: answered here. The
	// checks are a rename's, and a fork makes an instance.
	if checked(w, s.allowInProject(r, "", auth.CanManageInstances)) {
		return
	}
	if err := s.Instances.CheckRename(r.Context(), name, req.Name); err != nil {
		writeError(w, err)
		return
	}
	typ := s.typeOf(r.Context(), name)
	op := s.Ops.Start(operation.Spec{
		Context:     r.Context(),
		Class:       api.OperationClassTask,
		Description: "Forking instance",
		Resources:   instanceResources(typ, name, req.Name),
		Run: func(ctx context.Context, op *operation.Op) error {
			res, err := s.Instances.Fork(ctx, name, req.Name)
			if err != nil {
				return err
			}
			return op.SetMetadata(map[string]any{"name": res.Name, "processes": res.Processes,
				"pause_ms": float64(res.Pause.Microseconds()) / 1000})
		},
	})
	writeAsync(w, op.Snapshot())
}

func (s *Server) getInstanceState(w http.ResponseWriter, r *http.Request) {
	st, err := s.Instances.State(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, toAPIState(st), "")
}

// statePut is api.InstanceStatePut with an optional timeout, because an
// absent timeout means "the default" while 0 means "no grace".
type statePut struct {
	Action   string `json:"action"`
	Timeout  *int   `json:"timeout"`
	Force    bool   `json:"force"`
	Stateful bool   `json:"stateful"`
}

func (s *Server) putInstanceState(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req statePut
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	// As LXD: a missing instance is a 404 before a bad action is a 400.
	if checked(w, s.allowInstance(r, name, auth.CanUpdateState)) {
		return
	}
	inst, err := s.Instances.Get(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	opts := instance.StopOptions{Timeout: -1, Force: req.Force, Stateful: req.Stateful}
	if req.Timeout != nil && *req.Timeout >= 0 {
		opts.Timeout = time.Duration(*req.Timeout) * time.Second
	}
	var fn func(ctx context.Context) error
	var desc string
	switch req.Action {
	case api.ActionStart:
		desc, fn = "Starting instance", func(ctx context.Context) error { return s.Instances.Start(ctx, name) }
	case api.ActionStop:
		desc, fn = "Stopping instance", func(ctx context.Context) error { return s.Instances.Stop(ctx, name, opts) }
	case api.ActionRestart:
		desc, fn = "Restarting instance", func(ctx context.Context) error { return s.Instances.Restart(ctx, name, opts) }
	case api.ActionFreeze:
		desc, fn = "Freezing instance", func(ctx context.Context) error { return s.Instances.Freeze(ctx, name) }
	case api.ActionUnfreeze:
		desc, fn = "Unfreezing instance", func(ctx context.Context) error { return s.Instances.Unfreeze(ctx, name) }
	default:
		writeError(w, errdefs.Invalid("Unknown action: '%s'", req.Action))
		return
	}
	// A VM's state can be saved (standby) and is restored by the next
	// start; a container's cannot.
	if req.Stateful && (inst.Type != instance.TypeVM || (req.Action != api.ActionStop && req.Action != api.ActionStart)) {
		writeError(w, errdefs.Invalid("stateful: stateful stop and start are supported for virtual machines only"))
		return
	}
	s.startOp(w, r, desc, instanceResources(string(inst.Type), name), fn)
}

func (s *Server) getConsoleLog(w http.ResponseWriter, r *http.Request) {
	log, err := s.Instances.ConsoleLog(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(log)
}

func (s *Server) deleteConsoleLog(w http.ResponseWriter, r *http.Request) {
	if err := s.Instances.ClearConsoleLog(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}
