package main

import (
	"context"
	"fmt"
	"time"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/client"
)

// execAPI runs `true` in an instance through the Go SDK, the way LXD's
// own clients do it: POST exec with wait-for-websocket, connect the
// control, stdin, stdout and stderr websockets, wait for the operation and
// its return code. It times that alone: the client is warm (its keep-alive
// connection open), there is no process to start.
func (a *lxdAPI) execAPI(ctx context.Context, name string) (float64, error) {
	return execTrue(ctx, a.c, name)
}

func execTrue(ctx context.Context, c *client.Client, name string) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	t0 := time.Now()
	e, err := c.ExecInstance(ctx, name, api.InstanceExecPost{Command: []string{"true"}}, client.ExecStreams{})
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", name, err)
	}
	code, err := e.Wait(ctx)
	ms := msSince(t0)
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", name, err)
	}
	if code != 0 {
		return 0, fmt.Errorf("exec true in %s: exit code %d", name, code)
	}
	return ms, nil
}

// pid1 is the host PID of an instance's PID 1, from its state.
func (a *lxdAPI) pid1(ctx context.Context, name string) (int, error) {
	st, err := a.c.GetInstanceState(ctx, name)
	if err != nil {
		return 0, err
	}
	if st.Pid <= 0 {
		return 0, fmt.Errorf("%s has no PID 1 (status %s)", name, st.Status)
	}
	return int(st.Pid), nil
}
