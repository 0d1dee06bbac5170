package client

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/hangar-dev/hangar/api"
)

// GetStoragePoolNames returns the names of all storage pools.
func (c *Client) GetStoragePoolNames(ctx context.Context) ([]string, error) {
	var urls []string
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/storage-pools", nil, "", &urls); err != nil {
		return nil, fmt.Errorf("list storage pools: %w", err)
	}
	return namesFromURLs(urls, "/1.0/storage-pools/"), nil
}

// GetStoragePools returns all storage pools (recursion=1).
func (c *Client) GetStoragePools(ctx context.Context) ([]api.StoragePool, error) {
	pools := []api.StoragePool{}
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/storage-pools?recursion=1", nil, "", &pools); err != nil {
		return nil, fmt.Errorf("list storage pools: %w", err)
	}
	return pools, nil
}

// GetStoragePool returns one storage pool and its ETag.
func (c *Client) GetStoragePool(ctx context.Context, name string) (*api.StoragePool, string, error) {
	var p api.StoragePool
	etag, err := c.queryStruct(ctx, http.MethodGet, poolPath(name), nil, "", &p)
	if err != nil {
		return nil, "", err
	}
	return &p, etag, nil
}

// CreateStoragePool creates a storage pool.
func (c *Client) CreateStoragePool(ctx context.Context, req api.StoragePoolsPost) error {
	_, err := c.queryStruct(ctx, http.MethodPost, "/1.0/storage-pools", req, "", nil)
	return err
}

// UpdateStoragePool replaces a pool's description and config; a non-empty
// etag makes the daemon refuse (412) if the pool changed since it was
// read.
func (c *Client) UpdateStoragePool(ctx context.Context, name string, put api.StoragePoolPut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, poolPath(name), put, etag, nil)
	return err
}

// PatchStoragePool merges patch (a map holding "config" keys, an empty
// value removing one, and maybe "description") into a pool.
func (c *Client) PatchStoragePool(ctx context.Context, name string, patch any, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPatch, poolPath(name), patch, etag, nil)
	return err
}

// DeleteStoragePool deletes a pool nothing uses.
func (c *Client) DeleteStoragePool(ctx context.Context, name string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, poolPath(name), nil, "", nil)
	return err
}

// GetStoragePoolResources returns a pool's space and inodes.
func (c *Client) GetStoragePoolResources(ctx context.Context, name string) (*api.StoragePoolResources, error) {
	var res api.StoragePoolResources
	if _, err := c.queryStruct(ctx, http.MethodGet, poolPath(name)+"/resources", nil, "", &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// GetStoragePoolVolumes returns a pool's volumes of every type
// (recursion=1).
func (c *Client) GetStoragePoolVolumes(ctx context.Context, pool string) ([]api.StorageVolume, error) {
	vols := []api.StorageVolume{}
	if _, err := c.queryStruct(ctx, http.MethodGet, poolPath(pool)+"/volumes?recursion=1", nil, "", &vols); err != nil {
		return nil, fmt.Errorf("list volumes of %s: %w", pool, err)
	}
	return vols, nil
}

// GetStoragePoolVolume returns one volume and its ETag; volType is
// "custom", "container", "virtual-machine" or "image".
func (c *Client) GetStoragePoolVolume(ctx context.Context, pool, volType, name string) (*api.StorageVolume, string, error) {
	var v api.StorageVolume
	etag, err := c.queryStruct(ctx, http.MethodGet, volumePath(pool, volType, name), nil, "", &v)
	if err != nil {
		return nil, "", err
	}
	return &v, etag, nil
}

// CreateStoragePoolVolume creates a custom volume (req.Type "custom" or
// empty).
func (c *Client) CreateStoragePoolVolume(ctx context.Context, pool string, req api.StorageVolumesPost) error {
	if req.Type == "" {
		req.Type = api.StorageVolumeTypeCustom
	}
	_, err := c.queryStruct(ctx, http.MethodPost, poolPath(pool)+"/volumes/"+escape(req.Type), req, "", nil)
	return err
}

// CreateStoragePoolVolumeFromISO uploads an ISO 9660 or UDF image read
// from r and makes it the custom ISO volume name on pool (LXD's
// custom_volume_iso: the image as the body, X-LXD-name and X-LXD-type:
// iso). The body is streamed, never buffered; an *os.File's size is sent
// as the Content-Length. What is not an ISO image is refused (400) and
// leaves nothing.
func (c *Client) CreateStoragePoolVolumeFromISO(ctx context.Context, pool, name string, r io.Reader) (*Operation, error) {
	header := http.Header{}
	header.Set("Content-Type", "application/octet-stream")
	header.Set("X-LXD-name", name)
	header.Set("X-LXD-type", api.StorageContentTypeISO)
	resp, _, err := c.rawQuery(ctx, http.MethodPost, poolPath(pool)+"/volumes/"+api.StorageVolumeTypeCustom, r, readerSize(r), header)
	if err != nil {
		return nil, fmt.Errorf("import ISO volume %s: %w", name, err)
	}
	return c.responseOperation(resp)
}

// UpdateStoragePoolVolume replaces a volume's description and config;
// etag as in UpdateStoragePool.
func (c *Client) UpdateStoragePoolVolume(ctx context.Context, pool, volType, name string, put api.StorageVolumePut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, volumePath(pool, volType, name), put, etag, nil)
	return err
}

// PatchStoragePoolVolume merges patch (a map holding "config" keys, an
// empty value removing one, and maybe "description") into a volume.
func (c *Client) PatchStoragePoolVolume(ctx context.Context, pool, volType, name string, patch any, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPatch, volumePath(pool, volType, name), patch, etag, nil)
	return err
}

// RenameStoragePoolVolume renames a custom volume within its pool.
func (c *Client) RenameStoragePoolVolume(ctx context.Context, pool, volType, name, newName string) error {
	_, err := c.queryStruct(ctx, http.MethodPost, volumePath(pool, volType, name), api.StorageVolumePost{Name: newName}, "", nil)
	return err
}

// DeleteStoragePoolVolume deletes a volume nothing uses.
func (c *Client) DeleteStoragePoolVolume(ctx context.Context, pool, volType, name string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, volumePath(pool, volType, name), nil, "", nil)
	return err
}

// GetStoragePoolVolumeState returns a volume's usage.
func (c *Client) GetStoragePoolVolumeState(ctx context.Context, pool, volType, name string) (*api.StorageVolumeState, error) {
	var st api.StorageVolumeState
	if _, err := c.queryStruct(ctx, http.MethodGet, volumePath(pool, volType, name)+"/state", nil, "", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

func poolPath(name string) string { return "/1.0/storage-pools/" + escape(name) }

func volumePath(pool, volType, name string) string {
	return poolPath(pool) + "/volumes/" + escape(volType) + "/" + escape(name)
}
