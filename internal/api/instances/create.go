package instances

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	wire "github.com/hangar-dev/hangar/api/instances"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
)

// create is POST /instances: create a VM from an OCI image and start it.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	var p wire.InstanceNewParams
	if err := decode(r, &p, false); err != nil {
		writeError(w, err)
		return
	}
	req, err := s.createRequest(p)
	if err != nil {
		writeError(w, err)
		return
	}
	// The create runs to its end even if the client goes away: the core
	// cleans up a failed create, but a half-made instance must not
	// depend on a connection.
	ctx := context.WithoutCancel(r.Context())
	if err := s.fillPools(ctx, req.Devices); err != nil {
		writeError(w, err)
		return
	}
	name, err := s.Core.Create(ctx, req, instance.CreateOptions{})
	if err != nil {
		writeError(w, err)
		return
	}
	s.answer(w, ctx, name, http.StatusCreated)
}

// createRequest validates every field and translates the request into
// the core's. The core checks config keys and devices again.
func (s *Server) createRequest(p wire.InstanceNewParams) (instance.CreateRequest, error) {
	if err := checkName("name", p.Name); err != nil {
		return instance.CreateRequest{}, err
	}
	src, err := ociSource(p.Image)
	if err != nil {
		return instance.CreateRequest{}, err
	}
	cfg := map[string]string{}
	devs := instance.Devices{}
	req := instance.CreateRequest{Name: p.Name, Type: instance.TypeVM, Source: src, Config: cfg, Devices: devs, Start: true}

	mem := int64(defaultMemory)
	if p.Size != nil {
		if mem, err = parseSize("size", *p.Size); err != nil {
			return req, err
		}
	}
	cfg[keyMemory] = strconv.FormatInt(mem, 10)
	vcpus := int64(defaultVCPUs)
	if p.Vcpus != nil {
		if vcpus = *p.Vcpus; vcpus < 1 {
			return req, fieldErr("vcpus", "%d: at least 1", vcpus)
		}
	}
	cfg[keyCPU] = strconv.FormatInt(vcpus, 10)
	if p.HotplugSize != nil {
		n, err := parseSize("hotplug_size", *p.HotplugSize)
		if err != nil {
			return req, err
		}
		cfg[keyHotplug] = strconv.FormatInt(n, 10)
	}
	root := map[string]string{}
	if p.OverlaySize != nil {
		n, err := parseSize("overlay_size", *p.OverlaySize)
		if err != nil {
			return req, err
		}
		root["size"] = strconv.FormatInt(n, 10)
	}
	if p.DiskIoBps != nil {
		n, err := parseIORate("disk_io_bps", *p.DiskIoBps)
		if err != nil {
			return req, err
		}
		root["limits.read"], root["limits.write"] = strconv.FormatInt(n, 10), strconv.FormatInt(n, 10)
	}
	if len(root) > 0 {
		// The instance's own root overrides the profile's; the pool is
		// the default profile's (the core fills a root without pool
		// from the profiles).
		root["type"], root["path"] = "disk", "/"
		devs[rootName] = root
	}
	if p.SkipGuestAgent != nil && *p.SkipGuestAgent {
		cfg[keyAgentSkip] = "true"
	}
	// skip_kernel_headers: no kernel headers are installed at boot here,
	// so there is nothing to skip; any value is accepted.
	if err := checkHypervisor("hypervisor", p.Hypervisor); err != nil {
		return req, err
	}
	if len(p.Devices) > 0 {
		return req, fieldErr("devices", "this host has no GPU/PCI devices to pass through")
	}
	if p.GPU != nil && p.GPU.Profile != nil {
		return req, fieldErr("gpu.profile", "this host has no GPU (no vGPU profiles) to pass through")
	}
	if err := checkArgv("entrypoint", p.Entrypoint); err != nil {
		return req, err
	}
	if err := checkArgv("cmd", p.Cmd); err != nil {
		return req, err
	}
	if p.Entrypoint != nil {
		cfg[keyEntrypoint] = argvJSON(p.Entrypoint)
	}
	if p.Cmd != nil {
		cfg[keyCmd] = argvJSON(p.Cmd)
	}
	if err := checkEnv("env", p.Env); err != nil {
		return req, err
	}
	if err := checkTags("tags", p.Tags); err != nil {
		return req, err
	}
	for k, v := range p.Tags {
		cfg[prefixTag+k] = v
	}
	secrets, err := credentials(p, cfg)
	if err != nil {
		return req, err
	}
	for k, v := range p.Env {
		if _, secret := secrets[k]; !secret {
			cfg[prefixEnv+k] = v
		}
	}
	req.Secrets = secrets
	if err := autoStandbyConfig(p.AutoStandby, cfg); err != nil {
		return req, err
	}
	if p.SnapshotPolicy != nil && p.SnapshotPolicy.Compression != nil {
		v, err := compressionValue("snapshot_policy.compression", p.SnapshotPolicy.Compression)
		if err != nil {
			return req, err
		}
		cfg[keyCompression] = v
	}
	if err := s.networkConfig(p.Network, cfg, devs); err != nil {
		return req, err
	}
	if err := volumeDevices(p.Volumes, devs); err != nil {
		return req, err
	}
	return req, nil
}

// ociSource reads an OCI image reference ("docker.io/library/alpine:3",
// "alpine", "127.0.0.1:5000/app:1") as Docker does: a first component
// with a dot or a port, or "localhost", is the registry, else Docker
// Hub. A loopback registry is reached over plain HTTP (the seed has no
// insecure flag; registries on this host are what tests and local
// development run).
func ociSource(ref string) (instance.Source, error) {
	switch {
	case ref == "":
		return instance.Source{}, fieldErr("image", "required: an OCI image reference like docker.io/library/alpine:3.20")
	case strings.ContainsAny(ref, " \t\n\x00"):
		return instance.Source{}, fieldErr("image", "%q: an image reference has no spaces", ref)
	}
	server, name := "docker.io", ref
	if first, rest, ok := strings.Cut(ref, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		server, name = first, rest
		if loopback(first) {
			server = "http://" + first
		}
	}
	if name == "" {
		return instance.Source{}, fieldErr("image", "%q names no repository", ref)
	}
	return instance.Source{Type: instance.SourceImage, Protocol: instance.ProtocolOCI, Server: server, Alias: name}, nil
}

func loopback(hostport string) bool {
	host := hostport
	if i := strings.LastIndex(hostport, ":"); i >= 0 && !strings.HasSuffix(hostport, "]") {
		host = hostport[:i]
	}
	host = strings.Trim(host, "[]")
	return host == "localhost" || host == "::1" || strings.HasPrefix(host, "127.")
}

// credentials checks the credentials and writes each as
// credentials.NAME (its JSON); the real values, env[source.env], are
// returned to travel in CreateRequest.Secrets and never in config.
func credentials(p wire.InstanceNewParams, cfg map[string]string) (map[string]string, error) {
	if len(p.Credentials) == 0 {
		return nil, nil
	}
	secrets := map[string]string{}
	names := make([]string, 0, len(p.Credentials))
	for n := range p.Credentials {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c := p.Credentials[n]
		field := "credentials." + n
		if !envKeyRE.MatchString(n) {
			return nil, fieldErr("credentials", "%q is not an environment variable name", n)
		}
		if c.Source.Env == "" {
			return nil, fieldErr(field+".source.env", "required: the key of the real value in env")
		}
		real, ok := p.Env[c.Source.Env]
		if !ok {
			return nil, fieldErr(field+".source.env", "%q is not a key of env", c.Source.Env)
		}
		if len(c.Inject) == 0 {
			return nil, fieldErr(field+".inject", "required: at least one rule")
		}
		for i, in := range c.Inject {
			f := fmt.Sprintf("%s.inject[%d]", field, i)
			if in.As.Header == "" || strings.ContainsAny(in.As.Header, " :\r\n") {
				return nil, fieldErr(f+".as.header", "%q is not an HTTP header name", in.As.Header)
			}
			if !strings.Contains(in.As.Format, "${value}") {
				return nil, fieldErr(f+".as.format", "%q must contain ${value}", in.As.Format)
			}
			for j, h := range in.Hosts {
				if !hostPattern(h) {
					return nil, fieldErr(fmt.Sprintf("%s.hosts[%d]", f, j), "%q is not a host name or *.domain pattern", h)
				}
			}
		}
		b, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("credential %s: %w", n, err)
		}
		cfg[prefixCredential+n] = string(b)
		secrets[c.Source.Env] = real
	}
	return secrets, nil
}

func hostPattern(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func autoStandbyConfig(a *wire.AutoStandbyPolicyParams, cfg map[string]string) error {
	if a == nil {
		return nil
	}
	if a.Enabled != nil {
		cfg[keyASEnabled] = strconv.FormatBool(*a.Enabled)
	}
	if a.IdleTimeout != nil {
		if _, err := parseDuration("auto_standby.idle_timeout", *a.IdleTimeout, 0); err != nil {
			return err
		}
		cfg[keyASIdle] = *a.IdleTimeout
	} else if a.Enabled != nil && *a.Enabled {
		return fieldErr("auto_standby.idle_timeout", "required when auto_standby is enabled")
	}
	if err := checkPorts("auto_standby.ignore_destination_ports", a.IgnoreDestinationPorts); err != nil {
		return err
	}
	if len(a.IgnoreDestinationPorts) > 0 {
		ps := make([]string, len(a.IgnoreDestinationPorts))
		for i, p := range a.IgnoreDestinationPorts {
			ps[i] = strconv.FormatInt(p, 10)
		}
		cfg[keyASPorts] = strings.Join(ps, ",")
	}
	if err := checkCIDRs("auto_standby.ignore_source_cidrs", a.IgnoreSourceCidrs); err != nil {
		return err
	}
	if len(a.IgnoreSourceCidrs) > 0 {
		cfg[keyASCIDRs] = strings.Join(a.IgnoreSourceCidrs, ",")
	}
	return nil
}

// networkConfig: network.enabled=false masks the default profile's NIC
// (a "none" device of its name); enabled, the default (no network object
// at all included), gives the instance a NIC of its own on the default
// network, with limits.ingress (download) and limits.egress (upload) in
// bit/s when bandwidths are given.
func (s *Server) networkConfig(n *wire.InstanceNewParamsNetwork, cfg map[string]string, devs instance.Devices) error {
	if n == nil {
		n = &wire.InstanceNewParamsNetwork{}
	}
	enabled := n.Enabled == nil || *n.Enabled
	nic := map[string]string{}
	if n.BandwidthDownload != nil {
		b, err := parseBandwidth("network.bandwidth_download", *n.BandwidthDownload)
		if err != nil {
			return err
		}
		nic["limits.ingress"] = strconv.FormatInt(b, 10) + "bit"
	}
	if n.BandwidthUpload != nil {
		b, err := parseBandwidth("network.bandwidth_upload", *n.BandwidthUpload)
		if err != nil {
			return err
		}
		nic["limits.egress"] = strconv.FormatInt(b, 10) + "bit"
	}
	if n.Egress != nil {
		if n.Egress.Enabled != nil {
			cfg[keyEgressEnabled] = strconv.FormatBool(*n.Egress.Enabled)
		}
		if e := n.Egress.Enforcement; e != nil {
			switch e.Mode {
			case "", wire.EgressModeAll, wire.EgressModeHTTPHTTPSOnly:
				if e.Mode != "" {
					cfg[keyEgressMode] = e.Mode
				}
			default:
				return fieldErr("network.egress.enforcement.mode", "%q: want all or http_https_only", e.Mode)
			}
		}
	}
	switch {
	case !enabled && (len(nic) > 0 || (n.Egress != nil && n.Egress.Enabled != nil && *n.Egress.Enabled)):
		return fieldErr("network.enabled", "false, yet bandwidth or egress is set for the network")
	case !enabled:
		devs[nicName] = map[string]string{"type": "none"}
	case s.NICNetwork != "":
		// The seed's default: attached to the default network, whatever
		// the project's default profile holds (a new project's is empty).
		nic["type"], nic["network"], nic["name"] = "nic", s.NICNetwork, nicName
		devs[nicName] = nic
	case len(nic) > 0:
		return errdefs.NotImplemented("network.bandwidth_*: this daemon has no default network to attach a limited NIC to")
	}
	return nil
}

// volumeDevices attaches custom volumes as disks named after them.
func volumeDevices(vols []wire.VolumeMountParams, devs instance.Devices) error {
	paths := map[string]bool{}
	for i, v := range vols {
		field := fmt.Sprintf("volumes[%d]", i)
		if err := checkName(field+".volume_id", v.VolumeID); err != nil {
			return err
		}
		if err := checkMountPath(field+".mount_path", v.MountPath); err != nil {
			return err
		}
		if paths[v.MountPath] {
			return fieldErr(field+".mount_path", "%q is mounted twice", v.MountPath)
		}
		paths[v.MountPath] = true
		if v.Overlay != nil && *v.Overlay {
			return fieldErr(field+".overlay", "per-instance overlays over a volume are not supported here")
		}
		if v.OverlaySize != nil {
			return fieldErr(field+".overlay_size", "applies to overlay, which is not supported here")
		}
		dev := volumeDeviceName(v.VolumeID)
		if devs[dev] != nil {
			return fieldErr(field+".volume_id", "%q is attached twice", v.VolumeID)
		}
		d := map[string]string{"type": "disk", "source": v.VolumeID, "path": v.MountPath}
		if v.Readonly != nil && *v.Readonly {
			d["readonly"] = "true"
		}
		devs[dev] = d
	}
	return nil
}

// volumeDeviceName is the disk device of an attached volume.
func volumeDeviceName(id string) string { return "volume-" + id }

// fillPools gives each attached volume the pool that holds it.
func (s *Server) fillPools(ctx context.Context, devs instance.Devices) error {
	for _, d := range devs {
		if d["type"] != "disk" || d["source"] == "" || d["pool"] != "" {
			continue
		}
		if s.Volumes == nil {
			return errdefs.NotImplemented("volumes: this daemon has no storage volumes")
		}
		pool, err := s.Volumes.PoolOfCustomVolume(ctx, d["source"])
		if err != nil {
			return fmt.Errorf("volume %s: %w", d["source"], err)
		}
		d["pool"] = pool
	}
	return nil
}
