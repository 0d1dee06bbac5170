package lxd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/operation"
)

// connectTimeout is how long an exec waits for its websockets, as LXD.
const connectTimeout = 5 * time.Second

// execInstance runs a command, as LXD does: with wait-for-websocket, a
// websocket operation whose streams the client connects to before the
// command starts (stdin, stdout, stderr and control; or one terminal
// stream and control when interactive); without, a task whose output is
// discarded or recorded as log files. Either way the operation's metadata
// gets "return", the exit code, kept as long as the operation is.
func (s *Server) execInstance(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var post api.InstanceExecPost
	if err := decode(r, &post); err != nil {
		writeError(w, err)
		return
	}
	req := instance.ExecRequest{
		Command:     post.Command,
		Environment: post.Environment,
		Cwd:         post.Cwd,
		User:        post.User,
		Group:       post.Group,
		TTY:         post.Interactive && post.WaitForWS,
		Width:       post.Width,
		Height:      post.Height,
	}
	if err := req.Validate(); err != nil {
		writeError(w, err)
		return
	}
	if post.RecordOutput && post.WaitForWS {
		writeError(w, errdefs.Invalid("record-output: only without wait-for-websocket (the output goes to the websockets)"))
		return
	}
	if err := s.Instances.CheckExec(r.Context(), name); err != nil {
		writeError(w, err)
		return
	}
	md := map[string]any{"command": post.Command, "environment": post.Environment, "interactive": req.TTY}
	if !post.WaitForWS {
		op := s.Ops.Start(operation.Spec{
			Context:     r.Context(),
			Class:       api.OperationClassTask,
			Description: "Executing command",
			Resources:   instanceResources(s.typeOf(r.Context(), name), name),
			Metadata:    md,
			Run: func(ctx context.Context, op *operation.Op) error {
				return s.execTask(ctx, op, name, req, post.RecordOutput)
			},
		})
		writeAsync(w, op.Snapshot())
		return
	}

	streams, required := []string{"0", "1", "2", "control"}, map[string]bool{"0": true, "1": true, "2": true}
	if req.TTY {
		streams, required = []string{"0", "control"}, map[string]bool{"0": true, "control": true}
	}
	set, err := newSocketSet(streams, required)
	if err != nil {
		writeError(w, err)
		return
	}
	s.startSocketOp(r.Context(), w, "Executing command", name, set, md, func(ctx context.Context, op *operation.Op) error {
		return s.execSession(ctx, op, name, req, set)
	})
}

// execTask runs a command with no websockets: stdin is empty, and the
// output is recorded under the instance's logs or discarded.
func (s *Server) execTask(ctx context.Context, op *operation.Op, name string, req instance.ExecRequest, record bool) error {
	md := map[string]any{}
	if record {
		out, err := s.Instances.CreateExecOutput(ctx, name, "exec_"+op.ID())
		if err != nil {
			return err
		}
		defer out.Close()
		req.Stdout, req.Stderr = out.Stdout, out.Stderr
		dir := instanceURL(name) + "/logs/exec-output/"
		md["output"] = map[string]any{"1": dir + out.StdoutName, "2": dir + out.StderrName}
	}
	p, err := s.Instances.Exec(ctx, name, req)
	if err != nil {
		return execFailed(op, err)
	}
	code, err := p.Wait()
	if err != nil {
		return fmt.Errorf("wait for command: %w", err)
	}
	md["return"] = code
	return op.SetMetadata(md)
}

// execSession runs a command wired to the operation's websockets.
func (s *Server) execSession(ctx context.Context, op *operation.Op, name string, req instance.ExecRequest, set *socketSet) error {
	// A timer stopped once the streams are there, rather than a
	// time.After that lives on for connectTimeout after every exec.
	connect := time.NewTimer(connectTimeout)
	select {
	case <-set.ready:
		connect.Stop()
	case <-connect.C:
		return errors.New("timed out waiting for websockets to connect")
	case <-ctx.Done():
		connect.Stop()
		return ctx.Err()
	}
	// A session outlives the request that started it; its end is the
	// command's end, or the client going away.
	var mirrors sync.WaitGroup
	var p instance.Process
	if req.TTY {
		var err error
		if p, err = s.Instances.Exec(ctx, name, req); err != nil {
			return execFailed(op, err)
		}
		tty := p.TTY()
		defer tty.Close()
		conn := set.conn("0")
		mirrors.Add(1)
		go func() {
			defer mirrors.Done()
			sendStream(conn, tty)
		}()
		go recvStream(conn, tty, nil)
	} else {
		var files [6]*os.File // stdin r/w, stdout r/w, stderr r/w
		for i := 0; i < 6; i += 2 {
			// The command's end (stdin's read end, the others' write
			// ends) is a plain blocking file: os.Pipe would register it
			// with the poller only for the exec to switch it back.
			r, w, err := execPipe(i != 0)
			if err != nil {
				closeAll(files[:i])
				return err
			}
			files[i], files[i+1] = r, w
		}
		req.Stdin, req.Stdout, req.Stderr = files[0], files[3], files[5]
		var err error
		p, err = s.Instances.Exec(ctx, name, req)
		// The child has its copies; ours of its ends must go, so that
		// EOF reaches each side.
		closeAll([]*os.File{files[0], files[3], files[5]})
		if err != nil {
			closeAll([]*os.File{files[1], files[2], files[4]})
			return execFailed(op, err)
		}
		go recvStream(set.conn("0"), files[1], func() { files[1].Close() })
		for _, f := range []struct {
			conn *websocket.Conn
			r    *os.File
		}{{set.conn("1"), files[2]}, {set.conn("2"), files[4]}} {
			mirrors.Add(1)
			go func() {
				defer mirrors.Done()
				defer f.r.Close()
				sendStream(f.conn, f.r)
			}()
		}
	}

	exited := make(chan struct{})
	if c := set.conn("control"); c != nil {
		go s.execControl(c, p, exited)
	}
	code, err := p.Wait()
	close(exited)
	if err != nil {
		return fmt.Errorf("wait for command: %w", err)
	}
	if tty := p.TTY(); tty != nil {
		// Output still in the terminal is read until the last holder of
		// its other side is gone (EIO); a background process keeping it
		// open does not hold the session up for long.
		tty.SetReadDeadline(time.Now().Add(time.Second))
	}
	mirrors.Wait()
	return op.SetMetadata(map[string]any{"return": code})
}

// execFailed ends an exec whose command could not start. A command that
// does not exist gets the shell's exit code, 127, as LXD gives it, beside
// the error: clients exit with it.
func execFailed(op *operation.Op, err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		_ = op.SetMetadata(map[string]any{"return": 127})
	}
	return err
}

// execControl serves the control stream: window size and signals. A client
// that drops it while the command runs has gone, and the command is killed,
// as LXD does.
func (s *Server) execControl(conn *websocket.Conn, p instance.Process, exited <-chan struct{}) {
	for {
		typ, b, err := conn.Read(context.Background())
		if err != nil {
			select {
			case <-exited:
			default:
				s.Log.Warn("exec control stream closed while the command runs: killing it", "pid", p.Pid(), "err", err)
				_ = p.Signal(syscall.SIGKILL)
			}
			return
		}
		if typ != websocket.MessageText && typ != websocket.MessageBinary {
			continue
		}
		var msg api.InstanceExecControl
		if err := json.Unmarshal(b, &msg); err != nil {
			s.Log.Debug("bad exec control message", "err", err)
			continue
		}
		switch msg.Command {
		case "window-resize":
			w, errW := strconv.Atoi(msg.Args["width"])
			h, errH := strconv.Atoi(msg.Args["height"])
			if errW != nil || errH != nil {
				continue
			}
			_ = p.Resize(w, h)
		case "signal":
			if msg.Signal > 0 && msg.Signal < 65 {
				_ = p.Signal(syscall.Signal(msg.Signal))
			}
		}
	}
}

// streamBuffers are sendStream's buffers: every exec has two or three
// streams, and most carry a few bytes; the pool spares a fresh 32 KiB
// each (zeroed, then collected) per stream per exec.
var streamBuffers = sync.Pool{New: func() any { return new([32 * 1024]byte) }}

// sendStream copies r to conn as binary messages, then sends LXD's end of
// stream: an empty text message.
func sendStream(conn *websocket.Conn, r io.Reader) {
	ctx := context.Background()
	bp := streamBuffers.Get().(*[32 * 1024]byte)
	defer streamBuffers.Put(bp)
	buf := bp[:]
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := conn.Write(ctx, websocket.MessageBinary, buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			break
		}
	}
	_ = conn.Write(ctx, websocket.MessageText, nil)
}

// recvStream copies binary messages from conn to w until the client ends
// the stream (an empty text message or a close), then calls eof.
func recvStream(conn *websocket.Conn, w io.Writer, eof func()) {
	ctx := context.Background()
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil || typ == websocket.MessageText {
			break
		}
		if _, err := w.Write(b); err != nil {
			break
		}
	}
	if eof != nil {
		eof()
	}
}

// execPipe makes a pipe for a command's stdio: the daemon's end
// non-blocking, served by the runtime's poller (read deadlines, no thread
// per read), and the command's end blocking, as a child gets it.
func execPipe(daemonReads bool) (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	ours := p[1]
	if daemonReads {
		ours = p[0]
	}
	if err := unix.SetNonblock(ours, true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}
