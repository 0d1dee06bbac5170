package virt

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/operation"
	"github.com/hangar-dev/hangar/internal/project"
)

// Jobs are the daemon's operations seen from this dialect: each gets an
// integer id the first time the edge sees it (its own jobs at start,
// others' when listed or announced). The operation registry keeps
// status, times and expiry; the edge keeps what the middleware adds: the
// method and arguments of its own jobs, and their result or error.

// jobIDKey is the operation metadata key holding a job's id, so the
// watcher maps the operation's events to the job from the first one.
const jobIDKey = "virt_job_id"

type job struct {
	id     int64
	opID   string
	method string
	args   any
	// Set by the job's run before the operation ends.
	result  any
	errText string
	errno   int
}

type jobTable struct {
	mu   sync.Mutex
	next int64
	byID map[int64]*job
	byOp map[string]*job
}

func (t *jobTable) init() {
	if t.byID == nil {
		t.byID = map[int64]*job{}
		t.byOp = map[string]*job{}
	}
}

func (t *jobTable) add(j *job) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	t.next++
	j.id = t.next
	t.byID[j.id] = j
}

// of returns the job of an operation, made the first time it is seen.
func (t *jobTable) of(op api.Operation) *job {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	if j := t.byOp[op.ID]; j != nil {
		return j
	}
	if v, ok := op.Metadata[jobIDKey]; ok {
		if id, ok := asInt(v); ok {
			if j := t.byID[id]; j != nil {
				j.opID = op.ID
				t.byOp[op.ID] = j
				return j
			}
		}
	}
	t.next++
	j := &job{id: t.next, opID: op.ID, method: "hangar.operation"}
	t.byID[j.id] = j
	t.byOp[op.ID] = j
	return j
}

func (t *jobTable) get(id int64) *job {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.init()
	return t.byID[id]
}

// forget drops jobs whose operation expired.
func (t *jobTable) forget(live map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, j := range t.byID {
		if j.opID != "" && !live[j.opID] {
			delete(t.byID, id)
			delete(t.byOp, j.opID)
		}
	}
}

// paramsOf is a call's parameters as the job's arguments.
func paramsOf(a *args) []any {
	out := make([]any, 0, len(a.params))
	for i := range a.params {
		v, _, _ := a.value(i)
		out = append(out, v)
	}
	return out
}

// startJob runs fn as an operation and returns the job's id at once.
func (s *Server) startJob(ctx context.Context, a *args, desc string, fn func(context.Context) (any, error)) int64 {
	j := &job{method: a.method, args: paramsOf(a)}
	s.jobs.add(j)
	op := s.Ops.Start(operation.Spec{
		Description: desc,
		Context:     ctx,
		Metadata:    map[string]any{jobIDKey: j.id},
		Run: func(ctx context.Context, op *operation.Op) error {
			res, err := fn(ctx)
			s.jobs.mu.Lock()
			defer s.jobs.mu.Unlock()
			if err != nil {
				r := toRPCError(a.method, err, s.log())
				j.errText, j.errno = r.Data.Reason, r.Data.Error
				return err
			}
			j.result = res
			return nil
		},
	})
	s.jobs.mu.Lock()
	if j.opID == "" {
		j.opID = op.ID()
		s.jobs.byOp[j.opID] = j
	}
	s.jobs.mu.Unlock()
	return j.id
}

func jobState(op api.Operation) string {
	switch op.StatusCode {
	case api.Pending:
		return "WAITING"
	case api.Success:
		return "SUCCESS"
	case api.Failure:
		return "FAILED"
	case api.Cancelled:
		return "ABORTED"
	}
	return "RUNNING"
}

func date(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return map[string]any{"$date": t.UnixMilli()}
}

// jobEntry is the middleware's job of an operation.
func (s *Server) jobEntry(j *job, op api.Operation) map[string]any {
	s.jobs.mu.Lock()
	defer s.jobs.mu.Unlock()
	state := jobState(op)
	final := state == "SUCCESS" || state == "FAILED" || state == "ABORTED"
	percent := 0
	if final {
		percent = 100
	}
	progress := map[string]any{"percent": percent, "description": nil, "extra": nil}
	if d, ok := op.Metadata["progress"]; ok {
		progress["extra"] = d
	}
	e := map[string]any{
		"id": j.id, "method": j.method, "arguments": j.args, "transient": false,
		"description": op.Description, "abortable": op.MayCancel,
		"logs_path": nil, "logs_excerpt": nil, "progress": progress,
		"result": nil, "result_encoding_error": nil, "error": nil, "exception": nil, "exc_info": nil,
		"state": state, "time_started": date(op.CreatedAt), "time_finished": nil, "credentials": nil,
	}
	if j.args == nil {
		e["arguments"] = []any{}
	}
	if final {
		e["time_finished"] = date(op.UpdatedAt)
	}
	switch state {
	case "SUCCESS":
		if j.method == "hangar.operation" {
			e["result"] = op.Metadata
		} else {
			e["result"] = j.result
		}
	case "FAILED", "ABORTED":
		msg, errno := j.errText, j.errno
		if msg == "" {
			msg, errno = op.Err, errnoEFAULT
		}
		e["error"] = msg
		e["exc_info"] = map[string]any{"type": "CallError", "errno": errno, "extra": nil, "repr": msg}
	}
	return normalize(e).(map[string]any)
}

// jobsOf lists the jobs of ctx's project (every operation of it,
// whichever API started it).
func (s *Server) jobsOf(ctx context.Context) []map[string]any {
	ops := s.Ops.ListOps()
	live := make(map[string]bool, len(ops))
	out := make([]map[string]any, 0, len(ops))
	p := project.Name(ctx)
	for _, op := range ops {
		live[op.ID()] = true
		if op.Project() != p {
			continue
		}
		snap := op.Snapshot()
		out = append(out, s.jobEntry(s.jobs.of(snap), snap))
	}
	s.jobs.forget(live)
	return out
}

func coreGetJobs(ctx context.Context, c *session, a *args) (any, error) {
	return runQuery(a, c.s.jobsOf(ctx))
}

// coreJobWait waits for a job to end: its result, or its error.
func coreJobWait(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(1); err != nil {
		return nil, err
	}
	v, ok, err := a.value(0)
	if err != nil {
		return nil, err
	}
	id, isInt := asInt(v)
	if !ok || !isInt {
		return nil, invalid(a.method+".id", "Input should be a valid integer")
	}
	j := c.s.jobs.get(id)
	if j == nil {
		return nil, newCallError(errnoENOENT, "Job %d does not exist", id)
	}
	op, err := c.s.Ops.Lookup(j.opID)
	if err != nil {
		return nil, newCallError(errnoENOENT, "Job %d does not exist", id)
	}
	if op.Project() != project.Name(ctx) {
		return nil, newCallError(errnoENOENT, "Job %d does not exist", id)
	}
	select {
	case <-op.Done():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	e := c.s.jobEntry(j, op.Snapshot())
	if e["state"] != "SUCCESS" {
		errno := errnoEFAULT
		if x, ok := e["exc_info"].(map[string]any); ok {
			if n, ok := asInt(x["errno"]); ok {
				errno = int(n)
			}
		}
		msg, _ := e["error"].(string)
		return nil, &callError{errno: errno, msg: trimErrname(msg)}
	}
	return e["result"], nil
}

// trimErrname drops a leading "[ENAME] " (callError adds its own).
func trimErrname(s string) string {
	if len(s) > 0 && s[0] == '[' {
		if i := indexByte(s, ']'); i > 0 && i+2 <= len(s) {
			return s[i+2:]
		}
	}
	return s
}

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}

// opOfEvent decodes an "operation" event's metadata.
func opOfEvent(md json.RawMessage) (api.Operation, error) {
	var op api.Operation
	if err := json.Unmarshal(md, &op); err != nil {
		return op, err
	}
	if op.ID == "" {
		return op, errors.New("operation event without id")
	}
	return op, nil
}
