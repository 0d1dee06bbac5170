package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hangar-dev/hangar/api"
	wire "github.com/hangar-dev/hangar/api/velocity"
	velocity "github.com/hangar-dev/hangar/client/velocity"
)

// TestVelocityAPI drives the /v/ API of seed 003 through client/velocity
// on the socket's /velocity/: login; a group tree top > mid > leaf with
// permissions granted at the top and used in the leaf; a create over the
// grandparent's memory refused with nothing made; an EFI VM created,
// listed, shown, started under OVMF, paused, resumed and stopped;
// media attached read-only and NAT and BRIDGE NICs as the LXD API sees
// them; a VM made through the LXD API listed here; the host NIC list
// and a BRIDGE NIC on a NIC that is no bridge (a macvlan nic);
// the 401/404 answers of every endpoint.
func TestVelocityAPI(t *testing.T) {
	requireEFI(t)
	d := startDaemon(t, "")
	ctx := context.Background()
	c := d.client()

	// top (limits.memory 1GiB) > mid > leaf; side apart.
	parent := ""
	for _, p := range []string{"top", "mid", "leaf"} {
		cfg := map[string]string{}
		if p == "top" {
			cfg["limits.memory"] = "1GiB"
		}
		par := parent
		if err := c.CreateProject(ctx, api.ProjectsPost{Name: p, ProjectPut: api.ProjectPut{Config: cfg, Parent: &par}}); err != nil {
			t.Fatalf("project %s: %v", p, err)
		}
		parent = p
	}
	if err := c.CreateProject(ctx, api.ProjectsPost{Name: "side"}); err != nil {
		t.Fatal(err)
	}
	// alice holds the four permissions at the top; carol may only view.
	for _, u := range []string{"alice", "carol"} {
		if err := c.CreateUser(ctx, api.UsersPost{Name: u, Password: u + "-pw-1234"}); err != nil {
			t.Fatalf("user %s: %v", u, err)
		}
	}
	perm := func(typ, url, e string) api.Permission {
		return api.Permission{EntityType: typ, EntityReference: url, Entitlement: e}
	}
	groups := []api.AuthGroupsPost{
		{AuthGroupPost: api.AuthGroupPost{Name: "vm-admins"}, AuthGroupPut: api.AuthGroupPut{
			Permissions: []api.Permission{
				perm("project", "/1.0/projects/top", "can_view_instances"),
				perm("project", "/1.0/projects/top", "can_manage_instances"),
				perm("project", "/1.0/projects/top", "can_operate_instances"),
				perm("server", "/1.0", "can_view_resources"),
			},
			Identities: map[string][]string{"user": {"alice"}}}},
		{AuthGroupPost: api.AuthGroupPost{Name: "vm-viewers"}, AuthGroupPut: api.AuthGroupPut{
			Permissions: []api.Permission{perm("project", "/1.0/projects/top", "can_view_instances")},
			Identities:  map[string][]string{"user": {"carol"}}}},
	}
	for _, g := range groups {
		if err := c.CreateAuthGroup(ctx, g); err != nil {
			t.Fatalf("group %s: %v", g.Name, err)
		}
	}
	// Media: block volumes of leaf's on the default pool.
	for _, v := range []string{"disk1", "disk2"} {
		if err := c.UseProject("leaf").CreateStoragePoolVolume(ctx, "default", api.StorageVolumesPost{Name: v, Type: "custom", ContentType: "block",
			StorageVolumePut: api.StorageVolumePut{Config: map[string]string{"size": "16MiB"}}}); err != nil {
			t.Fatal(err)
		}
	}
	// An ISO medium: an image xorriso makes, imported as leaf's ISO volume.
	if lookPath("xorriso") == "" {
		t.Skip("xorriso is not installed (scripts/deps.sh installs it)")
	}
	isoFile := filepath.Join(t.TempDir(), "media.iso")
	if out, err := exec.Command("xorriso", "-as", "mkisofs", "-quiet", "-o", isoFile, "/etc/hostname").CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v: %s", err, out)
	}
	if f, err := os.Open(isoFile); err != nil {
		t.Fatal(err)
	} else {
		op, err := c.UseProject("leaf").CreateStoragePoolVolumeFromISO(ctx, "default", "cd", f)
		if err == nil {
			err = op.Wait(ctx)
		}
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A host NIC for BRIDGE: a bridge over a veth end in the daemon's
	// namespace (a VM's NIC is a tap on a host bridge); plain0 is a NIC
	// that is no bridge.
	for _, args := range [][]string{{"ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan0p"},
		{"ip", "link", "add", "lanbr", "type", "bridge"}, {"ip", "link", "set", "lan0", "master", "lanbr"},
		{"ip", "link", "set", "lan0", "up"}, {"ip", "link", "set", "lanbr", "up"},
		{"ip", "link", "add", "plain0", "type", "veth", "peer", "name", "plain0p"}} {
		if out, err := d.inDaemonNetns(args...); err != nil {
			t.Fatalf("%v: %v %s", args, err, out)
		}
	}
	if err := c.UpdateServerConfig(ctx, map[string]string{"velocity.host_nics": "lan=lanbr,plain=plain0"}); err != nil {
		t.Fatal(err)
	}

	alice, carol, anon := velocity.NewUnix(d.socket), velocity.NewUnix(d.socket), velocity.NewUnix(d.socket)
	if _, err := alice.Login(ctx, "alice", "wrong"); velocity.StatusOf(err) != http.StatusForbidden {
		t.Fatalf("login with a wrong password: %v, want 403", err)
	}
	login, err := alice.Login(ctx, "alice", "alice-pw-1234")
	if err != nil {
		t.Fatal(err)
	}
	if exp := time.Unix(int64(login.Expires), 0); time.Until(exp) < 50*time.Minute {
		t.Fatalf("authkey expires at %v", exp)
	}
	if _, err := carol.Login(ctx, "carol", "carol-pw-1234"); err != nil {
		t.Fatal(err)
	}
	anon.SetAuthKey("not-a-key")

	efi := func(name, gid string, memMiB int64) wire.EFIRequest {
		return wire.EFIRequest{Name: name, GID: gid, CPUs: 1, MemoryMiB: wire.Num(memMiB),
			Media: []wire.Media{{MID: "default/disk1", Mode: wire.ModeVirtIO, ReadOnly: true}},
			NICs:  []wire.NIC{{Type: wire.NICNAT}, {Type: wire.NICBridge, Host: "lan"}}}
	}
	var vmid string
	withDevices := func(r wire.EFIRequest) wire.EFIRequest {
		r.Media = append(r.Media, wire.Media{MID: "default/disk2", Mode: wire.ModeUSB, ReadOnly: true},
			wire.Media{MID: "default/cd", Mode: wire.ModeBlock, ReadOnly: true})
		r.Displays = []wire.Display{{Name: "Main screen", Width: 1024, Height: 768, PPI: 96}}
		return r
	}

	t.Run("quota of the grandparent", func(t *testing.T) {
		_, err := alice.CreateEFI(ctx, efi("big", "leaf", 2048))
		if velocity.StatusOf(err) != http.StatusNotAcceptable || !strings.Contains(err.Error(), "top") || !strings.Contains(err.Error(), "limits.memory") {
			t.Fatalf("create over top's memory: %v, want 406 naming top's limits.memory", err)
		}
		if names, err := c.UseProject("leaf").GetInstanceNames(ctx); err != nil || len(names) != 0 {
			t.Fatalf("leaf after a refused create: %v %v", names, err)
		}
	})

	t.Run("create and show", func(t *testing.T) {
		if vmid, err = alice.CreateEFI(ctx, withDevices(efi("vm1", "leaf", 256))); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.CreateEFI(ctx, efi("vm1", "leaf", 256)); velocity.StatusOf(err) != http.StatusConflict {
			t.Fatalf("same name again: %v, want 409", err)
		}
		writableISO := efi("vm2", "leaf", 256)
		writableISO.Media = []wire.Media{{MID: "default/cd", Mode: wire.ModeBlock}}
		if _, err := alice.CreateEFI(ctx, writableISO); velocity.StatusOf(err) != http.StatusNotAcceptable || !strings.Contains(err.Error(), "read-only") {
			t.Fatalf("an ISO medium with readonly false: %v, want 406", err)
		}
		vm, err := alice.GetVM(ctx, vmid)
		if err != nil {
			t.Fatal(err)
		}
		want := wire.VM{VMID: vmid, Name: "vm1", Type: "EFI", State: wire.StateStopped, CPUs: 1, MemoryMiB: 256,
			Displays: []wire.Display{{Name: "Main screen", Width: 1024, Height: 768, PPI: 96}},
			Media:    []wire.Media{{MID: "default/disk1", Mode: "VIRTIO", ReadOnly: true}, {MID: "default/disk2", Mode: "USB", ReadOnly: true}, {MID: "default/cd", Mode: "BLOCK", ReadOnly: true}},
			NICs:     []wire.NIC{{Type: "NAT"}, {Type: "BRIDGE", Host: "lan"}}}
		if !equalJSON(t, vm, want) {
			t.Fatalf("vm: %+v\nwant %+v", vm, want)
		}
		// The same VM through the LXD API, in the group's project.
		in, _, err := c.UseProject("leaf").GetInstance(ctx, "vm1")
		if err != nil {
			t.Fatal(err)
		}
		if m := in.Devices["media0"]; m["readonly"] != "true" || m["io.bus"] != "virtio-blk" || m["source"] != "disk1" {
			t.Fatalf("media0 as LXD sees it: %v", m)
		}
		if m := in.Devices["media1"]; m["readonly"] != "true" || m["io.bus"] != "usb" || m["source"] != "disk2" {
			t.Fatalf("media1 as LXD sees it: %v", m)
		}
		if m := in.Devices["media2"]; m["readonly"] != "true" || m["io.bus"] != "virtio-scsi" || m["source"] != "cd" {
			t.Fatalf("media2 (the ISO) as LXD sees it: %v", m)
		}
		if d := in.Devices["display0"]; d["type"] != "display" || d["protocol"] != "vnc" || d["width"] != "1024" || d["height"] != "768" || d["ppi"] != "96" {
			t.Fatalf("display0 as LXD sees it: %v", d)
		}
		if n := in.Devices["eth1"]; n["nictype"] != "bridged" || n["parent"] != "lanbr" {
			t.Fatalf("eth1 as LXD sees it: %v", n)
		}
		if n := in.Devices["eth0"]; n["network"] != "hangarbr0" {
			t.Fatalf("eth0 as LXD sees it: %v", n)
		}
		list, err := alice.ListVMs(ctx, "leaf")
		if err != nil || len(list) != 1 || list[0].VMID != vmid || list[0].State != wire.StateStopped || list[0].MemoryMiB != 256 {
			t.Fatalf("list: %+v %v", list, err)
		}
	})

	t.Run("a VM made through LXD", func(t *testing.T) {
		op, err := c.UseProject("mid").CreateInstance(ctx, api.InstancesPost{Name: "lxdvm", Type: "virtual-machine", Source: api.InstanceSource{Type: "none"},
			InstancePut: api.InstancePut{Config: map[string]string{"limits.memory": "128MiB"},
				Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default", "size": "32MiB"}}}})
		if err == nil {
			err = op.Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		list, err := alice.ListVMs(ctx, "mid")
		if err != nil || len(list) != 1 || list[0].Name != "lxdvm" || list[0].MemoryMiB != 128 {
			t.Fatalf("mid's list: %+v %v", list, err)
		}
	})

	t.Run("states", func(t *testing.T) {
		if _, err := alice.SetState(ctx, vmid, wire.StatePaused, false); velocity.StatusOf(err) != http.StatusInternalServerError {
			t.Fatalf("pause a stopped VM: %v, want 500", err)
		}
		if _, err := alice.SetState(ctx, vmid, wire.StateStarting, false); velocity.StatusOf(err) != http.StatusBadRequest {
			t.Fatalf("ask for STARTING: %v, want 400", err)
		}
		if _, err := carol.SetState(ctx, vmid, wire.StateRunning, false); velocity.StatusOf(err) != http.StatusForbidden {
			t.Fatalf("carol starts: %v, want 403", err)
		}
		steps := []struct {
			want  wire.State
			force bool
		}{{wire.StateRunning, false}, {wire.StateRunning, false}, {wire.StatePaused, false}, {wire.StateRunning, false}, {wire.StateStopped, true}}
		for _, s := range steps {
			got, err := alice.SetState(ctx, vmid, s.want, s.force)
			if err != nil || got != s.want {
				t.Fatalf("to %s: %s %v", s.want, got, err)
			}
			if st, err := carol.State(ctx, vmid); err != nil || st != s.want {
				t.Fatalf("state after %s: %s %v", s.want, st, err)
			}
			if s.want == wire.StateRunning {
				// The display is a VNC server on loopback, on the port
				// the instance records.
				in, _, err := c.UseProject("leaf").GetInstance(ctx, "vm1")
				if err != nil || in.Config["volatile.display0.port"] == "" {
					t.Fatalf("display port of a running VM: %v %v", in.Config, err)
				}
				conn, err := dialInNetns(d.netns, "127.0.0.1:"+in.Config["volatile.display0.port"])
				if err != nil {
					t.Fatalf("VNC display: %v", err)
				}
				banner := make([]byte, 12)
				_, err = io.ReadFull(conn, banner)
				conn.Close()
				if err != nil || !strings.HasPrefix(string(banner), "RFB ") {
					t.Fatalf("VNC banner %q: %v", banner, err)
				}
			}
			if s.want == wire.StatePaused {
				in, _, err := c.UseProject("leaf").GetInstance(ctx, "vm1")
				if err != nil || in.Status != "Frozen" {
					t.Fatalf("LXD's status of a paused VM: %v %v", in, err)
				}
			}
		}
	})

	t.Run("host NICs", func(t *testing.T) {
		nics, err := alice.HostNICs(ctx)
		if err != nil || len(nics) != 2 || nics[0].NICID != "lan" || nics[0].Identifier != "lanbr" || !strings.Contains(nics[0].Description, "bridge") ||
			nics[1].NICID != "plain" || nics[1].Identifier != "plain0" {
			t.Fatalf("host NICs: %+v %v", nics, err)
		}
		// BRIDGE on a NIC that is no bridge: a macvlan nic on it (the
		// VM gets a macvtap when it starts; TestMacvlanVM boots one).
		r := efi("vm8", "leaf", 128)
		r.NICs[1].Host = "plain"
		id, err := alice.CreateEFI(ctx, r)
		if err != nil {
			t.Fatalf("BRIDGE on a NIC that is no bridge: %v", err)
		}
		t.Cleanup(func() {
			if op, err := c.UseProject("leaf").DeleteInstance(ctx, "vm8"); err == nil {
				_ = op.Wait(ctx)
			}
		})
		in, _, err := c.UseProject("leaf").GetInstance(ctx, "vm8")
		if err != nil {
			t.Fatal(err)
		}
		if n := in.Devices["eth1"]; n["type"] != "nic" || n["nictype"] != "macvlan" || n["parent"] != "plain0" {
			t.Fatalf("eth1 on plain as LXD sees it: %v", n)
		}
		if vm, err := alice.GetVM(ctx, id); err != nil || len(vm.NICs) != 2 || vm.NICs[1] != (wire.NIC{Type: "BRIDGE", Host: "plain"}) {
			t.Fatalf("vm8's NICs: %+v %v", vm.NICs, err)
		}
	})

	t.Run("over HTTPS at the root", func(t *testing.T) {
		if err := c.UpdateServerConfig(ctx, map[string]string{"core.https_address": httpsAddr}); err != nil {
			t.Fatal(err)
		}
		tr := transportIn(d.netns)
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the server's own certificate
		remote := velocity.New("https://"+httpsAddr, &http.Client{Transport: tr, Timeout: 30 * time.Second})
		if _, err := remote.Login(ctx, "carol", "carol-pw-1234"); err != nil {
			t.Fatal(err)
		}
		if list, err := remote.ListVMs(ctx, "leaf"); err != nil || len(list) != 1 || list[0].VMID != vmid {
			t.Fatalf("list over HTTPS: %+v %v", list, err)
		}
		if err := remote.Logout(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("401 and 404", func(t *testing.T) {
		calls := []struct {
			name string
			do   func(cl *velocity.Client) error
			deny int // carol's answer: lacking the permission
		}{
			{"list", func(cl *velocity.Client) error { _, err := cl.ListVMs(ctx, "leaf"); return err }, 0},
			{"get", func(cl *velocity.Client) error { _, err := cl.GetVM(ctx, vmid); return err }, 0},
			{"state", func(cl *velocity.Client) error { _, err := cl.State(ctx, vmid); return err }, 0},
			{"set state", func(cl *velocity.Client) error { _, err := cl.SetState(ctx, vmid, wire.StateStopped, true); return err }, http.StatusForbidden},
			{"efi", func(cl *velocity.Client) error { _, err := cl.CreateEFI(ctx, efi("vm9", "leaf", 128)); return err }, http.StatusUnauthorized},
			{"nic list", func(cl *velocity.Client) error { _, err := cl.HostNICs(ctx); return err }, http.StatusUnauthorized},
		}
		for _, cl := range calls {
			if err := cl.do(anon); velocity.StatusOf(err) != http.StatusUnauthorized {
				t.Errorf("%s with a bad authkey: %v, want 401", cl.name, err)
			}
			err := cl.do(carol)
			if got := velocity.StatusOf(err); (cl.deny == 0 && err != nil) || (cl.deny != 0 && got != cl.deny) {
				t.Errorf("%s by carol: %v, want %d", cl.name, err, cl.deny)
			}
		}
		notFound := []struct {
			name string
			err  error
		}{
			{"list of an unknown group", func() error { _, err := alice.ListVMs(ctx, "nope"); return err }()},
			{"list of a hidden group", func() error { _, err := alice.ListVMs(ctx, "side"); return err }()},
			{"get of an unknown VM", func() error { _, err := alice.GetVM(ctx, "nope"); return err }()},
			{"state of an unknown VM", func() error { _, err := alice.State(ctx, "nope"); return err }()},
			{"set state of an unknown VM", func() error { _, err := alice.SetState(ctx, "nope", wire.StateRunning, false); return err }()},
			{"efi in an unknown group", func() error { _, err := alice.CreateEFI(ctx, efi("x", "nope", 128)); return err }()},
			{"efi with an unknown medium", func() error {
				r := efi("x", "leaf", 128)
				r.Media[0].MID = "default/nope"
				_, err := alice.CreateEFI(ctx, r)
				return err
			}()},
			{"efi with an unknown NICID", func() error {
				r := efi("x", "leaf", 128)
				r.NICs[1].Host = "wan"
				_, err := alice.CreateEFI(ctx, r)
				return err
			}()},
		}
		for _, nf := range notFound {
			if velocity.StatusOf(nf.err) != http.StatusNotFound {
				t.Errorf("%s: %v, want 404", nf.name, nf.err)
			}
		}
		if names, _ := c.UseProject("leaf").GetInstanceNames(ctx); !slices.Equal(names, []string{"vm1"}) {
			t.Errorf("leaf after refused creates: %v", names)
		}
	})
}

// equalJSON compares two values by their JSON.
func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return string(x) == string(y)
}
