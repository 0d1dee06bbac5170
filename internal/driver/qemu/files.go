package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/hangar-dev/hangar/internal/driver"
	"github.com/hangar-dev/hangar/internal/vmagent"
)

var _ driver.GuestFiles = (*Driver)(nil)

func fileError(f vmagent.Frame) error {
	var e vmagent.Error
	if err := json.Unmarshal(f.Payload, &e); err != nil {
		return fmt.Errorf("guest agent: bad error reply: %w", err)
	}
	return &driver.GuestFileError{Message: e.Message, NotFound: e.NotFound, Exists: e.Exists, Disabled: e.Disabled}
}

// GuestReadFile reads a file, directory or symlink through the agent.
func (d *Driver) GuestReadFile(ctx context.Context, id, path string, content io.Writer) (driver.GuestFile, error) {
	ac, err := d.readyAgent(ctx, id)
	if err != nil {
		return driver.GuestFile{}, err
	}
	ch, q, err := ac.open()
	if err != nil {
		return driver.GuestFile{}, err
	}
	defer ac.release(ch)
	if err := ac.send(vmagent.MsgFileGet, ch, vmagent.FileGet{Path: path}); err != nil {
		return driver.GuestFile{}, err
	}
	f, err := q.pop(ctx)
	if err != nil {
		return driver.GuestFile{}, err
	}
	if f.Type == vmagent.MsgError {
		return driver.GuestFile{}, fileError(f)
	}
	if f.Type != vmagent.MsgFileInfo {
		return driver.GuestFile{}, fmt.Errorf("guest agent: unexpected reply %d to a file read", f.Type)
	}
	var info vmagent.FileInfo
	if err := json.Unmarshal(f.Payload, &info); err != nil {
		return driver.GuestFile{}, fmt.Errorf("guest agent: %w", err)
	}
	for {
		f, err := q.pop(ctx)
		if err != nil {
			return driver.GuestFile{}, err
		}
		if f.Type == vmagent.MsgError {
			return driver.GuestFile{}, fileError(f)
		}
		if len(f.Payload) == 0 {
			break
		}
		if _, err := content.Write(f.Payload); err != nil {
			return driver.GuestFile{}, err
		}
	}
	return driver.GuestFile{
		Type: info.Type, UID: info.UID, GID: info.GID, Mode: info.Mode, Size: info.Size,
		ModTime: time.Unix(0, info.ModTime), Entries: info.Entries, Target: info.Target,
	}, nil
}

// GuestWriteFile writes a file, directory or symlink through the agent.
func (d *Driver) GuestWriteFile(ctx context.Context, id, path string, w driver.GuestFileWrite) error {
	ac, err := d.readyAgent(ctx, id)
	if err != nil {
		return err
	}
	ch, q, err := ac.open()
	if err != nil {
		return err
	}
	defer ac.release(ch)
	put := vmagent.FilePut{Path: path, Type: w.Type, UID: w.UID, GID: w.GID, Mode: w.Mode, Append: w.Append}
	if err := ac.send(vmagent.MsgFilePut, ch, put); err != nil {
		return err
	}
	if w.Content != nil && w.Type != vmagent.TypeDirectory {
		buf := make([]byte, vmagent.DataChunk)
		for {
			n, rerr := w.Content.Read(buf)
			if n > 0 {
				if err := ac.send(vmagent.MsgData, ch, append([]byte(nil), buf[:n]...)); err != nil {
					return err
				}
			}
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return fmt.Errorf("read upload: %w", rerr)
			}
		}
	}
	if err := ac.send(vmagent.MsgData, ch, []byte{}); err != nil {
		return err
	}
	f, err := q.pop(ctx)
	if err != nil {
		return err
	}
	if f.Type == vmagent.MsgError {
		return fileError(f)
	}
	return nil
}

// GuestDeleteFile removes a file through the agent.
func (d *Driver) GuestDeleteFile(ctx context.Context, id, path string) error {
	ac, err := d.readyAgent(ctx, id)
	if err != nil {
		return err
	}
	ch, q, err := ac.open()
	if err != nil {
		return err
	}
	defer ac.release(ch)
	if err := ac.send(vmagent.MsgFileDelete, ch, vmagent.FileDelete{Path: path}); err != nil {
		return err
	}
	f, err := q.pop(ctx)
	if err != nil {
		return err
	}
	if f.Type == vmagent.MsgError {
		return fileError(f)
	}
	return nil
}
