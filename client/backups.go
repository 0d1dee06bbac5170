package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/hangar-dev/hangar/api"
)

func backupPath(instance, name string) string {
	return instancePath(instance) + "/backups/" + escape(name)
}

// GetInstanceBackups returns an instance's backups, oldest first.
func (c *Client) GetInstanceBackups(ctx context.Context, instance string) ([]api.InstanceBackup, error) {
	var out []api.InstanceBackup
	_, err := c.queryStruct(ctx, http.MethodGet, instancePath(instance)+"/backups?recursion=1", nil, "", &out)
	return out, err
}

// GetInstanceBackup returns one backup of an instance.
func (c *Client) GetInstanceBackup(ctx context.Context, instance, name string) (*api.InstanceBackup, error) {
	var out api.InstanceBackup
	if _, err := c.queryStruct(ctx, http.MethodGet, backupPath(instance, name), nil, "", &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateInstanceBackup starts a backup of an instance.
func (c *Client) CreateInstanceBackup(ctx context.Context, instance string, req api.InstanceBackupsPost) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, instancePath(instance)+"/backups", req, "")
}

// RenameInstanceBackup renames a backup.
func (c *Client) RenameInstanceBackup(ctx context.Context, instance, name, newName string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodPost, backupPath(instance, name), api.InstanceBackupPost{Name: newName}, "")
}

// DeleteInstanceBackup deletes a backup.
func (c *Client) DeleteInstanceBackup(ctx context.Context, instance, name string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodDelete, backupPath(instance, name), nil, "")
}

// GetInstanceBackupFile downloads a backup's tarball into w and returns
// its size.
func (c *Client) GetInstanceBackupFile(ctx context.Context, instance, name string, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, backupPath(instance, name)+"/export", nil, -1, nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		_, _, err := parseResponse(resp, nil)
		return 0, err
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("download backup %s/%s: %w", instance, name, err)
	}
	return n, nil
}

// InstanceBackupArgs names what an import overrides: the instance's name
// and the pool of its root ("" keeps the backup's).
type InstanceBackupArgs struct {
	Name     string
	PoolName string
}

// CreateInstanceFromBackup uploads a backup tarball and makes an
// instance of it (LXD's X-LXD-name and X-LXD-pool headers).
func (c *Client) CreateInstanceFromBackup(ctx context.Context, r io.Reader, args InstanceBackupArgs) (*Operation, error) {
	header := http.Header{}
	header.Set("Content-Type", "application/octet-stream")
	if args.Name != "" {
		header.Set("X-LXD-name", args.Name)
	}
	if args.PoolName != "" {
		header.Set("X-LXD-pool", args.PoolName)
	}
	resp, _, err := c.rawQuery(ctx, http.MethodPost, "/1.0/instances", r, readerSize(r), header)
	if err != nil {
		return nil, fmt.Errorf("import backup: %w", err)
	}
	return c.responseOperation(resp)
}
