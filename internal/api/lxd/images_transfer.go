package lxd

import (
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/image"
)

// splitUpload reads a split image upload as lxc sends it (client
// CreateImage): multipart/form-data with a "metadata" part (the metadata
// tarball) and then a "rootfs" part. It returns the metadata part and sets
// meta.Rootfs to return the rootfs part once the metadata is read.
func splitUpload(r *http.Request, meta *image.ImportMeta) (io.Reader, error) {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, errdefs.Invalid("Content-Type: %v", err)
	}
	if params["boundary"] == "" {
		return nil, errdefs.Invalid("Content-Type: multipart upload without a boundary")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	part, err := mr.NextPart()
	if err != nil {
		return nil, errdefs.Invalid("multipart upload: %v", err)
	}
	if part.FormName() != "metadata" {
		return nil, errdefs.Invalid("multipart upload: the first part is %q, expected \"metadata\"", part.FormName())
	}
	meta.Rootfs = func() (io.Reader, error) {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, errdefs.Invalid("multipart upload: no \"rootfs\" part after \"metadata\"")
		}
		if err != nil {
			return nil, errdefs.Invalid("multipart upload: %v", err)
		}
		switch p.FormName() {
		case "rootfs", "rootfs.img": // rootfs.img: a VM's disk, told apart by its bytes
			return p, nil
		}
		return nil, errdefs.Invalid("multipart upload: the second part is %q, expected \"rootfs\"", p.FormName())
	}
	return part, nil
}

// getImageSubresource serves what lies below /1.0/images/{fp}/.
func (s *Server) getImageSubresource(w http.ResponseWriter, r *http.Request) {
	fp, sub, _ := strings.Cut(r.PathValue("path"), "/")
	switch sub {
	case "export":
		s.exportImage(w, r, fp)
	default:
		writeError(w, errdefs.NotFound("not found"))
	}
}

// exportImage answers GET /1.0/images/{fp}/export as LXD does: one file
// inline, with its name in Content-Disposition, or for a split image a
// multipart/form-data body with the "metadata" and "rootfs" parts.
func (s *Server) exportImage(w http.ResponseWriter, r *http.Request, fp string) {
	e, err := s.Images.Export(r.Context(), fp)
	if err != nil {
		writeError(w, err)
		return
	}
	defer e.Close()
	if e.Rootfs == nil {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": e.MetaName}))
		st, err := e.Meta.Stat()
		if err != nil {
			writeError(w, err)
			return
		}
		http.ServeContent(w, r, e.MetaName, st.ModTime(), e.Meta)
		return
	}
	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", mw.FormDataContentType())
	for _, p := range []struct {
		field, name string
		r           io.Reader
	}{{"metadata", e.MetaName, e.Meta}, {"rootfs", e.RootfsName, e.Rootfs}} {
		fw, err := mw.CreateFormFile(p.field, p.name)
		if err == nil {
			_, err = io.Copy(fw, p.r)
		}
		if err != nil {
			// The status is sent; the client sees a truncated body and a
			// fingerprint that does not match.
			s.Log.Debug("image export interrupted", "fingerprint", e.Fingerprint, "err", err)
			return
		}
	}
	if err := mw.Close(); err != nil {
		s.Log.Debug("image export interrupted", "fingerprint", e.Fingerprint, "err", err)
	}
}
