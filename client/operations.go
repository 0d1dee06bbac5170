package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// Operation is a handle on a background task the daemon started for a
// request. Its methods are safe for concurrent use.
type Operation struct {
	c  *Client
	mu sync.Mutex
	op api.Operation
}

// newOperation builds the handle from an async envelope: its metadata is the
// operation, its "operation" field the operation's URL.
func (c *Client) newOperation(r *api.Response) (*Operation, error) {
	var op api.Operation
	if err := decodeMetadata(r, &op); err != nil {
		return nil, err
	}
	if op.ID == "" && r.Operation != "" {
		op.ID = path.Base(r.Operation)
	}
	if op.ID == "" {
		return nil, errors.New("invalid response from hangard: async response without an operation")
	}
	return &Operation{c: c, op: op}, nil
}

// doneOperation wraps a sync answer to an endpoint expected to be async: the
// work is done, so the handle starts out successful.
func doneOperation(c *Client, r *api.Response) *Operation {
	op := api.Operation{
		Class:      api.OperationClassTask,
		Status:     api.Success.String(),
		StatusCode: api.Success,
	}
	var md map[string]any
	if json.Unmarshal(r.Metadata, &md) == nil {
		op.Metadata = md
	}
	return &Operation{c: c, op: op}
}

// ID returns the operation's UUID ("" for work the daemon did synchronously).
func (o *Operation) ID() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.op.ID
}

// Get returns the operation as last seen: at creation, or after the latest
// Wait or Refresh. It makes no request.
func (o *Operation) Get() api.Operation {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.op
}

func (o *Operation) set(op api.Operation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.op = op
}

// Refresh fetches the operation's current state.
func (o *Operation) Refresh(ctx context.Context) (api.Operation, error) {
	cur := o.Get()
	if cur.ID == "" {
		return cur, nil
	}
	op, err := o.c.GetOperation(ctx, cur.ID)
	if err != nil {
		return cur, err
	}
	o.set(*op)
	return *op, nil
}

// Wait blocks until the operation ends or ctx is done. It returns nil on
// Success and an *OperationError, whose message is the daemon's, on Failure
// or Cancelled. Cancelling ctx stops waiting; it does not cancel the
// operation (use Cancel for that).
func (o *Operation) Wait(ctx context.Context) error {
	for {
		cur := o.Get()
		if cur.StatusCode.IsFinal() || cur.ID == "" {
			return operationResult(cur)
		}
		start := time.Now()
		op, err := o.c.WaitOperation(ctx, cur.ID, -1)
		if err != nil {
			return err
		}
		o.set(*op)
		if op.StatusCode.IsFinal() {
			return operationResult(*op)
		}
		// A daemon that caps long polls returns a running operation: poll
		// again, but never spin if it answers at once.
		if wait := 250*time.Millisecond - time.Since(start); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
	}
}

// Cancel asks the daemon to cancel the operation (DELETE). Only operations
// with may_cancel set can be cancelled.
func (o *Operation) Cancel(ctx context.Context) error {
	id := o.ID()
	if id == "" {
		return errors.New("operation already finished")
	}
	return o.c.CancelOperation(ctx, id)
}

// operationResult maps a finished operation to Wait's result.
func operationResult(op api.Operation) error {
	switch op.StatusCode {
	case api.Failure, api.Cancelled:
		return &OperationError{Operation: op}
	}
	if op.Err != "" {
		return &OperationError{Operation: op}
	}
	return nil
}

// GetOperationIDs returns the IDs of all known operations.
func (c *Client) GetOperationIDs(ctx context.Context) ([]string, error) {
	var byStatus map[string][]string
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/operations", nil, "", &byStatus); err != nil {
		return nil, fmt.Errorf("list operations: %w", err)
	}
	var ids []string
	for _, urls := range byStatus {
		ids = append(ids, namesFromURLs(urls, "/1.0/operations/")...)
	}
	slices.Sort(ids)
	return ids, nil
}

// GetOperations returns all known operations, oldest first. The daemon
// groups them by lower-case status ("running", "success", ...); the grouping
// is flattened here.
func (c *Client) GetOperations(ctx context.Context) ([]api.Operation, error) {
	var byStatus map[string][]api.Operation
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/operations?recursion=1", nil, "", &byStatus); err != nil {
		return nil, fmt.Errorf("list operations: %w", err)
	}
	ops := []api.Operation{}
	for _, list := range byStatus {
		ops = append(ops, list...)
	}
	slices.SortFunc(ops, func(a, b api.Operation) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return ops, nil
}

// GetOperation returns one operation.
func (c *Client) GetOperation(ctx context.Context, id string) (*api.Operation, error) {
	var op api.Operation
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/operations/"+escape(id), nil, "", &op); err != nil {
		return nil, err
	}
	return &op, nil
}

// WaitOperation blocks until the operation ends or timeout seconds pass
// (-1: no limit) and returns it as it then is. It does not turn a failed
// operation into an error; Operation.Wait does.
func (c *Client) WaitOperation(ctx context.Context, id string, timeout int) (*api.Operation, error) {
	if timeout < 0 {
		timeout = -1
	}
	var op api.Operation
	p := "/1.0/operations/" + escape(id) + "/wait?timeout=" + strconv.Itoa(timeout)
	if _, err := c.queryStruct(ctx, http.MethodGet, p, nil, "", &op); err != nil {
		return nil, err
	}
	return &op, nil
}

// CancelOperation cancels an operation (DELETE /1.0/operations/{id}).
func (c *Client) CancelOperation(ctx context.Context, id string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, "/1.0/operations/"+escape(id), nil, "", nil)
	return err
}

// OperationInstanceNames returns the instance names an operation's resources
// list, e.g. the name the daemon picked for an unnamed new instance.
func OperationInstanceNames(op api.Operation) []string {
	for _, key := range []string{"instances", "containers", "virtual-machines"} {
		if urls := op.Resources[key]; len(urls) > 0 {
			return namesFromURLs(urls, "/1.0/"+key+"/")
		}
	}
	return nil
}
