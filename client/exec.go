package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync"
	"syscall"

	"github.com/coder/websocket"

	"github.com/hangar-dev/hangar/api"
)

// ExecStreams are the local ends of a command's streams. With a terminal
// (InstanceExecPost.Interactive) the command's output, stderr included,
// all goes to Stdout.
type ExecStreams struct {
	Stdin          io.Reader // nil: no input (the command sees EOF)
	Stdout, Stderr io.Writer // nil: discarded
}

// Exec is a command running in an instance, attached to local streams.
type Exec struct {
	op      *Operation
	control *websocket.Conn
	conns   []*websocket.Conn
	output  sync.WaitGroup // output streams mirrored to their end
	ctlMu   sync.Mutex
}

// ExecInstance runs a command in an instance, LXD's way: the daemon hands
// out websockets (stdin, stdout, stderr and control; or one terminal stream
// and control when interactive) and starts the command once they are all
// connected. WaitForWS is forced on.
func (c *Client) ExecInstance(ctx context.Context, name string, req api.InstanceExecPost, streams ExecStreams) (*Exec, error) {
	req.WaitForWS = true
	op, err := c.queryOperation(ctx, "POST", "/1.0/instances/"+url.PathEscape(name)+"/exec", req, "")
	if err != nil {
		return nil, err
	}
	md := op.Get().Metadata
	rawFds, _ := md["fds"].(map[string]any)
	fds := map[string]string{}
	for k, v := range rawFds {
		if s, ok := v.(string); ok {
			fds[k] = s
		}
	}
	want := []string{"control", "0", "1", "2"}
	if req.Interactive {
		want = []string{"control", "0"}
	}
	for _, k := range want {
		if fds[k] == "" {
			return nil, fmt.Errorf("exec: the daemon offered no %q stream", k)
		}
	}
	// Control first, as lxc does: the daemon starts the command once the
	// data streams are connected, and a command that ends (or fails) at once
	// closes the operation's streams, control included. Then the data
	// streams all at once.
	conns := make([]*websocket.Conn, len(want))
	errs := make([]error, len(want))
	conns[0], errs[0] = c.operationWebsocket(ctx, op.ID(), fds[want[0]])
	if errs[0] == nil {
		var wg sync.WaitGroup
		for i, k := range want[1:] {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conns[i+1], errs[i+1] = c.operationWebsocket(ctx, op.ID(), fds[k])
			}()
		}
		wg.Wait()
	}
	if err := errors.Join(errs...); err != nil {
		for _, conn := range conns {
			if conn != nil {
				conn.CloseNow()
			}
		}
		return nil, fmt.Errorf("exec: connect: %w", err)
	}
	e := &Exec{op: op, control: conns[0], conns: conns[1:]}
	// The control stream carries nothing to us; reading it processes the
	// daemon's close.
	go func() {
		for {
			if _, _, err := e.control.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	// conns: control, then "0" (stdin, or the terminal both ways), then
	// "1" and "2" without a terminal.
	go sendWS(conns[1], streams.Stdin)
	outs := map[*websocket.Conn]io.Writer{conns[1]: streams.Stdout}
	if !req.Interactive {
		outs = map[*websocket.Conn]io.Writer{conns[2]: streams.Stdout, conns[3]: streams.Stderr}
	}
	for conn, w := range outs {
		e.output.Add(1)
		go func() {
			defer e.output.Done()
			recvWS(conn, w)
		}()
	}
	return e, nil
}

func (c *Client) operationWebsocket(ctx context.Context, opID, secret string) (*websocket.Conn, error) {
	u := c.inProject(c.wsBase + "/1.0/operations/" + url.PathEscape(opID) + "/websocket?secret=" + url.QueryEscape(secret))
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient: c.http,
		HTTPHeader: c.headers(),
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%s", resp.Status)
		}
		return nil, err
	}
	conn.SetReadLimit(-1)
	return conn, nil
}

// Wait waits for the command to end and its output to arrive, and returns
// its exit code. A command that could not start is an error, with the
// exit code the daemon gave it when it gave one (127: not found), else -1.
func (e *Exec) Wait(ctx context.Context) (int, error) {
	err := e.op.Wait(ctx)
	defer e.close()
	if err != nil {
		if code, ok := e.op.Get().Metadata["return"].(float64); ok {
			return int(code), err
		}
		return -1, err
	}
	e.output.Wait()
	code, ok := e.op.Get().Metadata["return"].(float64)
	if !ok {
		return -1, errors.New("exec: the operation carries no exit code")
	}
	return int(code), nil
}

func (e *Exec) close() {
	for _, c := range append(e.conns, e.control) {
		c.Close(websocket.StatusNormalClosure, "")
	}
}

// Resize tells the command's terminal its new size.
func (e *Exec) Resize(width, height int) error {
	return e.sendControl(api.InstanceExecControl{Command: "window-resize",
		Args: map[string]string{"width": strconv.Itoa(width), "height": strconv.Itoa(height)}})
}

// Signal sends a signal to the command.
func (e *Exec) Signal(sig syscall.Signal) error {
	return e.sendControl(api.InstanceExecControl{Command: "signal", Signal: int(sig)})
}

func (e *Exec) sendControl(msg api.InstanceExecControl) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	e.ctlMu.Lock()
	defer e.ctlMu.Unlock()
	return e.control.Write(context.Background(), websocket.MessageText, b)
}

// sendWS copies r to conn as binary messages and ends with LXD's end of
// stream, an empty text message.
func sendWS(conn *websocket.Conn, r io.Reader) {
	ctx := context.Background()
	if r != nil {
		buf := make([]byte, 32*1024)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if conn.Write(ctx, websocket.MessageBinary, buf[:n]) != nil {
					return
				}
			}
			if err != nil {
				break
			}
		}
	}
	_ = conn.Write(ctx, websocket.MessageText, nil)
}

// recvWS copies binary messages to w until the end of stream.
func recvWS(conn *websocket.Conn, w io.Writer) {
	ctx := context.Background()
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil || typ == websocket.MessageText {
			return
		}
		if w != nil {
			if _, err := w.Write(b); err != nil {
				return
			}
		}
	}
}

// Console is a client attached to an instance's console.
type Console struct {
	op      *Operation
	conn    *websocket.Conn
	control *websocket.Conn
	output  chan struct{} // closed when the daemon ends the output
}

// AttachConsole attaches to an instance's console: what the console prints
// from now on is copied to out, and in to its input, until Detach.
func (c *Client) AttachConsole(ctx context.Context, name string, post api.InstanceConsolePost, in io.Reader, out io.Writer) (*Console, error) {
	op, err := c.queryOperation(ctx, "POST", "/1.0/instances/"+url.PathEscape(name)+"/console", post, "")
	if err != nil {
		return nil, err
	}
	rawFds, _ := op.Get().Metadata["fds"].(map[string]any)
	secret := func(k string) string { s, _ := rawFds[k].(string); return s }
	if secret("0") == "" || secret("control") == "" {
		return nil, errors.New("console: the daemon offered no console stream")
	}
	control, err := c.operationWebsocket(ctx, op.ID(), secret("control"))
	if err != nil {
		return nil, fmt.Errorf("console: connect: %w", err)
	}
	conn, err := c.operationWebsocket(ctx, op.ID(), secret("0"))
	if err != nil {
		control.CloseNow()
		return nil, fmt.Errorf("console: connect: %w", err)
	}
	con := &Console{op: op, conn: conn, control: control, output: make(chan struct{})}
	go func() {
		for {
			if _, _, err := control.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	go sendWS(conn, in)
	go func() {
		defer close(con.output)
		recvWS(conn, out)
	}()
	return con, nil
}

// Output is closed when the daemon ends the console's output (the session
// ended on its side).
func (c *Console) Output() <-chan struct{} { return c.output }

// Detach leaves the console and waits for the operation to end.
func (c *Console) Detach(ctx context.Context) error {
	c.control.Close(websocket.StatusNormalClosure, "detach")
	c.conn.Close(websocket.StatusNormalClosure, "detach")
	return c.op.Wait(ctx)
}
