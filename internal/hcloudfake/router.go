package hcloudfake

import (
	"net/http"
	"strings"
)

// route is one endpoint. A pattern has at most one {id} segment; routes are
// tried in order, so literal segments must come before a wildcard that would
// also match them.
type route struct {
	method  string
	pattern string
	handle  func(w http.ResponseWriter, r *http.Request, id string)
}

func (s *Server) routeTable() []route {
	return []route{
		{"GET", "/servers", s.listServers},
		{"POST", "/servers", s.createServer},
		{"GET", "/servers/actions", s.listResourceActions("server")},
		{"GET", "/servers/actions/{id}", s.getResourceAction("server")},
		{"GET", "/servers/{id}", s.getServer},
		{"DELETE", "/servers/{id}", s.deleteServer},
		{"GET", "/servers/{id}/actions", s.listServerActions},
		{"GET", "/actions", s.listActions},
		{"GET", "/actions/{id}", s.getResourceAction("")},
		{"GET", "/server_types", s.listServerTypes},
		{"GET", "/server_types/{id}", s.getServerType},
		{"GET", "/locations", s.listLocations},
		{"GET", "/locations/{id}", s.getLocation},
		{"GET", "/images", s.listImages},
		{"GET", "/images/{id}", s.getImage},
		{"GET", "/pricing", s.getPricing},
		{"GET", "/ssh_keys", s.listSSHKeys},
		{"POST", "/ssh_keys", s.createSSHKey},
		{"GET", "/ssh_keys/{id}", s.getSSHKey},
		{"DELETE", "/ssh_keys/{id}", s.deleteSSHKey},
	}
}

// match finds the route of a request path (without the /v1 prefix) and the
// value of its {id} segment.
func (s *Server) match(method, path string) (*route, string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i := range s.routes {
		rt := &s.routes[i]
		if rt.method != method {
			continue
		}
		if id, ok := matchSegments(strings.Split(strings.Trim(rt.pattern, "/"), "/"), segs); ok {
			return rt, id
		}
	}
	return nil, ""
}

func matchSegments(pattern, segs []string) (string, bool) {
	if len(pattern) != len(segs) {
		return "", false
	}
	id := ""
	for i, p := range pattern {
		switch {
		case p == "{id}" && segs[i] != "":
			id = segs[i]
		case p != segs[i]:
			return "", false
		}
	}
	return id, true
}
