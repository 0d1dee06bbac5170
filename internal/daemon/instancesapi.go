package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	instancesapi "github.com/hangar-dev/hangar/internal/api/instances"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/autostandby"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/network"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/storage"
)

// InstancesAPIPrefix is where the unix socket serves the instances API
// (seed 002): base URL http://unix/instances-api/.
const InstancesAPIPrefix = "/instances-api/"

// customVolumes finds a custom volume's pool for the instances API.
type customVolumes struct{ m *storage.Manager }

func (c customVolumes) PoolOfCustomVolume(ctx context.Context, name string) (string, error) {
	pools, err := c.m.Pools(ctx)
	if err != nil {
		return "", err
	}
	for _, p := range pools {
		if _, err := c.m.Volume(ctx, p.Name, "custom", name); err == nil {
			return p.Name, nil
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return "", err
		}
	}
	return "", errdefs.NotFound("custom volume %q not found", name)
}

// ipamAddresses reads the addresses networks assigned to NICs, for the
// instances API's network.ip (a standby VM keeps its address but its
// guest reports none).
type ipamAddresses struct{ m *network.Manager }

func (a ipamAddresses) AssignedIPv4(ctx context.Context) (map[string]string, error) {
	allocs, err := a.m.Allocations(project.WithAll(auth.AsDaemon(ctx)), "")
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(allocs))
	for _, al := range allocs {
		if al.IPv4 != "" && al.Hwaddr != "" {
			out[strings.ToLower(al.Hwaddr)] = al.IPv4
		}
	}
	return out, nil
}

// standbyStatus adapts the auto-standby controller to the instances API.
type standbyStatus struct{ c *autostandby.Controller }

func (a standbyStatus) Status(ctx context.Context, project, name string) (instancesapi.AutoStandbyStatus, error) {
	st, err := a.c.Status(ctx, project, name)
	return toAPIStandby(st), err
}

func (a standbyStatus) Hold(ctx context.Context, project, name string) (instancesapi.AutoStandbyStatus, error) {
	st, err := a.c.Hold(ctx, project, name)
	return toAPIStandby(st), err
}

func toAPIStandby(st autostandby.Status) instancesapi.AutoStandbyStatus {
	return instancesapi.AutoStandbyStatus{
		ActiveInboundConnections: st.ActiveInboundConnections, Configured: st.Configured, Eligible: st.Eligible,
		Enabled: st.Enabled, Supported: st.Supported, Reason: string(st.Reason), Status: string(st.State),
		TrackingMode: st.TrackingMode, CountdownRemaining: st.CountdownRemaining, IdleSince: st.IdleSince,
		IdleTimeout: st.IdleTimeout, LastInboundActivityAt: st.LastInboundActivityAt, NextStandbyAt: st.NextStandbyAt,
	}
}

// serveInstancesAPI serves the instances API on its own plain-HTTP TCP
// listener (--instances-api): bearer tokens are its authentication.
func serveInstancesAPI(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (func(context.Context), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--instances-api %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, BaseContext: func(net.Listener) context.Context { return ctx }}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("instances api listener", "err", err)
		}
	}()
	log.Info("instances api listening", "address", ln.Addr().String())
	return func(c context.Context) { _ = srv.Shutdown(c) }, nil
}
