package hcloudfake

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// maxUserData is the API's limit on user_data: 32 KiB.
const maxUserData = 32 << 10

// createRequest is hcloud-go's create request, except that ssh_keys may hold
// names as well as IDs, as the API allows.
type createRequest struct {
	schema.ServerCreateRequest
	SSHKeys []schema.IDOrName `json:"ssh_keys,omitempty"`
}

func (s *Server) createServer(w http.ResponseWriter, r *http.Request, _ string) {
	var req createRequest
	if e := decodeBody(r, &req); e != nil {
		writeError(w, e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	v, e := s.admitServer(&req)
	if e != nil {
		writeError(w, e)
		return
	}
	s.state.servers[v.id] = v
	create, start := s.startCreate(v)
	resp := schema.ServerCreateResponse{
		Server: s.renderServer(v), Action: create.wire, NextActions: []schema.Action{},
	}
	if start != nil {
		resp.NextActions = append(resp.NextActions, start.wire)
	}
	if len(req.SSHKeys) == 0 {
		pw := rootPassword()
		resp.RootPassword = &pw
	}
	writeJSON(w, http.StatusCreated, resp)
}

// admitServer validates a create request in the order the API does: the
// fields themselves, then what they refer to, then capacity (and injected
// faults) and uniqueness; it returns the server to create.
func (s *Server) admitServer(req *createRequest) (*vm, *apiError) {
	if e := checkCreateFields(req); e != nil {
		return nil, e
	}
	st, loc, img, e := s.resolveRefs(req)
	if e != nil {
		return nil, e
	}
	if e := s.faults.takeCreate(st.name, loc.Name); e != nil {
		return nil, e
	}
	if s.nameTaken(req.Name) {
		return nil, &apiError{status: http.StatusConflict, code: "uniqueness_error",
			message: "server name is already used", details: map[string]any{"fields": []fieldError{{Name: "name"}}}}
	}
	labels := map[string]string{}
	if req.Labels != nil {
		labels = maps.Clone(*req.Labels)
	}
	startAfter := req.StartAfterCreate == nil || *req.StartAfterCreate
	return &vm{
		id: s.state.newID("server"), name: req.Name, status: "initializing", created: s.now(),
		serverType: st, location: loc, image: img, labels: labels, userData: req.UserData,
		startAfter: startAfter, bootDone: make(chan struct{}), stopped: make(chan struct{}),
	}, nil
}

// checkCreateFields validates the fields of a create request on their own
// and reports every bad field at once.
func checkCreateFields(req *createRequest) *apiError {
	var bad []fieldError
	add := func(name string, msgs ...string) { bad = append(bad, fieldError{Name: name, Messages: msgs}) }
	if !isHostname(req.Name) {
		add("name", "Name must be a valid hostname.")
	}
	if req.ServerType.ID == 0 && req.ServerType.Name == "" {
		add("server_type", "Missing data for required field.")
	}
	if req.Image.ID == 0 && req.Image.Name == "" {
		add("image", "Missing data for required field.")
	}
	if req.Labels != nil {
		if msgs := checkLabels(*req.Labels); len(msgs) > 0 {
			sort.Strings(msgs)
			add("labels", msgs...)
		}
	}
	if len(req.UserData) > maxUserData {
		add("user_data", fmt.Sprintf("Length must be at most %d bytes, got %d.", maxUserData, len(req.UserData)))
	}
	if len(bad) > 0 {
		return invalidInput(bad...)
	}
	return nil
}

// resolveRefs looks up the server type, location, image and SSH keys of a
// create request. Unknown references are invalid_input, as with the API
// ("location 'x' not found", "unsupported location for server type").
func (s *Server) resolveRefs(req *createRequest) (*serverTypeSpec, *schema.Location, *imageSpec, *apiError) {
	st := serverTypeByName(refString(req.ServerType))
	if st == nil {
		return nil, nil, nil, fieldInvalid("server_type", "server type '%s' not found", refString(req.ServerType))
	}
	locName := req.Location
	if locName == "" {
		locName = st.locations[0]
	}
	loc := locationByName(locName)
	if loc == nil {
		return nil, nil, nil, fieldInvalid("location", "location '%s' not found", locName)
	}
	if !st.offeredIn(loc.Name) {
		return nil, nil, nil, &apiError{status: http.StatusUnprocessableEntity, code: "invalid_input",
			message: "unsupported location for server type", details: map[string]any{}}
	}
	img := imageFor(req.Image, st.arch)
	switch {
	case img == nil && !imageExists(req.Image):
		return nil, nil, nil, fieldInvalid("image", "image '%s' not found", refString(req.Image))
	case img == nil || img.arch != st.arch:
		return nil, nil, nil, fieldInvalid("image", "image '%s' does not support architecture %s", refString(req.Image), st.arch)
	}
	for _, k := range req.SSHKeys {
		if s.sshKeyByRef(k) == nil {
			return nil, nil, nil, fieldInvalid("ssh_keys", "ssh key '%s' not found", refString(k))
		}
	}
	return st, loc, img, nil
}

func fieldInvalid(field, format string, args ...any) *apiError {
	e := invalidInput(fieldError{Name: field, Messages: []string{fmt.Sprintf(format, args...)}})
	e.message = fmt.Sprintf(format, args...)
	return e
}

func refString(r schema.IDOrName) string {
	if r.ID != 0 {
		return itoa(r.ID)
	}
	return r.Name
}

func (s *Server) nameTaken(name string) bool {
	for _, v := range s.state.servers {
		if v.name == name {
			return true
		}
	}
	return false
}

func rootPassword() string {
	b := make([]byte, 15)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) getServer(w http.ResponseWriter, _ *http.Request, rawID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	v, e := s.serverByID(rawID)
	if e != nil {
		writeError(w, e)
		return
	}
	writeJSON(w, http.StatusOK, schema.ServerGetResponse{Server: s.renderServer(v)})
}

func (s *Server) serverByID(rawID string) (*vm, *apiError) {
	id, e := pathID(rawID)
	if e != nil {
		return nil, e
	}
	v, ok := s.state.servers[id]
	if !ok {
		return nil, notFound("server")
	}
	return v, nil
}

type serverList struct {
	schema.ServerListResponse
	schema.MetaResponse
}

func (s *Server) listServers(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	sel, e := selectorParam(q.Get("label_selector"))
	if e != nil {
		writeError(w, e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	var found []schema.Server
	for _, id := range slices.Sorted(maps.Keys(s.state.servers)) {
		v := s.state.servers[id]
		if (q.Get("name") == "" || v.name == q.Get("name")) && sel.matches(v.labels) &&
			(len(q["status"]) == 0 || contains(q["status"], v.status)) {
			found = append(found, s.renderServer(v))
		}
	}
	lo, hi, meta, ok := pageOrError(w, len(found), q)
	if ok {
		writeJSON(w, http.StatusOK, serverList{
			schema.ServerListResponse{Servers: append([]schema.Server{}, found[lo:hi]...)},
			schema.MetaResponse{Meta: meta},
		})
	}
}

func (s *Server) deleteServer(w http.ResponseWriter, _ *http.Request, rawID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	v, e := s.serverByID(rawID)
	if e != nil {
		writeError(w, e)
		return
	}
	if s.faults.takeLock(v.id) {
		writeError(w, newError("locked", "server %d is locked: another action is running", v.id))
		return
	}
	a := s.startDelete(v)
	writeJSON(w, http.StatusOK, schema.ServerDeleteResponse{Action: a.wire})
}

// renderServer is v in the API's wire format. Every list is non-nil: the
// API sends [] and {} where Go would send null.
func (s *Server) renderServer(v *vm) schema.Server {
	img := v.image.schema()
	traffic, _ := trafficFor(v.location.Name)
	return schema.Server{
		ID: v.id, Name: v.name, Status: v.status, Created: v.created,
		PublicNet: schema.ServerPublicNet{
			IPv4: schema.ServerPublicNetIPv4{ID: v.id, IP: v.ipv4(), DNSPtr: fmt.Sprintf("static.%s.clients.your-server.de", v.ipv4())},
			IPv6: schema.ServerPublicNetIPv6{ID: v.id + 1, IP: fmt.Sprintf("2001:db8:%x::/64", v.id%0xffff),
				DNSPtr: []schema.ServerPublicNetIPv6DNSPtr{}},
			FloatingIPs: []int64{}, Firewalls: []schema.ServerFirewall{},
		},
		PrivateNet:      []schema.ServerPrivateNet{},
		ServerType:      v.serverType.schema(),
		IncludedTraffic: traffic,
		Location:        *v.location,
		Image:           &img,
		Labels:          maps.Clone(v.labels),
		Volumes:         []int64{},
		LoadBalancers:   []int64{},
		PrimaryDiskSize: v.serverType.disk,
	}
}
