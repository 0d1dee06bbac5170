package drivers

import (
	"context"
	"errors"
)

func (d *dirDriver) SnapshotVolume(ctx context.Context, snap, vol Volume) error {
	return errors.New("TMPSTUB")
}
func (d *dirDriver) RestoreVolume(ctx context.Context, vol, snap Volume) error {
	return errors.New("TMPSTUB")
}
func (d *btrfsDriver) SnapshotVolume(ctx context.Context, snap, vol Volume) error {
	return errors.New("TMPSTUB")
}
func (d *btrfsDriver) RestoreVolume(ctx context.Context, vol, snap Volume) error {
	return errors.New("TMPSTUB")
}
