package hcloudfake

import (
	"net/http"
	"strings"
)

// faults holds the injected failures still to be served. Each counts down
// as it fires; all are guarded by Server.mu.
type faults struct {
	creates     []createFault
	statuses    []statusFault
	drops       []pathFault
	fail429     int
	locks       map[int64]int
	failActions int
}

func newFaults() faults { return faults{locks: map[int64]int{}} }

type createFault struct {
	serverType, location, code string
	left                       int
}

type pathFault struct {
	method, prefix string // method "" matches any
	left           int
}

type statusFault struct {
	pathFault
	status int
	code   string
}

// parsePathSpec splits "POST /servers" into a method and a path prefix; a
// bare "/servers" matches every method. A leading /v1 is ignored.
func parsePathSpec(spec string) (method, prefix string) {
	if m, p, ok := strings.Cut(strings.TrimSpace(spec), " "); ok {
		method, spec = strings.ToUpper(m), strings.TrimSpace(p)
	}
	return method, strings.TrimPrefix(spec, apiPrefix)
}

func (f *pathFault) matches(method, path string) bool {
	return f.left > 0 && (f.method == "" || f.method == method) && strings.HasPrefix(path, f.prefix)
}

// FailCreate makes the next times server creations for serverType in
// location (by name; "" matches any) fail with the error code, e.g.
// "resource_unavailable" (412) or "placement_error" (422), after the request
// passed validation. The HTTP status is the one the API uses for the code.
func (s *Server) FailCreate(serverType, location, code string, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.creates = append(s.faults.creates, createFault{serverType, location, code, times})
}

// Fail5xx makes the next times requests whose path starts with pathPrefix
// (e.g. "/servers", or "POST /servers" for one method) answer 500
// server_error without being processed.
func (s *Server) Fail5xx(pathPrefix string, times int) {
	s.FailStatus(pathPrefix, http.StatusInternalServerError, "server_error", times)
}

// FailStatus is Fail5xx with any status and error code, e.g. 502
// "bad_gateway" or 504 "timeout", which hcloud-go retries by itself.
func (s *Server) FailStatus(pathPrefix string, status int, code string, times int) {
	method, prefix := parsePathSpec(pathPrefix)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.statuses = append(s.faults.statuses, statusFault{pathFault{method, prefix, times}, status, code})
}

// Fail429 makes the next times requests answer 429 rate_limit_exceeded (with
// RateLimit-Remaining: 0) without using up the real budget.
func (s *Server) Fail429(times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.fail429 += times
}

// LockServer makes the next times deletions of server id answer 423 locked.
func (s *Server) LockServer(id int64, times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.locks[id] += times
}

// FailActions makes the next times actions that a request starts
// (create_server, delete_server) end in status error with code
// "action_failed". The start_server action that follows a create shares the
// fate of the create_server action.
func (s *Server) FailActions(times int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failActions += times
}

// DropConnection makes the next times requests whose path starts with
// pathPrefix ("/servers", or "POST /servers") be fully processed, and then
// closes the connection before the answer is sent: the client sees a
// transport error although the server was created.
func (s *Server) DropConnection(pathPrefix string, times int) {
	method, prefix := parsePathSpec(pathPrefix)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.drops = append(s.faults.drops, pathFault{method, prefix, times})
}

func (f *faults) take429() bool {
	if f.fail429 > 0 {
		f.fail429--
		return true
	}
	return false
}

func (f *faults) takeStatus(method, path string) *apiError {
	for i := range f.statuses {
		sf := &f.statuses[i]
		if sf.matches(method, path) {
			sf.left--
			return &apiError{status: sf.status, code: sf.code, message: "injected failure"}
		}
	}
	return nil
}

func (s *Server) takeDrop(method, path string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.faults.drops {
		d := &s.faults.drops[i]
		if d.matches(method, path) {
			d.left--
			return true
		}
	}
	return false
}

func (f *faults) takeCreate(serverType, location string) *apiError {
	for i := range f.creates {
		c := &f.creates[i]
		if c.left > 0 && (c.serverType == "" || c.serverType == serverType) &&
			(c.location == "" || c.location == location) {
			c.left--
			return newError(c.code, "injected failure for server type %s in %s", serverType, location)
		}
	}
	return nil
}

func (f *faults) takeLock(id int64) bool {
	if f.locks[id] > 0 {
		f.locks[id]--
		return true
	}
	return false
}

func (f *faults) takeActionFailure() bool {
	if f.failActions > 0 {
		f.failActions--
		return true
	}
	return false
}
