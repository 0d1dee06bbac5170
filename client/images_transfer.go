package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strings"
)

// CreateImageFromFiles uploads a split LXD image: its metadata tarball
// (metadata.yaml, templates/) and its root filesystem (a tarball or a
// squashfs image), as multipart/form-data the way lxc sends them. The
// fingerprint is the SHA-256 of the two, metadata first. Both are streamed;
// metaName and rootfsName are the files' names (sent as the parts' file
// names).
func (c *Client) CreateImageFromFiles(ctx context.Context, meta io.Reader, metaName string, rootfs io.Reader, rootfsName string, args ImageImportArgs) (*Operation, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		err := writeParts(mw, []part{{"metadata", metaName, meta}, {"rootfs", rootfsName, rootfs}})
		pw.CloseWithError(err)
	}()
	defer pr.Close() // Stops the writer if the request ends early.
	header := args.header()
	header.Set("Content-Type", mw.FormDataContentType())
	resp, _, err := c.rawQuery(ctx, http.MethodPost, "/1.0/images", pr, -1, header)
	if err != nil {
		return nil, fmt.Errorf("upload image: %w", err)
	}
	return c.responseOperation(resp)
}

type part struct {
	field, filename string
	r               io.Reader
}

func writeParts(mw *multipart.Writer, parts []part) error {
	for _, p := range parts {
		w, err := mw.CreateFormFile(p.field, p.filename)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, p.r); err != nil {
			return fmt.Errorf("read %s: %w", p.field, err)
		}
	}
	return mw.Close()
}

// ImageFile describes what GetImageFile wrote.
type ImageFile struct {
	// MetaName is the name the daemon gives the image's file (a unified
	// or plain tarball) or a split image's metadata tarball.
	MetaName string
	MetaSize int64
	// RootfsName and RootfsSize are a split image's root filesystem's;
	// RootfsSize is 0 for an image of one file.
	RootfsName string
	RootfsSize int64
}

// GetImageFile downloads an image's files (GET /1.0/images/{fp}/export):
// an image of one file is written to meta; a split image's metadata tarball
// to meta and its root filesystem to rootfs. The bytes are checked against
// the fingerprint, which may be a prefix; a mismatch is an error (the
// written files are then not the image).
func (c *Client) GetImageFile(ctx context.Context, fingerprint string, meta, rootfs io.Writer) (*ImageFile, error) {
	resp, err := c.do(ctx, http.MethodGet, imagePath(fingerprint)+"/export", nil, -1, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if _, _, err := parseResponse(resp, nil); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("export image %s: HTTP %s", fingerprint, resp.Status)
	}
	h := sha256.New()
	out := &ImageFile{}
	ctype, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err == nil && ctype == "multipart/form-data" {
		if rootfs == nil {
			return nil, fmt.Errorf("export image %s: a split image, but no writer for its rootfs", fingerprint)
		}
		mr := multipart.NewReader(resp.Body, params["boundary"])
		for _, want := range []struct {
			field string
			w     io.Writer
			name  *string
			size  *int64
		}{{"metadata", meta, &out.MetaName, &out.MetaSize}, {"rootfs", rootfs, &out.RootfsName, &out.RootfsSize}} {
			p, err := mr.NextPart()
			if err != nil {
				return nil, fmt.Errorf("export image %s: %w", fingerprint, err)
			}
			if p.FormName() != want.field {
				return nil, fmt.Errorf("export image %s: part %q, expected %q", fingerprint, p.FormName(), want.field)
			}
			*want.name = path.Base(p.FileName())
			if *want.size, err = io.Copy(io.MultiWriter(want.w, h), p); err != nil {
				return nil, fmt.Errorf("export image %s: %w", fingerprint, err)
			}
		}
	} else {
		_, cd, err := mime.ParseMediaType(resp.Header.Get("Content-Disposition"))
		if err != nil || cd["filename"] == "" {
			return nil, fmt.Errorf("export image %s: no file name in the answer's Content-Disposition", fingerprint)
		}
		out.MetaName = path.Base(cd["filename"])
		if out.MetaSize, err = io.Copy(io.MultiWriter(meta, h), resp.Body); err != nil {
			return nil, fmt.Errorf("export image %s: %w", fingerprint, err)
		}
	}
	if sum := hex.EncodeToString(h.Sum(nil)); !strings.HasPrefix(sum, strings.ToLower(fingerprint)) {
		return nil, fmt.Errorf("export image %s: the files' fingerprint is %s", fingerprint, sum)
	}
	return out, nil
}

// UpdateServerConfig changes server configuration keys (PATCH /1.0); a key
// set to "" goes back to its default.
func (c *Client) UpdateServerConfig(ctx context.Context, config map[string]string) error {
	_, err := c.queryStruct(ctx, http.MethodPatch, "/1.0", map[string]any{"config": config}, "", nil)
	return err
}
