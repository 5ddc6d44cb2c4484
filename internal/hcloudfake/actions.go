package hcloudfake

import (
	"maps"
	"net/http"
	"slices"
	"strconv"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// getResourceAction answers GET /actions/{id}, or GET /<resource>s/actions/{id}
// when resType is set (the action must then concern such a resource).
func (s *Server) getResourceAction(resType string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, _ *http.Request, rawID string) {
		id, e := pathID(rawID)
		if e != nil {
			writeError(w, e)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.settle()
		a, ok := s.state.actions[id]
		if !ok || (resType != "" && !concerns(a, resType, 0)) {
			writeError(w, notFound("action"))
			return
		}
		writeJSON(w, http.StatusOK, schema.ActionGetResponse{Action: a.wire})
	}
}

// concerns reports whether a touches a resource of resType (and ID, unless 0).
func concerns(a *action, resType string, id int64) bool {
	for _, r := range a.wire.Resources {
		if r.Type == resType && (id == 0 || r.ID == id) {
			return true
		}
	}
	return false
}

// listActions answers GET /actions?id=1&id=2, the batch read that
// hcloud-go's action waiter polls. The id parameter is required since the
// API stopped listing all actions.
func (s *Server) listActions(w http.ResponseWriter, r *http.Request, _ string) {
	ids, e := idParams(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if len(ids) == 0 {
		writeError(w, invalidInput(fieldError{Name: "id", Messages: []string{"Missing data for required field."}}))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	out := s.actionsWhere(func(a *action) bool { return slices.Contains(ids, a.wire.ID) }, r)
	writeJSON(w, http.StatusOK, schema.ActionListResponse{Actions: out})
}

type actionList struct {
	schema.ActionListResponse
	schema.MetaResponse
}

// listResourceActions answers GET /<resource>s/actions, optionally by id.
func (s *Server) listResourceActions(resType string) func(http.ResponseWriter, *http.Request, string) {
	return func(w http.ResponseWriter, r *http.Request, _ string) {
		ids, e := idParams(r)
		if e != nil {
			writeError(w, e)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.settle()
		s.writeActionPage(w, r, s.actionsWhere(func(a *action) bool {
			return concerns(a, resType, 0) && (len(ids) == 0 || slices.Contains(ids, a.wire.ID))
		}, r))
	}
}

// listServerActions answers GET /servers/{id}/actions.
func (s *Server) listServerActions(w http.ResponseWriter, r *http.Request, rawID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	v, e := s.serverByID(rawID)
	if e != nil {
		writeError(w, e)
		return
	}
	s.writeActionPage(w, r, s.actionsWhere(func(a *action) bool { return concerns(a, "server", v.id) }, r))
}

func (s *Server) writeActionPage(w http.ResponseWriter, r *http.Request, all []schema.Action) {
	lo, hi, meta, ok := pageOrError(w, len(all), r.URL.Query())
	if ok {
		writeJSON(w, http.StatusOK, actionList{
			schema.ActionListResponse{Actions: append([]schema.Action{}, all[lo:hi]...)},
			schema.MetaResponse{Meta: meta},
		})
	}
}

// actionsWhere returns the actions that keep, filtered by the status
// parameter, by ID.
func (s *Server) actionsWhere(keep func(*action) bool, r *http.Request) []schema.Action {
	status := r.URL.Query()["status"]
	out := []schema.Action{}
	for _, id := range slices.Sorted(maps.Keys(s.state.actions)) {
		a := s.state.actions[id]
		if keep(a) && (len(status) == 0 || slices.Contains(status, a.wire.Status)) {
			out = append(out, a.wire)
		}
	}
	return out
}

func idParams(r *http.Request) ([]int64, *apiError) {
	var ids []int64
	for _, raw := range r.URL.Query()["id"] {
		id, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || id < 1 {
			return nil, invalidInput(fieldError{Name: "id", Messages: []string{"Not a valid integer."}})
		}
		ids = append(ids, id)
	}
	return ids, nil
}
