// Package daemon wires hangard together: it opens the store, builds the
// services and drivers, reconciles instances with the runtime, and serves
// the API on a unix socket until it is told to stop. It holds no business
// logic of its own; cmd/hangard only parses flags and calls Run.
package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	instancesapi "github.com/hangar-dev/hangar/internal/api/instances"
	"github.com/hangar-dev/hangar/internal/api/lxd"
	velocityapi "github.com/hangar-dev/hangar/internal/api/velocity"
	virtapi "github.com/hangar-dev/hangar/internal/api/virt"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/autostandby"
	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/driver/container"
	"github.com/hangar-dev/hangar/internal/edge"
	"github.com/hangar-dev/hangar/internal/egress"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/image"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/metrics"
	"github.com/hangar-dev/hangar/internal/network"
	"github.com/hangar-dev/hangar/internal/operation"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/serverconfig"
	"github.com/hangar-dev/hangar/internal/storage"
	"github.com/hangar-dev/hangar/internal/store"
	"github.com/hangar-dev/hangar/internal/trust"
)

// Config is what hangard's flags set.
type Config struct {
	DataDir string
	Socket  string // default DataDir/unix.socket
	// StopInstances stops every instance on a clean shutdown; by default
	// they keep running and the next start reattaches to them.
	StopInstances bool
	LogLevel      slog.Level
	// ExecHelper is the program run inside containers to give an exec
	// its terminal; it must be statically linked. Empty: hangard itself.
	ExecHelper string
	// VMAgent, VMKernel and VMMachine configure virtual machines (vm.go).
	VMAgent, VMKernel, VMMachine string
	// VMFirmware is the directory of OVMF, for VMs booted from disk images.
	VMFirmware string
	// HTTPS is where to serve the API over TLS while core.https_address
	// is unset ("" nowhere).
	HTTPS string
	// InstancesAPI is where to serve the instances API of seed 002 over
	// plain HTTP with bearer tokens ("" nowhere); the unix socket serves
	// it under /instances-api/ always.
	InstancesAPI string
	// Ready, when set, is closed once the API is served.
	Ready chan<- struct{}
}

// Run serves until ctx is cancelled.
func Run(ctx context.Context, cfg Config) error {
	if cfg.DataDir == "" {
		return errors.New("no data directory")
	}
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(cfg.DataDir, "unix.socket")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o711); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// Unprivileged containers (host uid 1000000+) must be able to traverse
	// the path to their root filesystem, whatever mode the dir was made with.
	if err := os.Chmod(cfg.DataDir, 0o711); err != nil {
		return fmt.Errorf("data dir permissions: %w", err)
	}
	warnUntraversable(cfg.DataDir)
	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	defer unlock()

	hub := event.New(16384, "none")
	defer hub.Close()
	text := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel})
	log := slog.New(event.NewLogHandler(text, hub))
	slog.SetDefault(log)

	dbPath := filepath.Join(cfg.DataDir, "hangar.db")
	_, statErr := os.Stat(dbPath)
	fresh := errors.Is(statErr, os.ErrNotExist)
	// store.Open names itself ("open store PATH: ...").
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer st.Close()
	// Before anything publishes: sequences continue across restarts.
	if err := hub.Persist(ctx, eventSequence{st}, event.DefaultSequenceBlock); err != nil {
		return err
	}
	defer func() {
		// Runs after the services below stopped (defers run in reverse),
		// before the store closes: the next run continues without a jump
		// and replays these events to a client that asks with since.
		if err := hub.Save(context.Background()); err != nil {
			log.Error("save events for the next run", "err", err)
		}
	}()

	emit := &lifecycle{hub: hub}
	ops := operation.New(hub, 10*time.Minute)
	defer ops.Close()
	// image.New names itself ("image: ...").
	images, err := image.New(filepath.Join(cfg.DataDir, "images"), imageDB{st}, emit, log.With("component", "image"))
	if err != nil {
		return err
	}
	conf, err := serverconfig.New(ctx, st)
	if err != nil {
		return err
	}
	// Read at every unpack: a change applies to the next one.
	images.SetMaxUnpackedSize(conf.ImagesMaxUnpackedSize)
	// One authorizer for every edge: the core's entry points (instances,
	// images, networks, storage) ask it.
	authz := auth.New(st)
	if err := authz.Load(ctx); err != nil {
		return err
	}
	images.SetAuthorizer(authz)

	var svc *instance.Service
	var pools *storage.Manager
	var nw *networking
	// Projects count their usage from the core (instances, whatever is
	// being created included), the storage manager (custom volumes'
	// sizes) and the network manager (its networks).
	var projects *project.Service
	projects = &project.Service{Store: st, Events: emit, Changed: func(ctx context.Context) {
		if err := svc.ReloadProfiles(ctx); err != nil {
			log.Error("reload profiles after a project change", "err", err)
		}
		if err := syncProjectTree(ctx, projects, authz); err != nil {
			log.Error("project tree for the authorizer", "err", err)
		}
	}}
	projects.Sources = []project.UsageSource{project.UsageFunc(func(ctx context.Context, p string) (project.Usage, error) {
		n, err := nw.networks.NetworkCount(ctx, p)
		return project.Usage{Networks: n}, err
	}), project.UsageFunc(func(ctx context.Context, p string) (project.Usage, error) {
		return svc.ProjectUsage(ctx, p)
	}), project.UsageFunc(func(ctx context.Context, p string) (project.Usage, error) {
		return pools.ProjectUsage(ctx, p)
	})}
	pools = newStorage(cfg.DataDir, st, images, func(ctx context.Context, pool, volume string) ([]string, error) {
		return svc.StorageUsers(ctx, pool, volume)
	}, authz, projects, emit, log)
	// Not inline: the image service emits holding its own locks.
	emit.imageDeleted = func(fp string) { go pools.ImageDeleted(context.WithoutCancel(ctx), fp) }
	nw, err = newNetworking(cfg.DataDir, st, func(ctx context.Context, name string) ([]string, error) {
		return svc.NetworkUsers(ctx, name)
	}, authz, pools, emit, func(ctx context.Context, id int64) (egress.Policy, bool, error) {
		return svc.EgressPolicy(ctx, id)
	}, log)
	if err != nil {
		return err
	}
	defer nw.Close()
	drv, err := container.New(container.Config{
		Dir:          filepath.Join(cfg.DataDir, "containers"),
		CgroupParent: CgroupParents(cfg.DataDir)[0],
		OnExit:       func(e driver.Exit) { svc.HandleExit(context.WithoutCancel(ctx), e) },
		ExecHelper:   cfg.ExecHelper,
		Logger:       log.With("component", "runc"),
	})
	if errors.Is(err, exec.ErrNotFound) {
		return fmt.Errorf("container driver: %w: %s", err, firstCommandHint)
	}
	if err != nil {
		return fmt.Errorf("container driver: %w", err)
	}
	defer drv.Close()
	vms, err := newVMDriver(cfg, func(e driver.Exit) { svc.HandleExit(context.WithoutCancel(ctx), e) }, log.With("component", "qemu"))
	if err != nil {
		return fmt.Errorf("vm driver: %w", err)
	}
	defer vms.Close()
	host := probeHost(cfg.DataDir)
	svc = instance.New(instance.Config{
		DB:           st,
		Images:       instanceImages{images},
		OCI:          images,
		Drivers:      map[instance.Type]driver.Driver{instance.TypeContainer: drv, instance.TypeVM: vms},
		Events:       emit,
		Log:          log.With("component", "instance"),
		HostMemory:   host.memory,
		Architecture: host.architecture,
		LogDir:       filepath.Join(cfg.DataDir, "logs"),
		StateDir:     filepath.Join(cfg.DataDir, "snapshot-state"),
		BackupDir:    filepath.Join(cfg.DataDir, "backups"),
		Devices:      nw.devices,
		Storage:      pools,
		LegacyRoot:   legacyRoots(cfg.DataDir),
		Authorizer:   authz,
		Quota:        projects,
		Projects:     projectReader{projects},
		EgressCA:     nw.egress.ca.CertPEM(),
	})
	if err := svc.Load(ctx); err != nil {
		return err
	}
	// Pools before instances: a start needs its root. A pool that cannot
	// be mounted is unavailable; its instances fail to start, others work.
	poolMade, err := pools.Start(ctx)
	if err != nil {
		return fmt.Errorf("storage: %w", err)
	}
	if poolMade {
		if err := ensureDefaultRoot(ctx, svc); err != nil {
			log.Error("give the default profile its root disk", "err", err)
		}
	}
	// Networks before instances: a running instance's proxies and a
	// starting one's NICs need their bridges.
	created, err := nw.networks.Start(ctx, true)
	if err != nil {
		log.Error("networks not all up", "err", err)
	}
	if created {
		if err := ensureDefaultNIC(ctx, svc); err != nil {
			log.Error("give the default profile its NIC", "err", err)
		}
	}
	toStart, err := svc.Recover(ctx)
	if err != nil {
		return fmt.Errorf("recover instances: %w", err)
	}
	// Shaping links of NICs whose namespace went while the daemon was
	// away (their veth with it).
	if err := nw.host.PruneLimits(); err != nil {
		log.Warn("prune NIC limits", "err", err)
	}
	// The running instances' proxies and MAC filters are known again: the
	// firewall, held as the last daemon left it, becomes the whole state.
	if err := nw.networks.Recovered(ctx); err != nil {
		log.Error("firewall", "err", err)
	}

	// Auto-standby (internal/autostandby): idle VMs with a policy go to
	// standby, a connection to one in standby restores it. The edges ask
	// it for status and holds.
	standby := autostandby.New(autostandby.Config{
		Core:      newStandbyCore(svc, nw.networks, projects, emit, log.With("component", "autostandby")),
		Conntrack: autostandby.NetlinkConntrack{},
		Log:       log.With("component", "autostandby"),
	})

	imageUsers := func(fp string) []string { return instance.RefNames(svc.ImageUsers(ctx, fp)) }
	go sweepImageCache(ctx, images, conf, imageUsers, log.With("component", "image"))

	ln, err := listenUnix(cfg.Socket)
	if err != nil {
		return err
	}
	cert, err := trust.LoadServerCert(cfg.DataDir)
	if err != nil {
		return err
	}
	https := newHTTPSListener(cfg.HTTPS, cert, log.With("component", "https"))
	defer func() { // on every way out; after a clean shutdown a no-op
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		https.Shutdown(c)
	}()
	trusted, err := trust.New(ctx, trust.Config{
		DB: st, Ops: ops, Cert: cert,
		Password: conf.TrustPasswordHash, TokenExpiry: conf.RemoteTokenExpiry, Addresses: https.Addresses,
		Log: log.With("component", "trust"),
	})
	if err != nil {
		return err
	}
	tokens := &trust.APITokens{DB: st}
	// Local users log in to the dialects with logins; what they may do is
	// what authz's groups naming them grant, and a deleted one leaves them.
	users := &trust.Users{DB: st, Groups: authz, Log: log.With("component", "users")}
	mets := metrics.New(metrics.Config{Instances: svc, Operations: ops.Stats, Events: hub.Stats, Log: log.With("component", "metrics")})
	api := &lxd.Server{Projects: projects, Instances: svc, Networks: nw.networks, Storage: pools, Images: images, OCI: images, Publisher: images, Roots: svc, Ops: ops, Events: hub, Info: host.serverInfo(), Config: conf, Auth: authz, Metrics: mets, Log: log,
		Authn: &edge.Authenticator{Trust: trusted, Tokens: tokens, Log: log.With("component", "authn")}, Trust: trusted, Tokens: tokens, Users: users}
	handler := api.Handler()
	authn := &edge.Authenticator{Trust: trusted, Tokens: tokens, Log: log.With("component", "authn")}
	instAPI := (&instancesapi.Server{Core: instancesapi.CoreOf(svc), Projects: projects, Volumes: customVolumes{pools}, Addresses: ipamAddresses{nw.networks}, Events: hub, AutoStandby: standbyStatus{standby},
		Authn: authn, NICNetwork: network.DefaultBridge, Log: log.With("component", "instances-api")}).Handler()
	veloAPI := (&velocityapi.Server{Core: velocityapi.CoreOf(svc), Projects: projects, Auth: authz, Users: users,
		NICs: velocityNICs{conf, nw.networks}, Volumes: velocityVolumes{pools}, NATNetwork: network.DefaultBridge,
		RootPool: storage.DefaultPool, Log: log.With("component", "velocity-api")}).Handler()
	if err := syncProjectTree(ctx, projects, authz); err != nil {
		return err
	}
	// The virt JSON-RPC API (seeds 000/001) at /api/current, on the
	// socket and over HTTPS.
	virtAPI := &virtapi.Server{Core: virtapi.CoreOf(svc), Images: images, Pools: virtPools{pools, svc}, Ops: ops, Events: hub,
		Tokens: tokens, Users: users, Authz: authz, Projects: projects, Host: hostDevices{}, Authn: authn, Log: log.With("component", "virt-api")}
	defer virtAPI.Close()
	virtHandler := virtAPI.Handler()
	srv := &http.Server{Handler: withDialects(handler,
		mount{Prefix: InstancesAPIPrefix, Strip: true, Handler: instAPI},
		mount{Prefix: VelocityAPIPrefix, Strip: true, Handler: veloAPI},
		mount{Prefix: virtapi.Path, Handler: virtHandler}), ReadHeaderTimeout: 30 * time.Second}
	if cfg.InstancesAPI != "" {
		stopInstAPI, err := serveInstancesAPI(ctx, cfg.InstancesAPI, instAPI, log.With("component", "instances-api"))
		if err != nil {
			return err
		}
		defer func() {
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stopInstAPI(c)
		}()
	}
	// The same handler over TLS; the edge tells the two apart.
	// Over HTTPS the /v/ API and its login sit at the root, as Velocity's
	// clients expect (LXD's API uses neither prefix).
	https.SetHandler(withDialects(handler,
		mount{Prefix: "/v/", Handler: veloAPI}, mount{Prefix: "/u/", Handler: veloAPI},
		mount{Prefix: virtapi.Path, Handler: virtHandler}))
	conf.OnChange(serverconfig.CoreHTTPSAddress, https.Set)
	if err := https.Set(ctx, conf.HTTPSAddress()); err != nil {
		// The socket still works, and fixing the key is how to recover.
		log.Error("https: not serving the API over the network", "err", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("hangard ready", "socket", cfg.Socket, "data_dir", cfg.DataDir, "pid", os.Getpid())
	if fresh {
		log.Info("new data directory: to import a busybox image and launch a first container, see the hint", "hint", firstCommandHint)
	}
	if cfg.Ready != nil {
		close(cfg.Ready)
	}
	svc.Autostart(ctx, toStart)
	schedules := make(chan struct{})
	go func() {
		defer close(schedules)
		runSnapshotSchedules(ctx, svc, pools, log.With("component", "snapshots"))
	}()
	standbyDone := make(chan struct{})
	go func() {
		defer close(standbyDone)
		standby.Run(ctx)
	}()

	select {
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("hangard shutting down", "stop_instances", cfg.StopInstances)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdownCtx)
	https.Shutdown(shutdownCtx)
	_ = svc.Wait(context.Background()) // background work ends with the daemon's ctx
	<-schedules
	<-standbyDone // before StopAll: no standby or restore races the stops
	if cfg.StopInstances {
		svc.StopAll(context.Background())
	}
	return nil
}

// firstCommandHint ends the messages of a host that lacks what hangard
// needs, or of a first start: the README's first command installs it all
// and shows every feature working.
const firstCommandHint = "run `bash scripts/quickstart.sh` from a Hangar checkout (the README's first command)"

// DefaultDataDir is where hangard keeps its state unless told otherwise.
const DefaultDataDir = "/var/lib/hangar"

// CgroupParents names the cgroups this daemon's containers and VMs live
// under. The default daemon uses /hangar and /hangar-vm; any other data dir
// gets parents of its own, so daemons beside each other (tests, benchmarks)
// never share cgroups. A daemon that stops with no instance running leaves
// neither behind.
func CgroupParents(dataDir string) [2]string {
	p := "/hangar"
	if dataDir != DefaultDataDir {
		sum := sha256.Sum256([]byte(dataDir))
		p = "/hangar-" + hex.EncodeToString(sum[:4])
	}
	return [2]string{p, p + "-vm"}
}

// listenUnix listens on the socket path, replacing a stale socket file
// left by a daemon that was killed.
func listenUnix(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return nil, fmt.Errorf("socket dir: %w", err)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("socket %s: another daemon is serving it", path)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	// Root and the socket's group only: the socket is full control of the host.
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return ln, nil
}

// lockDataDir takes an exclusive lock so two daemons never share a data dir.
func lockDataDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "hangard.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data dir %s is in use by another hangard", dir)
	}
	return func() { f.Close() }, nil
}

// warnUntraversable says so when a parent of the data dir keeps other users
// out: unprivileged containers run as high host uids and could not reach
// their root filesystems, and runc's own error would not say why.
func warnUntraversable(dir string) {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			slog.Warn("unprivileged containers will fail to start: a parent of the data dir is not searchable by other users (chmod o+x it)", "dir", p)
		}
		if p == "/" {
			return
		}
	}
}
