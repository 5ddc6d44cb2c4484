package hcloudfake

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// Handlers of the read-only catalog: server types, locations, images, pricing.

type serverTypeList struct {
	schema.ServerTypeListResponse
	schema.MetaResponse
}

func (s *Server) listServerTypes(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	var found []schema.ServerType
	for _, st := range serverTypes {
		if q.Get("name") == "" || q.Get("name") == st.name {
			found = append(found, st.schema())
		}
	}
	lo, hi, meta, ok := pageOrError(w, len(found), q)
	if ok {
		writeJSON(w, http.StatusOK, serverTypeList{
			schema.ServerTypeListResponse{ServerTypes: append([]schema.ServerType{}, found[lo:hi]...)},
			schema.MetaResponse{Meta: meta},
		})
	}
}

func (s *Server) getServerType(w http.ResponseWriter, _ *http.Request, rawID string) {
	id, e := pathID(rawID)
	if e != nil {
		writeError(w, e)
		return
	}
	st := serverTypeByName(itoa(id))
	if st == nil {
		writeError(w, notFound("server type"))
		return
	}
	writeJSON(w, http.StatusOK, schema.ServerTypeGetResponse{ServerType: st.schema()})
}

type locationList struct {
	schema.LocationListResponse
	schema.MetaResponse
}

func (s *Server) listLocations(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	var found []schema.Location
	for _, l := range locations {
		if q.Get("name") == "" || q.Get("name") == l.Name {
			found = append(found, l)
		}
	}
	lo, hi, meta, ok := pageOrError(w, len(found), q)
	if ok {
		writeJSON(w, http.StatusOK, locationList{
			schema.LocationListResponse{Locations: append([]schema.Location{}, found[lo:hi]...)},
			schema.MetaResponse{Meta: meta},
		})
	}
}

func (s *Server) getLocation(w http.ResponseWriter, _ *http.Request, rawID string) {
	id, e := pathID(rawID)
	if e != nil {
		writeError(w, e)
		return
	}
	l := locationByName(itoa(id))
	if l == nil {
		writeError(w, notFound("location"))
		return
	}
	writeJSON(w, http.StatusOK, schema.LocationGetResponse{Location: *l})
}

type imageList struct {
	schema.ImageListResponse
	schema.MetaResponse
}

// listImages supports the name, type, architecture, status and
// label_selector filters. The catalog has no deprecated images, so
// include_deprecated changes nothing.
func (s *Server) listImages(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	sel, e := selectorParam(q.Get("label_selector"))
	if e != nil {
		writeError(w, e)
		return
	}
	var found []schema.Image
	for _, im := range images {
		img := im.schema()
		if imageMatches(q, img) && sel.matches(img.Labels) {
			found = append(found, img)
		}
	}
	lo, hi, meta, ok := pageOrError(w, len(found), q)
	if ok {
		writeJSON(w, http.StatusOK, imageList{
			schema.ImageListResponse{Images: append([]schema.Image{}, found[lo:hi]...)},
			schema.MetaResponse{Meta: meta},
		})
	}
}

func imageMatches(q url.Values, img schema.Image) bool {
	anyOf := func(param, v string) bool { return len(q[param]) == 0 || slices.Contains(q[param], v) }
	return anyOf("name", *img.Name) && anyOf("type", img.Type) &&
		anyOf("architecture", img.Architecture) && anyOf("status", img.Status)
}

func (s *Server) getImage(w http.ResponseWriter, _ *http.Request, rawID string) {
	id, e := pathID(rawID)
	if e != nil {
		writeError(w, e)
		return
	}
	for _, im := range images {
		if im.id == id {
			writeJSON(w, http.StatusOK, schema.ImageGetResponse{Image: im.schema()})
			return
		}
	}
	writeError(w, notFound("image"))
}

func (s *Server) getPricing(w http.ResponseWriter, _ *http.Request, _ string) {
	writeJSON(w, http.StatusOK, schema.PricingGetResponse{Pricing: pricing()})
}

// pageOrError is page that answers the error itself.
func pageOrError(w http.ResponseWriter, n int, q url.Values) (lo, hi int, meta schema.Meta, ok bool) {
	lo, hi, meta, e := page(n, q)
	if e != nil {
		writeError(w, e)
		return 0, 0, meta, false
	}
	return lo, hi, meta, true
}
