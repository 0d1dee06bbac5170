package instance

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/hangar-dev/hangar/internal/device"
	"github.com/hangar-dev/hangar/internal/driver"
)

// fakeDeviceLayer records which device-layer call the core makes for an
// instance, as "OP NAME".
type fakeDeviceLayer struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeDeviceLayer) record(op string, in device.Instance) {
	f.mu.Lock()
	f.calls = append(f.calls, op+" "+in.Name)
	f.mu.Unlock()
}

// take returns the calls recorded since the last take, but for Validate
// and BlockIO.
func (f *fakeDeviceLayer) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeDeviceLayer) Validate(context.Context, map[string]map[string]string, bool) error {
	return nil
}

func (f *fakeDeviceLayer) Start(_ context.Context, in device.Instance, _ map[string]map[string]string) (device.Run, error) {
	f.record("start", in)
	return device.Run{}, nil
}

func (f *fakeDeviceLayer) Started(_ context.Context, in device.Instance, _ map[string]map[string]string) error {
	f.record("started", in)
	return nil
}

func (f *fakeDeviceLayer) Reattach(_ context.Context, in device.Instance, _ map[string]map[string]string) error {
	f.record("reattach", in)
	return nil
}

func (f *fakeDeviceLayer) Stop(_ context.Context, in device.Instance, _ map[string]map[string]string) error {
	f.record("stop", in)
	return nil
}

func (f *fakeDeviceLayer) Standby(_ context.Context, in device.Instance, _ map[string]map[string]string) error {
	f.record("standby", in)
	return nil
}

func (f *fakeDeviceLayer) Update(_ context.Context, in device.Instance, _, _ map[string]map[string]string) ([]driver.NIC, []string, error) {
	f.record("update", in)
	return nil, nil, nil
}

func (f *fakeDeviceLayer) Removed(context.Context, device.Instance, []string) error { return nil }
func (f *fakeDeviceLayer) Renamed(context.Context) error                            { return nil }
func (f *fakeDeviceLayer) BlockIO(context.Context, device.Instance, map[string]map[string]string) ([]driver.BlockIOLimit, error) {
	return nil, nil
}

// fakeStandbyVM is the fake VM driver with a stateful stop.
type fakeStandbyVM struct{ *fakeVMDriver }

func (f fakeStandbyVM) Standby(_ context.Context, id string, _ driver.Compression) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.running[id]; !ok {
		return errors.New("fake: not running")
	}
	delete(f.running, id)
	return nil
}

// TestStandbyDevices: the core tells the device layer which stops keep
// what reaches an instance in standby (a stateful stop: Standby) and
// which remove it (Stop: a stateless stop, a delete or a change of
// devices in standby); a restarted daemon puts it back for an instance
// left in standby.
func TestStandbyDevices(t *testing.T) {
	ctx := context.Background()
	web := map[string]map[string]string{"web": {"type": "proxy", "listen": "tcp:0.0.0.0:9090", "connect": "tcp:0.0.0.0:8080", "nat": "true"}}
	tests := []struct {
		name string
		do   func(t *testing.T, s *Service) error
		want []string
	}{
		{"stateful stop", func(t *testing.T, s *Service) error {
			return s.Stop(ctx, "v1", StopOptions{Stateful: true})
		}, []string{"standby v1"}},
		{"stateless stop", func(t *testing.T, s *Service) error {
			return s.Stop(ctx, "v1", StopOptions{Force: true})
		}, []string{"stop v1"}},
		{"wake from standby", func(t *testing.T, s *Service) error {
			if err := s.Stop(ctx, "v1", StopOptions{Stateful: true}); err != nil {
				return err
			}
			return s.Start(ctx, "v1")
		}, []string{"standby v1", "start v1", "started v1"}},
		{"delete in standby", func(t *testing.T, s *Service) error {
			if err := s.Stop(ctx, "v1", StopOptions{Stateful: true}); err != nil {
				return err
			}
			return s.Delete(ctx, "v1")
		}, []string{"standby v1", "stop v1"}},
		{"delete after a stateless stop touches no devices", func(t *testing.T, s *Service) error {
			if err := s.Stop(ctx, "v1", StopOptions{Force: true}); err != nil {
				return err
			}
			return s.Delete(ctx, "v1")
		}, []string{"stop v1"}},
		{"devices changed in standby", func(t *testing.T, s *Service) error {
			if err := s.Stop(ctx, "v1", StopOptions{Stateful: true}); err != nil {
				return err
			}
			got, err := s.Get(ctx, "v1")
			if err != nil {
				return err
			}
			devs := cloneDevices(got.Devices)
			devs["web"] = map[string]string{"type": "proxy", "listen": "tcp:0.0.0.0:9091", "connect": "tcp:0.0.0.0:8080", "nat": "true"}
			return s.Update(ctx, "v1", Put{Config: got.Config, Devices: devs, Profiles: got.Profiles}, nil)
		}, []string{"standby v1", "stop v1"}},
		{"config changed in standby", func(t *testing.T, s *Service) error {
			if err := s.Stop(ctx, "v1", StopOptions{Stateful: true}); err != nil {
				return err
			}
			got, err := s.Get(ctx, "v1")
			if err != nil {
				return err
			}
			got.Config["user.note"] = "x"
			return s.Update(ctx, "v1", Put{Config: got.Config, Devices: got.Devices, Profiles: got.Profiles}, nil)
		}, []string{"standby v1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, vm := newVMTestService(t)
			s.cfg.Drivers[TypeVM] = fakeStandbyVM{vm}
			devs := &fakeDeviceLayer{}
			s.cfg.Devices = devs
			req := vmReq("v1", nil)
			req.Devices = web
			if err := launch(t, s, req); err != nil {
				t.Fatal(err)
			}
			if got := devs.take(); !slices.Equal(got, []string{"start v1", "started v1"}) {
				t.Fatalf("launch: device calls %q", got)
			}
			if err := tt.do(t, s); err != nil {
				t.Fatal(err)
			}
			if got := devs.take(); !slices.Equal(got, tt.want) {
				t.Fatalf("device calls %q, want %q", got, tt.want)
			}
		})
	}

	t.Run("a daemon restart", func(t *testing.T) {
		s, vm := newVMTestService(t)
		drivers := map[Type]driver.Driver{TypeContainer: vm.fakeDriver, TypeVM: fakeStandbyVM{vm}}
		s.cfg.Drivers = drivers
		s.cfg.Devices = &fakeDeviceLayer{}
		for _, n := range []string{"standby", "stopped", "running"} {
			req := vmReq(n, nil)
			req.Devices = web
			if err := launch(t, s, req); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Stop(ctx, "standby", StopOptions{Stateful: true}); err != nil {
			t.Fatal(err)
		}
		if err := s.Stop(ctx, "stopped", StopOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		devs := &fakeDeviceLayer{}
		s2 := New(Config{DB: s.cfg.DB, Images: fakeImages{}, Storage: &fakeStorage{}, Drivers: drivers, Events: &fakeEvents{},
			Architecture: "x86_64", HostMemory: 8 << 30, Devices: devs})
		if err := s2.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s2.Recover(ctx); err != nil {
			t.Fatal(err)
		}
		got := devs.take()
		slices.Sort(got)
		if want := []string{"reattach running", "standby standby", "stop stopped"}; !slices.Equal(got, want) {
			t.Fatalf("recovery's device calls %q, want %q", got, want)
		}
	})
}
