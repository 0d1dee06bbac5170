package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/hangar-dev/hangar/api"
)

// AliasHeader is hangar's request header naming the alias to create for an
// image uploaded with POST /1.0/images. LXD has no such header; hangard reads
// it so that import and alias creation are one request and cannot half-fail.
const AliasHeader = "X-Hangar-Alias"

// ImageImportArgs describes an image uploaded by CreateImageFromFile.
type ImageImportArgs struct {
	// Alias, when not empty, is created for the image (X-Hangar-Alias).
	Alias string
	// OS, Release, Architecture and Description become the image's
	// properties os, release, architecture and description
	// (X-LXD-properties); empty ones are not sent.
	OS           string
	Release      string
	Architecture string
	Description  string
	// Filename is the upload's file name (X-LXD-filename).
	Filename string
	// Public makes the image visible to untrusted clients (X-LXD-public).
	Public bool
	// Fingerprint, when set, is the fingerprint the upload must have
	// (X-LXD-fingerprint); the daemon refuses it otherwise.
	Fingerprint string
}

// GetImageFingerprints returns the fingerprints of all images.
func (c *Client) GetImageFingerprints(ctx context.Context) ([]string, error) {
	var urls []string
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/images", nil, "", &urls); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return namesFromURLs(urls, "/1.0/images/"), nil
}

// GetImages returns all images (recursion=1).
func (c *Client) GetImages(ctx context.Context) ([]api.Image, error) {
	images := []api.Image{}
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/images?recursion=1", nil, "", &images); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return images, nil
}

// GetImage returns one image and its ETag. fingerprint may be a unique
// prefix if the daemon resolves prefixes, as LXD does.
func (c *Client) GetImage(ctx context.Context, fingerprint string) (*api.Image, string, error) {
	var img api.Image
	etag, err := c.queryStruct(ctx, http.MethodGet, imagePath(fingerprint), nil, "", &img)
	if err != nil {
		return nil, "", err
	}
	return &img, etag, nil
}

// UpdateImage replaces an image's properties; etag as in UpdateInstance.
func (c *Client) UpdateImage(ctx context.Context, fingerprint string, put api.ImagePut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, imagePath(fingerprint), put, etag, nil)
	return err
}

// DeleteImage deletes an image.
func (c *Client) DeleteImage(ctx context.Context, fingerprint string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodDelete, imagePath(fingerprint), nil, "")
}

// CreateImageFromFile uploads an image tarball read from r. The body is
// streamed, never buffered; when r is an *os.File its size is sent as the
// Content-Length. When the operation succeeds its metadata holds the new
// image's "fingerprint" (see ImportedFingerprint).
func (c *Client) CreateImageFromFile(ctx context.Context, r io.Reader, args ImageImportArgs) (*Operation, error) {
	header := args.header()
	header.Set("Content-Type", "application/octet-stream")
	resp, _, err := c.rawQuery(ctx, http.MethodPost, "/1.0/images", r, readerSize(r), header)
	if err != nil {
		return nil, fmt.Errorf("upload image: %w", err)
	}
	return c.responseOperation(resp)
}

// header is the upload's LXD headers (and hangar's alias header).
func (args ImageImportArgs) header() http.Header {
	header := http.Header{}
	if args.Filename != "" {
		header.Set("X-LXD-filename", args.Filename)
	}
	if args.Public {
		header.Set("X-LXD-public", "1")
	} else {
		header.Set("X-LXD-public", "0")
	}
	props := url.Values{}
	for k, v := range map[string]string{
		"os":           args.OS,
		"release":      args.Release,
		"architecture": args.Architecture,
		"description":  args.Description,
	} {
		if v != "" {
			props.Set(k, v)
		}
	}
	if len(props) > 0 {
		header.Set("X-LXD-properties", props.Encode())
	}
	if args.Alias != "" {
		header.Set(AliasHeader, args.Alias)
	}
	if args.Fingerprint != "" {
		header.Set("X-LXD-fingerprint", args.Fingerprint)
	}
	return header
}

// ImportedFingerprint returns the fingerprint an image upload operation
// reports in its metadata, or "".
func ImportedFingerprint(op api.Operation) string {
	fp, _ := op.Metadata["fingerprint"].(string)
	return fp
}

// readerSize returns how many bytes are left in r when that is cheap to know,
// else -1.
func readerSize(r io.Reader) int64 {
	f, ok := r.(*os.File)
	if !ok {
		return -1
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return -1
	}
	off, err := f.Seek(0, io.SeekCurrent)
	if err != nil || off > st.Size() {
		return -1
	}
	return st.Size() - off
}

// GetImageAliasNames returns the names of all image aliases.
func (c *Client) GetImageAliasNames(ctx context.Context) ([]string, error) {
	var urls []string
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/images/aliases", nil, "", &urls); err != nil {
		return nil, fmt.Errorf("list image aliases: %w", err)
	}
	return namesFromURLs(urls, "/1.0/images/aliases/"), nil
}

// GetImageAliases returns all image aliases (recursion=1).
func (c *Client) GetImageAliases(ctx context.Context) ([]api.ImageAliasesEntry, error) {
	aliases := []api.ImageAliasesEntry{}
	if _, err := c.queryStruct(ctx, http.MethodGet, "/1.0/images/aliases?recursion=1", nil, "", &aliases); err != nil {
		return nil, fmt.Errorf("list image aliases: %w", err)
	}
	return aliases, nil
}

// GetImageAlias returns one alias and its ETag.
func (c *Client) GetImageAlias(ctx context.Context, name string) (*api.ImageAliasesEntry, string, error) {
	var a api.ImageAliasesEntry
	etag, err := c.queryStruct(ctx, http.MethodGet, aliasPath(name), nil, "", &a)
	if err != nil {
		return nil, "", err
	}
	return &a, etag, nil
}

// CreateImageAlias creates an alias.
func (c *Client) CreateImageAlias(ctx context.Context, req api.ImageAliasesPost) error {
	_, err := c.queryStruct(ctx, http.MethodPost, "/1.0/images/aliases", req, "", nil)
	return err
}

// UpdateImageAlias replaces an alias's target and description.
func (c *Client) UpdateImageAlias(ctx context.Context, name string, put api.ImageAliasesEntryPut, etag string) error {
	_, err := c.queryStruct(ctx, http.MethodPut, aliasPath(name), put, etag, nil)
	return err
}

// RenameImageAlias renames an alias.
func (c *Client) RenameImageAlias(ctx context.Context, name, newName string) error {
	_, err := c.queryStruct(ctx, http.MethodPost, aliasPath(name), api.ImageAliasesEntryPost{Name: newName}, "", nil)
	return err
}

// DeleteImageAlias deletes an alias (not the image).
func (c *Client) DeleteImageAlias(ctx context.Context, name string) error {
	_, err := c.queryStruct(ctx, http.MethodDelete, aliasPath(name), nil, "", nil)
	return err
}

func imagePath(fingerprint string) string { return "/1.0/images/" + escape(fingerprint) }

func aliasPath(name string) string { return "/1.0/images/aliases/" + escape(name) }

// ImagePublishArgs describes an image made from an instance by
// CreateImageFromInstance.
type ImagePublishArgs struct {
	// Aliases are created for the image; one that exists refuses the
	// publish at once.
	Aliases []string
	// Compression is gzip, xz, zstd, bzip2 or none; "" is the server's
	// images.compression_algorithm (gzip unless set).
	Compression string
	Public      bool
	// ExpiresAt, when not zero, is when the image expires.
	ExpiresAt time.Time
	// Properties are the image's (description, os, release, ...); nil
	// keeps those of the image the instance was made from.
	Properties map[string]string
}

// CreateImageFromInstance publishes an instance, or one of its snapshots
// ("c1/snap0"), as an image (POST /1.0/images with an instance or
// snapshot source, as `lxc publish` sends it). The returned operation's
// metadata carries progress and, at the end, the image's "fingerprint"
// (ImportedFingerprint).
func (c *Client) CreateImageFromInstance(ctx context.Context, name string, args ImagePublishArgs) (*Operation, error) {
	req := api.ImagesPost{
		ImagePut:             api.ImagePut{Public: args.Public, ExpiresAt: args.ExpiresAt, Properties: args.Properties},
		Source:               &api.ImagesPostSource{Type: "instance", Name: name},
		CompressionAlgorithm: args.Compression,
	}
	if strings.Contains(name, "/") {
		req.Source.Type = "snapshot"
	}
	for _, a := range args.Aliases {
		req.Aliases = append(req.Aliases, api.ImageAlias{Name: a})
	}
	return c.postWithAuth(ctx, "/1.0/images", req, RegistryAuth{})
}
