package daemon

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/event"
	"github.com/hangar-dev/hangar/internal/image"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/project"
	"github.com/hangar-dev/hangar/internal/store"
)

// lifecycle lets services publish lifecycle events without seeing the hub.
type lifecycle struct {
	hub *event.Hub
	// imageDeleted hears of an image leaving the catalogue (the pools
	// drop their copies); nil until the storage manager exists.
	imageDeleted func(fp string)
}

func (l *lifecycle) Lifecycle(ctx context.Context, action string, e event.Entity, meta map[string]any) {
	if e.Project == "" {
		e.Project = project.Name(ctx)
	}
	var req *event.Requestor
	if id := auth.From(ctx); id.Kind != auth.KindInternal {
		user, proto := id.Requestor()
		req = &event.Requestor{Username: user, Protocol: proto, Address: id.Address}
	}
	l.hub.LifecycleBy(req, action, e, meta)
	if action == "image-deleted" && l.imageDeleted != nil {
		l.imageDeleted(e.Name)
	}
}

// eventSequence keeps the event hub's sequence in the store's counters.
type eventSequence struct{ st *store.Store }

const eventSequenceCounter = "event_sequence"

func (e eventSequence) LoadSequence(ctx context.Context) (uint64, error) {
	return e.st.Counter(ctx, eventSequenceCounter)
}

func (e eventSequence) SaveSequence(ctx context.Context, v uint64) error {
	return e.st.SetCounter(ctx, eventSequenceCounter, v)
}

// SaveEvents keeps events as JSON of the hub's own type.
func (e eventSequence) SaveEvents(ctx context.Context, evs []event.Event) error {
	out := make([]store.StoredEvent, len(evs))
	for i, ev := range evs {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event %d: %w", ev.Sequence, err)
		}
		out[i] = store.StoredEvent{Sequence: ev.Sequence, Data: b}
	}
	return e.st.SaveEvents(ctx, out)
}

func (e eventSequence) TakeEvents(ctx context.Context) ([]event.Event, error) {
	kept, err := e.st.TakeEvents(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]event.Event, 0, len(kept))
	for _, k := range kept {
		var ev event.Event
		if err := json.Unmarshal(k.Data, &ev); err != nil || ev.Sequence != k.Sequence {
			// One bad record voids the replay (the hub wants no holes);
			// sequences still continue from the counter.
			return nil, nil
		}
		out = append(out, ev)
	}
	return out, nil
}

// instanceImages gives the instance core the image store, in the core's
// terms. Embedding keeps the store's other methods (Resolve, MarkUsed).
type instanceImages struct{ *image.Service }

func (i instanceImages) Image(ctx context.Context, fp string) (instance.Image, error) {
	img, err := i.Get(ctx, fp)
	if err != nil {
		return instance.Image{}, err
	}
	return instance.Image{
		Fingerprint:  img.Fingerprint,
		Type:         instance.Type(img.Type),
		Architecture: img.Architecture,
		Properties:   img.Properties,
	}, nil
}

// imageDB adapts the store to the image service's persistence interface;
// the two record types are the same fields, kept apart so the image
// package does not import the store.
type imageDB struct{ st *store.Store }

func toImageRecord(i store.Image) image.Record   { return image.Record(i) }
func fromImageRecord(r image.Record) store.Image { return store.Image(r) }
func toAlias(a store.Alias) image.AliasRecord    { return image.AliasRecord(a) }
func fromAlias(a image.AliasRecord) store.Alias  { return store.Alias(a) }

func (d imageDB) CreateImage(ctx context.Context, r image.Record, project string) error {
	return d.st.CreateImage(ctx, fromImageRecord(r), project)
}

func (d imageDB) AddImageProject(ctx context.Context, fp, project string) error {
	return d.st.AddImageProject(ctx, fp, project)
}

func (d imageDB) RemoveImageProject(ctx context.Context, fp, project string) error {
	return d.st.RemoveImageProject(ctx, fp, project)
}

func (d imageDB) GetImage(ctx context.Context, project, fp string) (image.Record, error) {
	i, err := d.st.GetImage(ctx, project, fp)
	return toImageRecord(i), err
}

func (d imageDB) ListImages(ctx context.Context, project string) ([]image.Record, error) {
	list, err := d.st.ListImages(ctx, project)
	out := make([]image.Record, len(list))
	for i, r := range list {
		out[i] = toImageRecord(r)
	}
	return out, err
}

func (d imageDB) UpdateImage(ctx context.Context, r image.Record) error {
	return d.st.UpdateImage(ctx, fromImageRecord(r))
}

func (d imageDB) DeleteImage(ctx context.Context, fp string) error { return d.st.DeleteImage(ctx, fp) }

func (d imageDB) CreateAlias(ctx context.Context, a image.AliasRecord) error {
	return d.st.CreateAlias(ctx, fromAlias(a))
}

func (d imageDB) GetAlias(ctx context.Context, project, name string) (image.AliasRecord, error) {
	a, err := d.st.GetAlias(ctx, project, name)
	return toAlias(a), err
}

func (d imageDB) ListAliases(ctx context.Context, project string) ([]image.AliasRecord, error) {
	list, err := d.st.ListAliases(ctx, project)
	out := make([]image.AliasRecord, len(list))
	for i, a := range list {
		out[i] = toAlias(a)
	}
	return out, err
}

func (d imageDB) UpdateAlias(ctx context.Context, a image.AliasRecord) error {
	return d.st.UpdateAlias(ctx, fromAlias(a))
}

func (d imageDB) RenameAlias(ctx context.Context, project, old, new string) error {
	return d.st.RenameAlias(ctx, project, old, new)
}

func (d imageDB) DeleteAlias(ctx context.Context, project, name string) error {
	return d.st.DeleteAlias(ctx, project, name)
}

// projectReader lets the core read projects.
type projectReader struct{ projects *project.Service }

func (r projectReader) Project(ctx context.Context, name string) (project.Project, error) {
	return r.projects.Get(ctx, name)
}
