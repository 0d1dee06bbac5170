package instance

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/image"
)

// OCIImages is what instances created from OCI images need of the image
// store: the image's run defaults, and pulls from registries.
type OCIImages interface {
	RuntimeConfig(ctx context.Context, fingerprint string) (*image.RuntimeConfig, error)
	ResolveRemote(ctx context.Context, req image.PullRequest) (*image.ResolvedImage, error)
	StoreRemote(ctx context.Context, ri *image.ResolvedImage, opts image.StoreOptions) (*image.RemoteImage, error)
}

// User keys that override an OCI image's run defaults (see configKeys).
// oci.entrypoint and oci.cmd are JSON arrays of strings, as in the image
// config; setting oci.entrypoint alone drops the image's cmd, as Docker's
// --entrypoint does.
const (
	keyOCIEntrypoint = "oci.entrypoint"
	keyOCICmd        = "oci.cmd"
	keyOCICwd        = "oci.cwd"
	keyOCIUID        = "oci.uid"
	keyOCIGID        = "oci.gid"
)

// Read-only keys recording an OCI image's run defaults at create, so what
// an instance runs is visible in its config and never changes under it.
const (
	keyVolatileOCIEntrypoint = "volatile.oci.entrypoint" // JSON array
	keyVolatileOCICmd        = "volatile.oci.cmd"        // JSON array
	keyVolatileOCIEnv        = "volatile.oci.env"        // JSON array of KEY=VALUE
	keyVolatileOCICwd        = "volatile.oci.cwd"
	keyVolatileOCIUID        = "volatile.oci.uid"
	keyVolatileOCIGID        = "volatile.oci.gid"
	keyVolatileOCIStopSignal = "volatile.oci.stop_signal"
)

// ProtocolOCI is the image source protocol of OCI registries (Incus's name).
const ProtocolOCI = "oci"

// CreateOptions carry what a create request says outside its body.
type CreateOptions struct {
	// RegistryUsername and RegistryPassword authenticate a pull from an
	// OCI registry. They are used for the pull only: never stored, never
	// logged, never put in an operation.
	RegistryUsername, RegistryPassword string
}

// validateArgsJSON checks an oci.entrypoint or oci.cmd value and the
// strings in it, as execve will see them.
func validateArgsJSON(v string) error {
	args, err := parseArgsJSON(v)
	if err != nil {
		return err
	}
	for i, a := range args {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("argument %d holds a NUL byte", i)
		}
		if len(a) >= maxArgStrLen {
			return fmt.Errorf("argument %d is longer than the kernel's %d bytes", i, maxArgStrLen-1)
		}
	}
	return nil
}

func parseArgsJSON(v string) ([]string, error) {
	var args []string
	if err := json.Unmarshal([]byte(v), &args); err != nil {
		return nil, fmt.Errorf(`not a JSON array of strings, like ["/bin/sh", "-c", "echo hi"]`)
	}
	return args, nil
}

func validateAbsPath(v string) error {
	if !path.IsAbs(v) {
		return fmt.Errorf("not an absolute path")
	}
	return nil
}

func validateUint32(v string) error {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 1<<32-1 {
		return fmt.Errorf("not an id between 0 and 4294967294")
	}
	return nil
}

// ociDefaults records an OCI image's run defaults as volatile keys.
func ociDefaults(rc *image.RuntimeConfig) map[string]string {
	arr := func(a []string) string {
		if a == nil {
			a = []string{}
		}
		b, _ := json.Marshal(a)
		return string(b)
	}
	out := map[string]string{
		keyVolatileOCIEntrypoint: arr(rc.Entrypoint),
		keyVolatileOCICmd:        arr(rc.Cmd),
		keyVolatileOCIEnv:        arr(rc.Env),
		keyVolatileOCIUID:        strconv.FormatUint(uint64(rc.UID), 10),
		keyVolatileOCIGID:        strconv.FormatUint(uint64(rc.GID), 10),
	}
	if rc.WorkingDir != "" {
		out[keyVolatileOCICwd] = rc.WorkingDir
	}
	if rc.StopSignal != "" {
		out[keyVolatileOCIStopSignal] = rc.StopSignal
	}
	return out
}

// ociProcess is PID 1 of an instance from an OCI image.
type ociProcess struct {
	args     []string
	env      []string // the image's, under environment.*
	cwd      string
	uid, gid uint32
	stop     syscall.Signal
}

// ociProcessOf reads an instance's process from its recorded image
// defaults (local) and the user's overrides (expanded config). ok is false
// for instances with neither, which run /sbin/init.
func ociProcessOf(local, cfg map[string]string) (p ociProcess, ok bool, err error) {
	_, fromImage := local[keyVolatileOCIEntrypoint]
	override := false
	for _, k := range []string{keyOCIEntrypoint, keyOCICmd, keyOCICwd, keyOCIUID, keyOCIGID} {
		if _, set := cfg[k]; set {
			override = true
		}
	}
	if !fromImage && !override {
		return p, false, nil
	}
	list := func(key string) ([]string, error) {
		v, set := cfg[key]
		if !set || v == "" {
			return nil, nil
		}
		a, err := parseArgsJSON(v)
		if err != nil {
			return nil, errdefs.Invalid("%s: %v", key, err)
		}
		return a, nil
	}
	entry, err := list(keyVolatileOCIEntrypoint)
	if err != nil {
		return p, false, err
	}
	cmd, err := list(keyVolatileOCICmd)
	if err != nil {
		return p, false, err
	}
	if _, set := cfg[keyOCIEntrypoint]; set {
		if entry, err = list(keyOCIEntrypoint); err != nil {
			return p, false, err
		}
		cmd = nil
	}
	if _, set := cfg[keyOCICmd]; set {
		if cmd, err = list(keyOCICmd); err != nil {
			return p, false, err
		}
	}
	p.args = append(append([]string{}, entry...), cmd...)
	if len(p.args) == 0 {
		return p, false, errdefs.Invalid("the image has no entrypoint or cmd; set %s or %s", keyOCIEntrypoint, keyOCICmd)
	}
	if p.env, err = list(keyVolatileOCIEnv); err != nil {
		return p, false, err
	}
	p.cwd = "/"
	for _, k := range []string{keyVolatileOCICwd, keyOCICwd} {
		if v := cfg[k]; v != "" {
			p.cwd = v
		}
	}
	id := func(keys ...string) (uint32, error) {
		var out uint32
		for _, k := range keys {
			v := cfg[k]
			if v == "" {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return 0, errdefs.Invalid("%s: %q is not an id", k, v)
			}
			out = uint32(n)
		}
		return out, nil
	}
	if p.uid, err = id(keyVolatileOCIUID, keyOCIUID); err != nil {
		return p, false, err
	}
	if p.gid, err = id(keyVolatileOCIGID, keyOCIGID); err != nil {
		return p, false, err
	}
	p.stop = syscall.SIGTERM
	if v := cfg[keyVolatileOCIStopSignal]; v != "" {
		if sig := parseSignal(v); sig != 0 {
			p.stop = sig
		}
	}
	return p, true, nil
}

// parseSignal reads an OCI StopSignal: "SIGINT", "INT" or "2"; 0 if unknown.
func parseSignal(v string) syscall.Signal {
	if n, err := strconv.Atoi(v); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n)
	}
	v = strings.ToUpper(v)
	if !strings.HasPrefix(v, "SIG") {
		v = "SIG" + v
	}
	return unix.SignalNum(v)
}

// mergeEnv lays vars over base ("KEY=VALUE" each), a later value replacing
// an earlier one in place, so PID 1 sees each name once.
func mergeEnv(base []string, vars ...string) []string {
	out := append([]string{}, base...)
	idx := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		idx[k] = i
	}
	for _, kv := range vars {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// remoteSource turns an instance source naming a registry into a pull
// request, or nil for local sources.
func remoteSource(src Source, opts CreateOptions) (*image.PullRequest, error) {
	if src.Server == "" && src.Protocol == "" {
		return nil, nil
	}
	if src.Protocol != ProtocolOCI {
		return nil, errdefs.Invalid("source.protocol %q: only %q (OCI registries) is supported for remote images", src.Protocol, ProtocolOCI)
	}
	ref := src.Alias
	if ref == "" && src.Fingerprint != "" {
		return nil, errdefs.Invalid("source: an OCI image is named by alias (repository:tag or repository@sha256:digest), not fingerprint")
	}
	if ref == "" {
		return nil, errdefs.Invalid("source.alias: an image reference is required")
	}
	return &image.PullRequest{
		Server:   src.Server,
		Name:     ref,
		Username: opts.RegistryUsername,
		Password: opts.RegistryPassword,
	}, nil
}
