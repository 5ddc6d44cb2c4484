package hcloudfake

import (
	"net/http"
	"slices"
)

// WithReadOnlyToken makes the fake accept token, given once or more, as a
// read-only API token: it may GET, and every other request is refused with
// 401 token_readonly before it is processed, as the API's error table
// documents. It is accepted besides the tokens of WithToken; without
// WithToken any other non-empty token is still read-write.
func WithReadOnlyToken(token string) Option {
	return func(c *config) { c.readOnly = append(c.readOnly, token) }
}

// readOnlyRefuses reports whether r is a write with a read-only token.
func (s *Server) readOnlyRefuses(r *http.Request) bool {
	token, ok := bearer(r)
	return ok && r.Method != http.MethodGet && slices.Contains(s.cfg.readOnly, token)
}
