package instances

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	wire "github.com/hangar-dev/hangar/api/instances"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/project"
)

func (s *Server) autoStandby(w http.ResponseWriter, r *http.Request, name string, hold bool) {
	if s.AutoStandby == nil {
		writeError(w, errdefs.NotImplemented("auto-standby is not running in this daemon"))
		return
	}
	if hold {
		if err := decode(r, &struct{}{}, true); err != nil {
			writeError(w, err)
			return
		}
	}
	f := s.AutoStandby.Status
	if hold {
		f = s.AutoStandby.Hold
	}
	st, err := f(r.Context(), project.Name(r.Context()), name)
	if err != nil {
		writeError(w, err)
		return
	}
	out := wire.AutoStandbyStatus{
		ActiveInboundConnections: st.ActiveInboundConnections, Configured: st.Configured,
		Eligible: st.Eligible, Enabled: st.Enabled, Reason: wire.AutoStandbyReason(st.Reason),
		Status: wire.AutoStandbyStatusValue(st.Status), Supported: st.Supported, TrackingMode: st.TrackingMode,
		IdleSince: st.IdleSince, LastInboundActivityAt: st.LastInboundActivityAt,
		NextStandbyAt: st.NextStandbyAt, IdleTimeout: strPtr(st.IdleTimeout),
	}
	if st.CountdownRemaining != nil {
		c := st.CountdownRemaining.String()
		out.CountdownRemaining = &c
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) autoStandbyStatus(w http.ResponseWriter, r *http.Request, name string) {
	s.autoStandby(w, r, name, false)
}

func (s *Server) autoStandbyHold(w http.ResponseWriter, r *http.Request, name string) {
	s.autoStandby(w, r, name, true)
}

// snapshotOf renders a core snapshot; its name is its id (snapshot
// names are unique per instance, as the seed's ids are).
func snapshotOf(in instance.Instance, sn instance.Snapshot) wire.Snapshot {
	out := wire.Snapshot{ID: sn.Name, CreatedAt: sn.CreatedAt, Kind: sn.Kind, SourceHypervisor: wire.HypervisorQEMU,
		SourceInstanceID: in.ID, SourceInstanceName: in.Name, Name: strPtr(sn.Name), Tags: map[string]string{}}
	if out.Kind == "" {
		out.Kind = wire.SnapshotKindStopped
		if sn.Stateful {
			out.Kind = wire.SnapshotKindStandby
		}
	}
	maps.Copy(out.Tags, sn.Metadata)
	return out
}

// createSnapshot is POST /instances/{id}/snapshots.
func (s *Server) createSnapshot(w http.ResponseWriter, r *http.Request, name string) {
	var p wire.InstanceSnapshotNewParams
	if err := decode(r, &p, false); err != nil {
		writeError(w, err)
		return
	}
	req := instance.SnapshotRequest{}
	switch p.Kind {
	case wire.SnapshotKindStandby:
		req.Stateful = true
	case wire.SnapshotKindStopped:
	case "":
		writeError(w, fieldErr("kind", "required: Standby or Stopped"))
		return
	default:
		writeError(w, fieldErr("kind", "%q: want Standby or Stopped", p.Kind))
		return
	}
	if p.Name != nil {
		if err := checkName("name", *p.Name); err != nil {
			writeError(w, err)
			return
		}
		req.Name = *p.Name
	}
	if p.Compression != nil {
		v, err := compressionValue("compression", p.Compression)
		if err != nil {
			writeError(w, err)
			return
		}
		req.Compression = v
	}
	if err := checkTags("tags", p.Tags); err != nil {
		writeError(w, err)
		return
	}
	req.Metadata = p.Tags
	// A snapshot taken through this API is kept until deleted: max_age
	// (snapshots.expiry) is the schedule's retention, not a manual
	// snapshot's.
	req.ExpiresAt = &time.Time{}
	ctx := context.WithoutCancel(r.Context())
	sn, err := s.Core.CreateSnapshot(ctx, name, req)
	if err != nil {
		writeError(w, err)
		return
	}
	in, err := s.Core.Get(ctx, name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, snapshotOf(in, sn))
}

// restoreSnapshot is POST /instances/{id}/snapshots/{snapshotId}/restore.
func (s *Server) restoreSnapshot(w http.ResponseWriter, r *http.Request, name string) {
	var p wire.InstanceSnapshotRestoreParams
	if err := decode(r, &p, true); err != nil {
		writeError(w, err)
		return
	}
	if err := checkHypervisor("target_hypervisor", p.TargetHypervisor); err != nil {
		writeError(w, err)
		return
	}
	target, err := parseTargetState("target_state", p.TargetState)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	snapID := r.PathValue("snapshotId")
	snaps, err := s.Core.Snapshots(ctx, name)
	if err != nil {
		writeError(w, err)
		return
	}
	var sn *instance.Snapshot
	for i := range snaps {
		if snaps[i].Name == snapID {
			sn = &snaps[i]
		}
	}
	if sn == nil {
		writeError(w, errdefs.NotFound("snapshot %q of instance %q not found", snapID, name))
		return
	}
	stateful := sn.Stateful || sn.Kind == wire.SnapshotKindStandby
	if target == "" {
		target = wire.StateStopped
		if stateful {
			target = wire.StateRunning
		}
	}
	if err := s.Core.RestoreSnapshot(ctx, name, snapID, stateful); err != nil {
		writeError(w, err)
		return
	}
	in, err := s.Core.Get(ctx, name)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := s.bringTo(ctx, name, in.Status == instance.StatusRunning, target); err != nil {
		writeError(w, err)
		return
	}
	s.answer(w, ctx, name, http.StatusOK)
}

func scheduleOf(in instance.Instance, sch instance.SnapshotSchedule) wire.SnapshotSchedule {
	out := wire.SnapshotSchedule{
		CreatedAt: sch.CreatedAt, InstanceID: in.ID, Interval: sch.Interval.String(), NextRunAt: sch.NextRunAt,
		Retention: wire.SnapshotScheduleRetention{MaxCount: int64(sch.MaxCount)}, UpdatedAt: sch.UpdatedAt,
		LastError: strPtr(sch.LastError), LastRunAt: timePtr(sch.LastRunAt), LastSnapshotID: strPtr(sch.LastSnapshot),
		Metadata: map[string]string{}, NamePrefix: strPtr(sch.NamePrefix),
	}
	if sch.MaxAge > 0 {
		out.Retention.MaxAge = sch.MaxAge.String()
	}
	maps.Copy(out.Metadata, sch.Metadata)
	return out
}

func (s *Server) getSchedule(w http.ResponseWriter, r *http.Request, name string) {
	sch, err := s.Core.SnapshotSchedule(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	in, err := s.Core.Get(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, scheduleOf(in, sch))
}

// setSchedule is PUT /instances/{id}/snapshot-schedule.
func (s *Server) setSchedule(w http.ResponseWriter, r *http.Request, name string) {
	var p wire.SetSnapshotScheduleRequest
	if err := decode(r, &p, false); err != nil {
		writeError(w, err)
		return
	}
	sch, err := scheduleRequest(p)
	if err != nil {
		writeError(w, err)
		return
	}
	out, err := s.Core.SetSnapshotSchedule(r.Context(), name, sch)
	if err != nil {
		writeError(w, err)
		return
	}
	in, err := s.Core.Get(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, scheduleOf(in, out))
}

func scheduleRequest(p wire.SetSnapshotScheduleRequest) (instance.SnapshotSchedule, error) {
	var sch instance.SnapshotSchedule
	if p.Interval == "" {
		return sch, fieldErr("interval", "required (a Go duration, at least 1m)")
	}
	iv, err := parseDuration("interval", p.Interval, time.Minute)
	if err != nil {
		return sch, err
	}
	sch.Interval = iv
	if p.Retention == nil || (p.Retention.MaxAge == nil && p.Retention.MaxCount == nil) {
		return sch, fieldErr("retention", "required: max_count, max_age or both")
	}
	if p.Retention.MaxCount != nil {
		if *p.Retention.MaxCount < 0 {
			return sch, fieldErr("retention.max_count", "%d: at least 0", *p.Retention.MaxCount)
		}
		sch.MaxCount = int(*p.Retention.MaxCount)
	}
	if p.Retention.MaxAge != nil {
		if sch.MaxAge, err = parseDuration("retention.max_age", *p.Retention.MaxAge, 0); err != nil {
			return sch, err
		}
	}
	if p.NamePrefix != nil {
		np := *p.NamePrefix
		if len(np) > 47 {
			return sch, fieldErr("name_prefix", "%d characters: at most 47", len(np))
		}
		if np != "" && !nameRE.MatchString(strings.TrimSuffix(np, "-")) {
			return sch, fieldErr("name_prefix", "%q: lowercase letters, digits and dashes", np)
		}
		sch.NamePrefix = np
	}
	if err := checkTags("metadata", p.Metadata); err != nil {
		return sch, err
	}
	sch.Metadata = p.Metadata
	return sch, nil
}

func (s *Server) deleteSchedule(w http.ResponseWriter, r *http.Request, name string) {
	if err := s.Core.DeleteSnapshotSchedule(r.Context(), name); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// attachVolume is POST /instances/{id}/volumes/{volumeId}: a disk device
// volume-ID of the project's custom volume ID.
func (s *Server) attachVolume(w http.ResponseWriter, r *http.Request, name string) {
	var p wire.InstanceVolumeAttachParams
	if err := decode(r, &p, false); err != nil {
		writeError(w, err)
		return
	}
	vol := r.PathValue("volumeId")
	devs := instance.Devices{}
	if err := volumeDevices([]wire.VolumeMountParams{{VolumeID: vol, MountPath: p.MountPath, Readonly: p.Readonly}}, devs); err != nil {
		writeError(w, err)
		return
	}
	ctx := context.WithoutCancel(r.Context())
	if err := s.fillPools(ctx, devs); err != nil {
		writeError(w, err)
		return
	}
	dev := volumeDeviceName(vol)
	err := s.Core.Patch(ctx, name, instance.Patch{Devices: devs}, func(cur instance.Instance) error {
		for _, m := range volumesOf(cur.ExpandedDevices) {
			if m.VolumeID == vol {
				return errdefs.Conflict("volume %q is attached already", vol)
			}
			if m.MountPath == p.MountPath {
				return errdefs.Conflict("%s is where volume %q is mounted", p.MountPath, m.VolumeID)
			}
		}
		if cur.Devices[dev] != nil {
			return errdefs.Conflict("device %q exists", dev)
		}
		return nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	s.answer(w, ctx, name, http.StatusOK)
}

// detachVolume is DELETE /instances/{id}/volumes/{volumeId}: the
// instance's own disk device of that volume goes (an update of its
// devices without it, checked against the devices it was read with).
func (s *Server) detachVolume(w http.ResponseWriter, r *http.Request, name string) {
	vol := r.PathValue("volumeId")
	ctx := context.WithoutCancel(r.Context())
	in, err := s.Core.Get(ctx, name)
	if err != nil {
		writeError(w, err)
		return
	}
	var dev string
	for n, d := range in.Devices {
		if d["type"] == "disk" && d["source"] == vol && d["pool"] != "" {
			dev = n
		}
	}
	if dev == "" {
		writeError(w, errdefs.NotFound("volume %q is not attached to instance %q", vol, name))
		return
	}
	devs := instance.Devices{}
	for n, d := range in.Devices {
		if n != dev {
			devs[n] = d
		}
	}
	put := instance.Put{Config: in.Config, Devices: devs, Ephemeral: in.Ephemeral, Profiles: in.Profiles,
		Stateful: in.Stateful, Description: in.Description}
	err = s.Core.Update(ctx, name, put, func(cur instance.Instance) error {
		if fmt.Sprint(cur.Devices) != fmt.Sprint(in.Devices) {
			return errdefs.Conflict("instance %q's devices changed meanwhile: try again", name)
		}
		return nil
	})
	if err != nil {
		writeError(w, err)
		return
	}
	s.answer(w, ctx, name, http.StatusOK)
}
