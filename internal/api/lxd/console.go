package lxd

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/operation"
)

// attachConsole attaches a client to an instance's console, as LXD: a
// websocket operation with a console stream ("0") and a control stream;
// it lasts until the client detaches (closes either stream).
func (s *Server) attachConsole(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var post api.InstanceConsolePost
	if err := decode(r, &post); err != nil {
		writeError(w, err)
		return
	}
	switch post.Type {
	case "", "console":
	case "vga":
		writeError(w, errdefs.Invalid("type: hangar has no VGA console, only the serial console (type \"console\")"))
		return
	default:
		writeError(w, errdefs.Invalid("type %q: want console", post.Type))
		return
	}
	if post.Width < 0 || post.Height < 0 {
		writeError(w, errdefs.Invalid("width/height: %dx%d out of range", post.Width, post.Height))
		return
	}
	// Attach now, so a stopped instance is a plain error.
	console, err := s.Instances.AttachConsole(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	set, err := newSocketSet([]string{"0", "control"}, map[string]bool{"0": true, "control": true})
	if err != nil {
		console.Close()
		writeError(w, err)
		return
	}
	s.startSocketOp(r.Context(), w, "Showing console", name, set, map[string]any{}, func(ctx context.Context, op *operation.Op) error {
		defer console.Close()
		return consoleSession(ctx, set, console)
	})
}

// consoleSession mirrors the console to the client until it detaches.
func consoleSession(ctx context.Context, set *socketSet, console io.ReadWriteCloser) error {
	select {
	case <-set.ready:
	case <-time.After(connectTimeout):
		return errors.New("timed out waiting for websockets to connect")
	case <-ctx.Done():
		return ctx.Err()
	}
	conn, control := set.conn("0"), set.conn("control")
	detached := make(chan struct{}, 3)
	go func() {
		// The control stream carries nothing hangard acts on for a
		// console; its end is the client detaching.
		for {
			if _, _, err := control.Read(context.Background()); err != nil {
				break
			}
		}
		detached <- struct{}{}
	}()
	go func() {
		// Input ends with the client's stdin (an empty text message); the
		// session goes on, showing output, until the client closes.
		recvStream(conn, console, nil)
		for {
			if _, _, err := conn.Read(context.Background()); err != nil {
				break
			}
		}
		detached <- struct{}{}
	}()
	go func() {
		buf := make([]byte, 32*1024)
		for {
			n, err := console.Read(buf)
			if n > 0 && conn.Write(context.Background(), websocket.MessageBinary, buf[:n]) != nil {
				break
			}
			if err != nil {
				break
			}
		}
		detached <- struct{}{}
	}()
	select {
	case <-detached:
	case <-ctx.Done():
	}
	return nil
}
