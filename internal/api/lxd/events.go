package lxd

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/project"
)

var eventTypes = map[string]bool{api.EventTypeLifecycle: true, api.EventTypeOperation: true, api.EventTypeLogging: true}

// getEvents upgrades to a websocket and streams events as JSON text
// messages. ?type=a,b filters; ?since=N first replays what came after
// sequence N (hangar's addition for reconnecting clients).
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	var types []string
	if v := r.URL.Query().Get("type"); v != "" {
		for _, t := range strings.Split(v, ",") {
			if !eventTypes[t] {
				writeError(w, errdefs.Invalid("%q isn't a supported event type", t))
				return
			}
			types = append(types, t)
		}
	}
	var since uint64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, errdefs.Invalid("since %q: not a sequence number", v))
			return
		}
		since = n
	}
	sub, err := s.Events.Subscribe(types, since)
	if err != nil {
		writeError(w, err)
		return
	}
	defer sub.Close()
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept has answered the client
	}
	defer conn.CloseNow()
	// Clients never send on this socket; CloseRead notices when they go.
	// When the hub ends the subscription (a consumer too slow), C is closed
	// after what was already buffered, so everything delivered is sent.
	ctx := conn.CloseRead(r.Context())
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.C():
			if !ok {
				conn.Close(websocket.StatusTryAgainLater, "event stream ended: reconnect with since=<last sequence>")
				return
			}
			// LXD's rule: an event about another project is not shown;
			// one about no project (a log line) is.
			if ev.Project != "" && !project.Sees(r.Context(), ev.Project) {
				continue
			}
			out, err := toAPIEvent(ev)
			if err != nil {
				return
			}
			b, err := json.Marshal(out)
			if err != nil {
				return
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = conn.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				return
			}
		}
	}
}
