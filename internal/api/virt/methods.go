package virt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/hangar-dev/hangar/internal/api/virt/query"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
)

type method struct {
	role role
	fn   func(ctx context.Context, c *session, a *args) (any, error)
}

// methods is every method the edge serves, with the role it needs.
var methods map[string]method

func init() {
	methods = map[string]method{
		"core.ping":                   {rolePublic, func(context.Context, *session, *args) (any, error) { return "pong", nil }},
		"auth.login":                  {rolePublic, authLogin},
		"auth.login_with_api_key":     {rolePublic, authLoginAPIKey},
		"auth.login_ex":               {rolePublic, authLoginEx},
		"auth.logout":                 {roleAuth, authLogout},
		"auth.me":                     {roleAuth, authMe},
		"core.subscribe":              {roleAuth, coreSubscribe},
		"core.unsubscribe":            {roleAuth, coreUnsubscribe},
		"core.get_jobs":               {roleAuth, coreGetJobs},
		"core.job_wait":               {roleAuth, coreJobWait},
		"virt.global.config":          {roleRead, globalConfig},
		"virt.instance.query":         {roleRead, instanceQuery},
		"virt.instance.get_instance":  {roleRead, instanceGet},
		"virt.instance.create":        {roleWrite, instanceCreate},
		"virt.instance.update":        {roleWrite, instanceUpdate},
		"virt.instance.delete":        {roleWrite, instanceDelete},
		"virt.instance.start":         {roleWrite, instanceStart},
		"virt.instance.stop":          {roleWrite, instanceStop},
		"virt.instance.restart":       {roleWrite, instanceRestart},
		"virt.instance.device_list":   {roleRead, deviceListM},
		"virt.instance.device_add":    {roleWrite, deviceAdd},
		"virt.instance.device_update": {roleWrite, deviceUpdate},
		"virt.instance.device_delete": {roleWrite, deviceDelete},
		"virt.device.usb_choices":     {roleRead, usbChoices},
		"virt.device.gpu_choices":     {roleRead, gpuChoices},
		"virt.device.pci_choices":     {roleRead, pciChoices},
	}
}

// args are a call's positional parameters.
type args struct {
	method string
	params []json.RawMessage
}

// max refuses more parameters than the method takes.
func (a *args) max(n int) error {
	if len(a.params) > n {
		return invalid(a.method, "Too many arguments (expected %d, found %d)", n, len(a.params))
	}
	return nil
}

// value decodes parameter i (nil when absent) with numbers kept exact.
func (a *args) value(i int) (any, bool, error) {
	if i >= len(a.params) {
		return nil, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(a.params[i]))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, true, invalid(a.method, "parameter %d: %v", i+1, err)
	}
	return v, true, nil
}

func (a *args) raw(i int) json.RawMessage {
	if i >= len(a.params) {
		return nil
	}
	return a.params[i]
}

// str reads parameter i as a required string named name.
func (a *args) str(i int, name string, minLen int) (string, error) {
	v, ok, err := a.value(i)
	if err != nil {
		return "", err
	}
	attr := a.method + "." + name
	if !ok {
		return "", invalid(attr, "Field required")
	}
	s, isStr := v.(string)
	if !isStr {
		return "", invalid(attr, "Input should be a valid string (got %s)", jsonType(v))
	}
	if len(s) < minLen {
		return "", invalid(attr, "String should have at least %d character(s)", minLen)
	}
	return s, nil
}

// obj checks parameter i against sc (absent is {}).
func (a *args) obj(i int, name string, sc *schema) (map[string]any, error) {
	v, ok, err := a.value(i)
	if err != nil {
		return nil, err
	}
	if !ok {
		v = map[string]any{}
	}
	var errs validationErrors
	out := sc.check(a.method+"."+name, v, &errs)
	return out, errs.err()
}

// --- auth ---

func authLogin(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(3); err != nil {
		return nil, err
	}
	user, err := a.str(0, "username", 0)
	if err != nil {
		return nil, err
	}
	pass, err := a.str(1, "password", 0)
	if err != nil {
		return nil, err
	}
	return c.passwordLogin(ctx, user, pass), nil
}

func (c *session) passwordLogin(ctx context.Context, user, pass string) bool {
	if c.s.Users == nil {
		return false
	}
	loginAt := time.Now()
	id, err := c.s.Users.Login(ctx, user, pass, c.addr)
	if err != nil {
		c.s.audit().Warn("login refused", "mechanism", "password", "user", user, "source", c.addr, "err", err)
		return false
	}
	if err := c.login(id, loginAt); err != nil {
		return false
	}
	return true
}

func (c *session) keyLogin(ctx context.Context, key string) bool {
	if c.s.Tokens == nil {
		return false
	}
	id, err := c.s.Tokens.Identify(ctx, key)
	if err != nil {
		c.s.audit().Warn("login refused", "mechanism", "api_key", "source", c.addr, "err", err)
		return false
	}
	return c.login(id, time.Now()) == nil
}

func authLoginAPIKey(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(1); err != nil {
		return nil, err
	}
	key, err := a.str(0, "api_key", 0)
	if err != nil {
		return nil, err
	}
	return c.keyLogin(ctx, key), nil
}

var loginExSchemas = map[string]*schema{
	"API_KEY_PLAIN": {fields: []field{
		{name: "mechanism", kind: kString, required: true},
		{name: "username", kind: kString, hasDef: true, def: ""},
		{name: "api_key", kind: kString, required: true},
		{name: "login_options", kind: kStringMap, nullable: true},
	}},
	"PASSWORD_PLAIN": {fields: []field{
		{name: "mechanism", kind: kString, required: true},
		{name: "username", kind: kString, required: true},
		{name: "password", kind: kString, required: true},
		{name: "login_options", kind: kStringMap, nullable: true},
	}},
}

// authLoginEx is the middleware's auth.login_ex with the two plain
// mechanisms; others are refused naming the mechanism.
func authLoginEx(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(1); err != nil {
		return nil, err
	}
	v, _, err := a.value(0)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	mech, _ := m["mechanism"].(string)
	sc, ok := loginExSchemas[mech]
	if !ok {
		return nil, invalid(a.method+".login_data.mechanism", "Input should be 'API_KEY_PLAIN' or 'PASSWORD_PLAIN'")
	}
	var errs validationErrors
	d := sc.check(a.method+".login_data", v, &errs)
	if err := errs.err(); err != nil {
		return nil, err
	}
	var good bool
	if mech == "API_KEY_PLAIN" {
		good = c.keyLogin(ctx, d["api_key"].(string))
	} else {
		good = c.passwordLogin(ctx, d["username"].(string), d["password"].(string))
	}
	if !good {
		return map[string]any{"response_type": "AUTH_ERR"}, nil
	}
	me, _ := authMe(c.callCtx(), c, &args{method: "auth.me"})
	return map[string]any{"response_type": "SUCCESS", "user_info": me, "authenticator": "LEVEL_1"}, nil
}

func authLogout(_ context.Context, c *session, _ *args) (any, error) {
	c.mu.Lock()
	c.id = auth.Identity{Kind: auth.KindUntrusted}
	c.mu.Unlock()
	return true, nil
}

// authMe says who the session is and the roles it holds.
func authMe(ctx context.Context, c *session, _ *args) (any, error) {
	c.mu.Lock()
	id, p := c.id, c.proj.Name
	c.mu.Unlock()
	roles := []string{}
	for _, r := range []role{roleRead, roleWrite} {
		if c.s.holds(ctx, r) {
			roles = append(roles, r.String())
		}
	}
	return map[string]any{
		"pw_name": id.Name, "account_attributes": []string{string(id.Kind)},
		"privilege": map[string]any{"roles": roles}, "project": p,
	}, nil
}

// --- subscriptions ---

// collections are what core.subscribe takes, with the role each needs.
var collections = map[string]role{
	"virt.instance.query": roleRead,
	"core.get_jobs":       roleAuth,
}

func coreSubscribe(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(1); err != nil {
		return nil, err
	}
	name, err := a.str(0, "event", 1)
	if err != nil {
		return nil, err
	}
	r, ok := collections[name]
	if !ok {
		return nil, invalid(a.method+".event", "Unknown event %q (want virt.instance.query or core.get_jobs)", name)
	}
	if !c.s.holds(ctx, r) {
		return nil, errNotAuthorized
	}
	ident := uuid.NewString()
	c.mu.Lock()
	c.subs[ident] = name
	c.mu.Unlock()
	c.s.watcher().add(c)
	return ident, nil
}

func coreUnsubscribe(_ context.Context, c *session, a *args) (any, error) {
	if err := a.max(1); err != nil {
		return nil, err
	}
	ident, err := a.str(0, "id", 1)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	delete(c.subs, ident)
	c.mu.Unlock()
	return nil, nil
}

// subscribed tells whether the session has a subscription to collection.
func (c *session) subscribed(collection string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.subs {
		if n == collection {
			return true
		}
	}
	return false
}

// --- queries ---

// runQuery evaluates query-filters and query-options (parameters 0 and
// 1) over entries.
func runQuery(a *args, entries []map[string]any) (any, error) {
	if err := a.max(2); err != nil {
		return nil, err
	}
	q, err := query.Parse(a.raw(0), a.raw(1))
	if err != nil {
		return nil, err
	}
	res, err := q.Run(entries)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, newCallError(errnoENOENT, "%s: no entry matches", a.method)
	}
	return res, err
}

func (s *Server) entries(ctx context.Context) []map[string]any {
	list := s.Core.ListFull(ctx)
	out := make([]map[string]any, len(list))
	for i, f := range list {
		out[i] = entryOf(f)
	}
	return out
}

func instanceQuery(ctx context.Context, c *session, a *args) (any, error) {
	return runQuery(a, c.s.entries(ctx))
}

func instanceGet(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(2); err != nil {
		return nil, err
	}
	id, err := a.str(0, "id", 1)
	if err != nil {
		return nil, err
	}
	f, err := c.s.Core.GetFull(ctx, id)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, newCallError(errnoENOENT, "VirtInstance %s does not exist", id)
		}
		return nil, err
	}
	e := entryOf(f)
	if len(a.params) < 2 {
		return e, nil
	}
	opts := map[string]any{}
	if v, _, err := a.value(1); err != nil {
		return nil, err
	} else if m, ok := v.(map[string]any); ok {
		maps.Copy(opts, m)
	} else if v != nil {
		return nil, invalid(a.method+".options", "Input should be a valid dictionary")
	}
	opts["get"] = true
	ob, _ := json.Marshal(opts)
	q, err := query.Parse(nil, ob)
	if err != nil {
		return nil, err
	}
	return q.Run([]map[string]any{e})
}

func globalConfig(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(0); err != nil {
		return nil, err
	}
	var pools []string
	var def string
	if c.s.Pools != nil {
		var err error
		if pools, err = c.s.Pools.PoolNames(ctx); err != nil {
			return nil, err
		}
		if def, err = c.s.Pools.DefaultPool(ctx); err != nil {
			return nil, err
		}
	}
	return map[string]any{
		"id": 1, "pool": nilIfEmpty(def), "dataset": nil, "storage_pools": pools,
		"bridge": nil, "v4_network": nil, "v6_network": nil, "state": "INITIALIZED",
	}, nil
}

// --- instance lifecycle (jobs) ---

func instanceCreate(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(1); err != nil {
		return nil, err
	}
	checked, err := a.obj(0, "virt_instance_create", createSchema)
	if err != nil {
		return nil, rename(err, "virt.instance.create.virt_instance_create", "virt.instance.create")
	}
	var ca createArgs
	if err := into(checked, &ca); err != nil {
		return nil, err
	}
	pool, err := c.s.poolFor(ctx, ca.StoragePool, "virt.instance.create.storage_pool")
	if err != nil {
		return nil, err
	}
	fp, err := c.s.Images.Resolve(ctx, ca.Image)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, invalid("virt.instance.create.image", "Image %q not found among the local images", ca.Image)
		}
		return nil, err
	}
	req, err := createRequest(ca, fp, pool)
	if err != nil {
		return nil, err
	}
	return c.s.startJob(ctx, a, "Creating instance "+ca.Name, func(ctx context.Context) (any, error) {
		name, err := c.s.Core.Create(ctx, req)
		if err != nil {
			return nil, err
		}
		f, err := c.s.Core.GetFull(ctx, name)
		if err != nil {
			return nil, err
		}
		return entryOf(f), nil
	}), nil
}

// rename moves validation errors' attributes from one prefix to another
// (create's single argument is named by the method alone, as the
// middleware names it).
func rename(err error, from, to string) error {
	var ve validationErrors
	if !errors.As(err, &ve) {
		return err
	}
	out := make(validationErrors, len(ve))
	for i, e := range ve {
		e.Attr = to + strings.TrimPrefix(e.Attr, from)
		out[i] = e
	}
	return out
}

// poolFor checks a storage_pool argument, or picks the default pool.
func (s *Server) poolFor(ctx context.Context, pool *string, attr string) (string, error) {
	if s.Pools == nil {
		if pool != nil {
			return *pool, nil
		}
		return "default", nil
	}
	if pool == nil {
		return s.Pools.DefaultPool(ctx)
	}
	names, err := s.Pools.PoolNames(ctx)
	if err != nil {
		return "", err
	}
	if !slices.Contains(names, *pool) {
		return "", invalid(attr, "Storage pool %q is not one of virt.global.config's storage_pools %v", *pool, names)
	}
	return *pool, nil
}

// nameArg reads parameter 0, the instance's id (its name).
func (a *args) nameArg() (string, error) { return a.str(0, "id", 1) }

func instanceDelete(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(1); err != nil {
		return nil, err
	}
	name, err := a.nameArg()
	if err != nil {
		return nil, err
	}
	if _, err := c.s.Core.Get(ctx, name); err != nil {
		return nil, err
	}
	return c.s.startJob(ctx, a, "Deleting instance "+name, func(ctx context.Context) (any, error) {
		in, err := c.s.Core.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		if in.Status != instance.StatusStopped && in.Status != instance.StatusError {
			if err := c.s.Core.Stop(ctx, name, instance.StopOptions{Timeout: -1, Force: true}); err != nil {
				return nil, err
			}
		}
		return true, c.s.Core.Delete(ctx, name)
	}), nil
}

func instanceStart(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(1); err != nil {
		return nil, err
	}
	name, err := a.nameArg()
	if err != nil {
		return nil, err
	}
	if _, err := c.s.Core.Get(ctx, name); err != nil {
		return nil, err
	}
	return c.s.startJob(ctx, a, "Starting instance "+name, func(ctx context.Context) (any, error) {
		return true, c.s.Core.Start(ctx, name)
	}), nil
}

func stopOptions(a *args) (instance.StopOptions, error) {
	checked, err := a.obj(1, "stop_args", stopSchema)
	if err != nil {
		return instance.StopOptions{}, err
	}
	opts := instance.StopOptions{Timeout: -1, Force: checked["force"].(bool)}
	if t := checked["timeout"].(int64); t >= 0 {
		opts.Timeout = time.Duration(t) * time.Second
	}
	return opts, nil
}

func instanceStop(ctx context.Context, c *session, a *args) (any, error) {
	return stopOrRestart(ctx, c, a, "Stopping", func(ctx context.Context, name string, o instance.StopOptions) error {
		return c.s.Core.Stop(ctx, name, o)
	})
}

func instanceRestart(ctx context.Context, c *session, a *args) (any, error) {
	return stopOrRestart(ctx, c, a, "Restarting", func(ctx context.Context, name string, o instance.StopOptions) error {
		in, err := c.s.Core.Get(ctx, name)
		if err != nil {
			return err
		}
		if in.Status == instance.StatusStopped {
			return c.s.Core.Start(ctx, name) // the middleware starts a stopped one
		}
		return c.s.Core.Restart(ctx, name, o)
	})
}

func stopOrRestart(ctx context.Context, c *session, a *args, verb string, do func(context.Context, string, instance.StopOptions) error) (any, error) {
	if err := a.max(2); err != nil {
		return nil, err
	}
	name, err := a.nameArg()
	if err != nil {
		return nil, err
	}
	opts, err := stopOptions(a)
	if err != nil {
		return nil, err
	}
	if _, err := c.s.Core.Get(ctx, name); err != nil {
		return nil, err
	}
	return c.s.startJob(ctx, a, verb+" instance "+name, func(ctx context.Context) (any, error) {
		return true, do(ctx, name, opts)
	}), nil
}

// --- update and devices: read, change, write back if unchanged ---

// change applies edit to the instance's own config and devices and
// writes them back, refused if the instance changed in between.
func (s *Server) change(ctx context.Context, name string, edit func(in instance.Instance, put *instance.Put) error) error {
	in, err := s.Core.Get(ctx, name)
	if err != nil {
		return err
	}
	put := instance.Put{
		Config: maps.Clone(in.Config), Devices: cloneDevices(in.Devices),
		Profiles: in.Profiles, Ephemeral: in.Ephemeral, Description: in.Description,
	}
	if err := edit(in, &put); err != nil {
		return err
	}
	return s.Core.Update(ctx, name, put, func(cur instance.Instance) error {
		if !maps.Equal(cur.Config, in.Config) || !devicesEqual(cur.Devices, in.Devices) {
			return errdefs.PreconditionFailed("instance %q changed during the update: try again", name)
		}
		return nil
	})
}

func cloneDevices(d instance.Devices) instance.Devices {
	out := make(instance.Devices, len(d))
	for k, v := range d {
		out[k] = maps.Clone(v)
	}
	return out
}

func devicesEqual(a, b instance.Devices) bool {
	return maps.EqualFunc(a, b, func(x, y map[string]string) bool { return maps.Equal(x, y) })
}

func instanceUpdate(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(2); err != nil {
		return nil, err
	}
	name, err := a.nameArg()
	if err != nil {
		return nil, err
	}
	checked, err := a.obj(1, "virt_instance_update", updateSchema)
	if err != nil {
		return nil, err
	}
	var u updateArgs
	if err := into(checked, &u); err != nil {
		return nil, err
	}
	u.given = map[string]bool{}
	for k := range checked {
		u.given[k] = true
	}
	in, err := c.s.Core.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if err := checkUpdate(u, in.Type); err != nil {
		return nil, err
	}
	return c.s.startJob(ctx, a, "Updating instance "+name, func(ctx context.Context) (any, error) {
		if err := c.s.change(ctx, name, func(in instance.Instance, put *instance.Put) error {
			return applyUpdate(u, in, put)
		}); err != nil {
			return nil, err
		}
		f, err := c.s.Core.GetFull(ctx, name)
		if err != nil {
			return nil, err
		}
		return entryOf(f), nil
	}), nil
}

func checkUpdate(u updateArgs, typ instance.Type) error {
	var errs validationErrors
	const p = "virt.instance.update.virt_instance_update"
	if typ != instance.TypeVM {
		for _, k := range []string{"vnc_enabled", "vnc_port", "vnc_password", "secure_boot", "root_disk_size", "root_disk_io_bus"} {
			if u.given[k] {
				errs.add(p+"."+k, "This attribute is only valid for VMs")
			}
		}
	}
	return errs.err()
}

// applyUpdate changes put as u says; fields not given stay.
func applyUpdate(u updateArgs, in instance.Instance, put *instance.Put) error {
	setOrDel := func(key string, given bool, v *string) {
		if !given {
			return
		}
		if v == nil {
			delete(put.Config, key)
		} else {
			put.Config[key] = *v
		}
	}
	if u.given["environment"] {
		for k := range put.Config {
			if strings.HasPrefix(k, "environment.") {
				delete(put.Config, k)
			}
		}
		for k, v := range u.Environment {
			put.Config["environment."+k] = v
		}
	}
	if u.given["autostart"] {
		if u.Autostart == nil {
			delete(put.Config, "boot.autostart")
		} else {
			put.Config["boot.autostart"] = fmt.Sprint(*u.Autostart)
		}
	}
	setOrDel("limits.cpu", u.given["cpu"], u.CPU)
	if u.given["memory"] {
		if u.Memory == nil {
			delete(put.Config, "limits.memory")
		} else {
			put.Config["limits.memory"] = fmt.Sprint(*u.Memory)
		}
	}
	if u.given["secure_boot"] {
		if u.SecureBoot == nil {
			delete(put.Config, "security.secureboot")
		} else {
			put.Config["security.secureboot"] = fmt.Sprint(*u.SecureBoot)
		}
	}
	if u.given["vnc_enabled"] || u.given["vnc_port"] || u.given["vnc_password"] {
		cur, has := put.Devices[vncDevice]
		enabled := has
		if u.VNCEnabled != nil {
			enabled = *u.VNCEnabled
		}
		if !enabled {
			delete(put.Devices, vncDevice)
		} else {
			d := map[string]string{"type": "display", "protocol": "vnc"}
			if has {
				d = maps.Clone(cur)
			}
			if u.given["vnc_port"] {
				delete(d, "port")
				if u.VNCPort != nil {
					d["port"] = fmt.Sprint(*u.VNCPort)
				}
			}
			if u.given["vnc_password"] {
				delete(d, "password")
				if u.VNCPassword != nil {
					d["password"] = *u.VNCPassword
				}
			}
			put.Devices[vncDevice] = d
		}
	}
	if u.given["root_disk_size"] || u.given["root_disk_io_bus"] {
		root, ok := put.Devices[rootDevice]
		if !ok {
			// The root comes from a profile: the instance gets its own.
			r, found := rootOf(in.ExpandedDevices)
			if !found {
				return invalid("virt.instance.update.root_disk_size", "The instance has no root disk")
			}
			root = maps.Clone(r)
		} else {
			root = maps.Clone(root)
		}
		if u.given["root_disk_size"] {
			delete(root, "size")
			if u.RootDiskSize != nil {
				root["size"] = fmt.Sprintf("%dGiB", *u.RootDiskSize)
			}
		}
		if u.given["root_disk_io_bus"] {
			delete(root, "io.bus")
			if u.RootDiskIOBus != nil {
				root["io.bus"] = strings.ToLower(*u.RootDiskIOBus)
			}
		}
		put.Devices[rootDevice] = root
	}
	return nil
}

func deviceListM(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(1); err != nil {
		return nil, err
	}
	name, err := a.nameArg()
	if err != nil {
		return nil, err
	}
	in, err := c.s.Core.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	return deviceList(in), nil
}

// deviceArg reads and checks parameter 1, a device of the union.
func deviceArg(a *args) (deviceArgs, error) {
	v, ok, err := a.value(1)
	if err != nil {
		return deviceArgs{}, err
	}
	attr := a.method + ".device"
	if !ok {
		return deviceArgs{}, invalid(attr, "Field required")
	}
	var errs validationErrors
	checked, good := deviceUnion.check(attr, v, &errs)
	if !good {
		return deviceArgs{}, errs.err()
	}
	var d deviceArgs
	return d, into(checked, &d)
}

func deviceAdd(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(2); err != nil {
		return nil, err
	}
	name, err := a.nameArg()
	if err != nil {
		return nil, err
	}
	d, err := deviceArg(a)
	if err != nil {
		return nil, err
	}
	err = c.s.change(ctx, name, func(in instance.Instance, put *instance.Put) error {
		taken := cloneDevices(in.ExpandedDevices)
		maps.Copy(taken, put.Devices)
		dn, dev, aerr := toDevice(d, in.Type, taken)
		if aerr != nil {
			return invalid(a.method+".device."+aerr.attr, "%s", aerr.msg)
		}
		put.Devices[dn] = dev
		return nil
	})
	return err == nil, err
}

func deviceUpdate(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(2); err != nil {
		return nil, err
	}
	name, err := a.nameArg()
	if err != nil {
		return nil, err
	}
	d, err := deviceArg(a)
	if err != nil {
		return nil, err
	}
	if d.Name == nil {
		return nil, invalid(a.method+".device.name", "The name of the device to update is required")
	}
	dn := *d.Name
	err = c.s.change(ctx, name, func(in instance.Instance, put *instance.Put) error {
		if _, ok := put.Devices[dn]; !ok {
			return invalid(a.method+".device.name", "Device %q is not one of the instance's own devices", dn)
		}
		taken := cloneDevices(put.Devices)
		delete(taken, dn)
		_, dev, aerr := toDevice(d, in.Type, taken)
		if aerr != nil {
			return invalid(a.method+".device."+aerr.attr, "%s", aerr.msg)
		}
		put.Devices[dn] = dev
		return nil
	})
	return err == nil, err
}

func deviceDelete(ctx context.Context, c *session, a *args) (any, error) {
	if err := a.max(2); err != nil {
		return nil, err
	}
	name, err := a.nameArg()
	if err != nil {
		return nil, err
	}
	dn, err := a.str(1, "device", 1)
	if err != nil {
		return nil, err
	}
	err = c.s.change(ctx, name, func(in instance.Instance, put *instance.Put) error {
		if _, ok := put.Devices[dn]; !ok {
			if _, inherited := in.ExpandedDevices[dn]; inherited {
				return invalid(a.method+".device", "Device %q comes from a profile and cannot be deleted here", dn)
			}
			return invalid(a.method+".device", "Device %q does not exist", dn)
		}
		delete(put.Devices, dn)
		return nil
	})
	return err == nil, err
}

// --- host devices ---

func usbChoices(_ context.Context, c *session, a *args) (any, error) {
	if err := a.max(0); err != nil {
		return nil, err
	}
	out := map[string]any{}
	if c.s.Host == nil {
		return out, nil
	}
	devs, err := c.s.Host.USB()
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		name := fmt.Sprintf("usb_%d_%d", d.Bus, d.Dev)
		out[name] = map[string]any{
			"vendor_id": d.VendorID, "product_id": d.ProductID, "bus": d.Bus, "dev": d.Dev,
			"product": d.Product, "manufacturer": d.Manufacturer, "speed": d.Speed,
		}
	}
	return out, nil
}

func gpuChoices(_ context.Context, c *session, a *args) (any, error) {
	if err := a.max(1); err != nil {
		return nil, err
	}
	if len(a.params) == 1 {
		t, err := a.str(0, "gpu_type", 1)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(gpuTypes, t) {
			return nil, invalid(a.method+".gpu_type", "Input should be %s", quoteList(gpuTypes))
		}
	}
	out := map[string]any{}
	if c.s.Host == nil {
		return out, nil
	}
	gpus, err := c.s.Host.GPUs()
	if err != nil {
		return nil, err
	}
	for _, g := range gpus {
		out[g.Address] = map[string]any{"bus": g.Address, "slot": g.Address, "description": g.Description,
			"vendor": g.VendorID, "pci": g.Address}
	}
	return out, nil
}

func pciChoices(_ context.Context, c *session, a *args) (any, error) {
	if err := a.max(0); err != nil {
		return nil, err
	}
	out := map[string]any{}
	if c.s.Host == nil {
		return out, nil
	}
	devs, err := c.s.Host.PCI()
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		out[d.Address] = map[string]any{"pci_addr": d.Address, "description": d.Description, "class": d.Class,
			"vendor_id": d.VendorID, "product_id": d.ProductID, "driver": nilIfEmpty(d.Driver), "iommu_group": d.IOMMUGroup}
	}
	return out, nil
}
