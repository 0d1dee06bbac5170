package lxd

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/api"
	"github.com/hangar-dev/hangar/internal/auth"
	"github.com/hangar-dev/hangar/internal/errdefs"
	"github.com/hangar-dev/hangar/internal/image"
	"github.com/hangar-dev/hangar/internal/instance"
	"github.com/hangar-dev/hangar/internal/operation"
)

func (s *Server) listImages(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	f, err := parseFilter(r.URL.Query().Get("filter"))
	if err != nil {
		writeError(w, err)
		return
	}
	images, err := s.Images.List(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	kept := images[:0]
	for _, img := range images {
		if f.match(imageFields(img)) {
			kept = append(kept, img)
		}
	}
	images = kept
	if rec == 0 {
		urls := make([]string, len(images))
		for i, img := range images {
			urls[i] = "/1.0/images/" + img.Fingerprint
		}
		writeSync(w, urls, "")
		return
	}
	writeSync(w, images, "")
}

// createImage imports an image uploaded as the raw request body, with LXD's
// headers: X-LXD-filename, X-LXD-public, X-LXD-properties (a URL-encoded
// query string); hangar adds X-Hangar-Alias. JSON bodies (remote sources)
// come with the registry work.
func (s *Server) createImage(w http.ResponseWriter, r *http.Request) {
	meta := image.ImportMeta{Alias: r.Header.Get("X-Hangar-Alias"), Fingerprint: r.Header.Get("X-LXD-fingerprint")}
	upload := &uploadBody{ReadCloser: r.Body}
	r.Body = upload
	var body io.Reader = upload
	switch ct := r.Header.Get("Content-Type"); {
	case ct == "application/json":
		s.pullImage(w, r) // images_oci.go
		return
	case strings.HasPrefix(ct, "multipart/"):
		var err error
		if body, err = splitUpload(r, &meta); err != nil {
			s.refuseUpload(w, upload, err)
			return
		}
	}
	if v := r.Header.Get("X-LXD-properties"); v != "" {
		props, err := url.ParseQuery(v)
		if err != nil {
			s.refuseUpload(w, upload, errdefs.Invalid("X-LXD-properties: %v", err))
			return
		}
		meta.Properties = map[string]string{}
		for k := range props {
			meta.Properties[k] = props.Get(k)
		}
		meta.OS, meta.Release = props.Get("os"), props.Get("release")
		meta.Architecture, meta.Description = props.Get("architecture"), props.Get("description")
	}
	meta.Filename = r.Header.Get("X-LXD-filename")
	if v := r.Header.Get("X-LXD-public"); v != "" {
		pub, err := strconv.ParseBool(v)
		if err != nil {
			s.refuseUpload(w, upload, errdefs.Invalid("X-LXD-public %q: not a boolean", v))
			return
		}
		meta.Public = pub
	}
	// The body must be read before this handler returns, so the operation
	// runs to its end here; the client still gets LXD's async answer and
	// the finished operation (with the fingerprint) stays queryable.
	var importErr error // Read once the operation is done.
	var aborted error   // The client went away mid-upload.
	op := s.Ops.Start(operation.Spec{
		Context:     r.Context(),
		Class:       api.OperationClassTask,
		Description: "Importing image",
		Run: func(ctx context.Context, op *operation.Op) error {
			// A client that goes away ends the import at once.
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			defer context.AfterFunc(r.Context(), cancel)()
			if r.Context().Err() != nil {
				cancel() // AfterFunc would, but in its own goroutine.
			}
			img, err := s.Images.Import(ctx, body, meta)
			if err != nil {
				if cause := upload.aborted(r.Context()); cause != nil {
					aborted = cause
					// Cancelled, not failed: nothing went wrong here.
					err = fmt.Errorf("%w: upload interrupted after %d bytes: %v", errdefs.ErrCancelled, upload.n, cause)
				}
				importErr = err
				return err
			}
			op.SetMetadata(map[string]any{"fingerprint": img.Fingerprint, "size": img.Size})
			return nil
		},
	})
	// Not the request's context: the operation reads the body, so it must
	// end before the handler does, and it does at once when the client
	// goes away.
	<-op.Done()
	switch {
	case aborted != nil:
		// Routine (a ^C, a dropped connection): not the server's error.
		s.Log.Info("image upload interrupted by the client", "remote", r.RemoteAddr, "received", upload.n, "error", aborted)
		// Seen only by a client still there whose body was malformed.
		writeError(w, errdefs.Invalid("upload interrupted after %d bytes: %v", upload.n, aborted))
	case importErr != nil && statusOf(importErr) < http.StatusInternalServerError:
		// A bad upload (or an existing image) is the client's error:
		// answered as such (400, 409), not as a failed operation that
		// looks like the server's.
		s.refuseUpload(w, upload, importErr)
	default:
		writeAsync(w, op.Snapshot())
	}
}

// uploadBody is an upload's request body. It counts what arrived and keeps
// why reading it failed: the image store sees only a failed read, and the
// edge tells a client that went away from a bad upload by it.
type uploadBody struct {
	io.ReadCloser
	n   int64
	err error
}

func (b *uploadBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// aborted returns why the upload did not arrive whole, or nil: the body
// could not be read (cut short: the connection closed), or the client's
// request ended.
func (b *uploadBody) aborted(ctx context.Context) error {
	if b.err != nil {
		return b.err
	}
	return ctx.Err()
}

// maxRefusedDrain is how much of a refused upload is read and dropped
// before answering.
const maxRefusedDrain = 64 << 20

// refuseUpload answers a refused upload. The rest of the body is read
// first (up to maxRefusedDrain): a client still sending it reads no
// answer, and when the connection closes under it it reports a broken
// pipe instead of why its upload was refused (a tar bomb is refused after
// a few KiB of a 1 MiB upload).
func (s *Server) refuseUpload(w http.ResponseWriter, upload *uploadBody, err error) {
	if upload.err == nil {
		if n, _ := io.CopyN(io.Discard, upload, maxRefusedDrain); n == maxRefusedDrain {
			s.Log.Debug("refused upload still sending; closing its connection", "received", upload.n)
		}
	}
	writeError(w, err)
}

func (s *Server) getImage(w http.ResponseWriter, r *http.Request) {
	img, err := s.Images.Get(r.Context(), r.PathValue("fp"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, img, imageETag(img))
}

func imageETag(img api.Image) string {
	return etagJSON([]any{img.AutoUpdate, img.Properties, img.Public, img.ExpiresAt, img.Profiles})
}

func (s *Server) putImage(w http.ResponseWriter, r *http.Request) {
	var put api.ImagePut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	s.updateImage(w, r, put)
}

func (s *Server) patchImage(w http.ResponseWriter, r *http.Request) {
	img, err := s.Images.Get(r.Context(), r.PathValue("fp"))
	if err != nil {
		writeError(w, err)
		return
	}
	put := img.ImagePut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	s.updateImage(w, r, put)
}

func (s *Server) updateImage(w http.ResponseWriter, r *http.Request, put api.ImagePut) {
	img, err := s.Images.Get(r.Context(), r.PathValue("fp"))
	if err != nil {
		writeError(w, err)
		return
	}
	if m := ifMatch(r); m != "" && m != imageETag(img) {
		writeError(w, errdefs.PreconditionFailed("image %s changed since it was read (ETag mismatch)", img.Fingerprint[:12]))
		return
	}
	if err := s.Images.Update(r.Context(), img.Fingerprint, put); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) deleteImage(w http.ResponseWriter, r *http.Request) {
	img, err := s.Images.Get(r.Context(), r.PathValue("fp"))
	if err != nil {
		writeError(w, err)
		return
	}
	if checked(w, s.allow(r, imageObject(r, img.Fingerprint), auth.CanDelete)) {
		return
	}
	if users := s.imageUsers(r.Context(), img.Fingerprint); len(users) > 0 {
		// Refuse at once rather than as a failed operation.
		writeError(w, s.Images.Delete(r.Context(), img.Fingerprint, users))
		return
	}
	s.startOp(w, r, "Deleting image", map[string][]string{"images": {"/1.0/images/" + img.Fingerprint}}, func(ctx context.Context) error {
		return s.Images.Delete(ctx, img.Fingerprint, s.imageUsers(ctx, img.Fingerprint))
	})
}

// imageUsers names the instances created from fp, for the refusal to
// delete it: every project's count (an instance the caller cannot see
// still holds the image), but only those the caller may see by name.
func (s *Server) imageUsers(ctx context.Context, fp string) []string {
	all := s.Instances.ImageUsers(auth.AsDaemon(ctx), fp)
	if len(all) == 0 {
		return nil
	}
	shown := instance.RefNames(s.Instances.ImageUsers(ctx, fp))
	if hidden := len(all) - len(shown); hidden > 0 {
		shown = append(shown, fmt.Sprintf("%d instance(s) in projects you cannot see", hidden))
	}
	return shown
}

func (s *Server) listAliases(w http.ResponseWriter, r *http.Request) {
	rec, err := recursion(r)
	if err != nil {
		writeError(w, err)
		return
	}
	aliases, err := s.Images.ListAliases(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	if rec == 0 {
		urls := make([]string, len(aliases))
		for i, a := range aliases {
			urls[i] = "/1.0/images/aliases/" + a.Name
		}
		writeSync(w, urls, "")
		return
	}
	writeSync(w, aliases, "")
}

func (s *Server) createAlias(w http.ResponseWriter, r *http.Request) {
	var req api.ImageAliasesPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Images.CreateAlias(r.Context(), req); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Location", "/1.0/images/aliases/"+req.Name)
	writeSync(w, map[string]any{}, "")
}

func (s *Server) getAlias(w http.ResponseWriter, r *http.Request) {
	a, err := s.Images.GetAlias(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, a, etagJSON([]any{a.Description, a.Target}))
}

func (s *Server) putAlias(w http.ResponseWriter, r *http.Request) {
	var put api.ImageAliasesEntryPut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	s.updateAlias(w, r, put)
}

func (s *Server) patchAlias(w http.ResponseWriter, r *http.Request) {
	a, err := s.Images.GetAlias(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	put := a.ImageAliasesEntryPut
	if err := decode(r, &put); err != nil {
		writeError(w, err)
		return
	}
	s.updateAlias(w, r, put)
}

func (s *Server) updateAlias(w http.ResponseWriter, r *http.Request, put api.ImageAliasesEntryPut) {
	name := r.PathValue("name")
	a, err := s.Images.GetAlias(r.Context(), name)
	if err != nil {
		writeError(w, err)
		return
	}
	if m := ifMatch(r); m != "" && m != etagJSON([]any{a.Description, a.Target}) {
		writeError(w, errdefs.PreconditionFailed("alias %q changed since it was read (ETag mismatch)", name))
		return
	}
	if err := s.Images.UpdateAlias(r.Context(), name, put); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) renameAlias(w http.ResponseWriter, r *http.Request) {
	var req api.ImageAliasesEntryPost
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if err := s.Images.RenameAlias(r.Context(), r.PathValue("name"), req.Name); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}

func (s *Server) deleteAlias(w http.ResponseWriter, r *http.Request) {
	if err := s.Images.DeleteAlias(r.Context(), r.PathValue("name")); err != nil {
		writeError(w, err)
		return
	}
	writeSync(w, map[string]any{}, "")
}
