package hcloudfake

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// BootHook is called, on its own goroutine, for every server the fake
// creates. A test uses it to boot a local VM from the server's user-data. The
// create action completes only after the hook has returned; if it returns an
// error, the action ends in status error. The returned stop func (may be nil)
// is called when the server is deleted, or at Close; the delete action
// completes only after stop has returned. ctx is canceled at Close.
type BootHook func(ctx context.Context, s BootedServer) (stop func(), err error)

// BootedServer describes a created server to a BootHook.
type BootedServer struct {
	ID         int64
	Name       string
	Labels     map[string]string
	UserData   string
	ServerType string // name, e.g. "cx23"
	Location   string // name, e.g. "fsn1"
	Image      string // name, e.g. "debian-12"
	PublicIPv4 string
}

// Option configures a Server.
type Option func(*config)

type config struct {
	tokens      []string
	readOnly    []string // tokens that may only GET (tokens.go)
	limit       int
	per         time.Duration
	actionDelay time.Duration
	bootHook    BootHook
	now         func() time.Time
	spec        *specCheck
}

// WithToken makes the fake accept this API token; given once or more, only
// those tokens are accepted. By default any non-empty bearer token is.
func WithToken(token string) Option { return func(c *config) { c.tokens = append(c.tokens, token) } }

// WithRateLimit sets the request budget: limit requests, refilled gradually
// at limit per period. The default is Hetzner's: 3600 per hour, refilling one
// request a second. A limit below 1 is 1; a period of 0 or less is an hour.
func WithRateLimit(limit int, per time.Duration) Option {
	return func(c *config) {
		c.limit, c.per = max(1, limit), per
		if per <= 0 {
			c.per = time.Hour
		}
	}
}

// WithActionDelay sets how long actions stay running (default 0: they finish
// at the first look after they were created). ActionDelay changes it later.
func WithActionDelay(d time.Duration) Option { return func(c *config) { c.actionDelay = d } }

// WithBootHook sets the hook called for every created server.
func WithBootHook(h BootHook) Option { return func(c *config) { c.bootHook = h } }

// WithClock replaces the wall clock that drives action delays, timestamps
// and the rate limit budget.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// Server is the fake API. Its methods are safe for concurrent use, including
// the fault injections, which may be changed while requests are in flight.
type Server struct {
	cfg     config
	routes  []route
	handler http.Handler
	hs      *httptest.Server

	ctx       context.Context // canceled at Close; given to boot hooks
	cancel    context.CancelFunc
	wg        sync.WaitGroup // boot hooks and teardowns
	closeOnce sync.Once

	mu      sync.Mutex // guards everything below
	state   state
	faults  faults
	bucket  bucket
	total   int
	byRoute map[string]int
	byToken map[string]int // token + " " + route key
}

// New returns a fake that is not yet listening; call Start.
func New(opts ...Option) *Server {
	cfg := config{limit: 3600, per: time.Hour, now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Server{cfg: cfg, byRoute: map[string]int{}, byToken: map[string]int{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.state = newState()
	s.faults = newFaults()
	s.bucket = newBucket(cfg.limit, cfg.per, cfg.now())
	s.routes = s.routeTable()
	s.handler = http.HandlerFunc(s.serve)
	if cfg.spec != nil {
		s.handler = cfg.spec.middleware(s.handler)
	}
	s.hs = httptest.NewUnstartedServer(s.handler)
	return s
}

// Start begins serving on 127.0.0.1 on a free port.
func (s *Server) Start() { s.hs.Start() }

// URL is the API endpoint to give to hcloud.WithEndpoint, for example
// http://127.0.0.1:PORT/v1 (the client appends paths such as /servers).
func (s *Server) URL() string { return s.hs.URL + apiPrefix }

// Close stops serving, cancels the boot hooks' context, stops every server
// that is still booted and waits for all hooks and stops to return.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.hs.Close()
		s.cancel()
		s.stopAll()
		s.wg.Wait()
	})
}

func (s *Server) now() time.Time { return s.cfg.now().UTC() }

const apiPrefix = "/v1"

// serve is the request pipeline: count, rate limit, injected 429, auth,
// injected status faults, route, and an injected dropped connection.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	path, versioned := strings.CutPrefix(r.URL.Path, apiPrefix)
	var rt *route
	var id string
	if versioned {
		rt, id = s.match(r.Method, path)
	}
	if e := s.admit(w, r, path, rt); e != nil {
		writeError(w, e)
		return
	}
	if rt == nil {
		writeError(w, notFound("resource"))
		return
	}
	if s.takeDrop(r.Method, path) {
		// The request is processed, then the connection is closed before
		// any answer reaches the client.
		rt.handle(discardWriter{header: http.Header{}}, r, id)
		panic(http.ErrAbortHandler)
	}
	rt.handle(w, r, id)
}

// admit runs everything that happens before a request reaches its handler
// and returns the error to answer with, if any.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, path string, rt *route) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.total++
	s.byRoute[routeKey(r.Method, path, rt)]++
	if token, ok := bearer(r); ok {
		s.byToken[token+" "+routeKey(r.Method, path, rt)]++
	}
	if !s.bucket.take(now) {
		s.bucket.setHeaders(w.Header(), now)
		return newError("rate_limit_exceeded", "limit of %d requests per %v exceeded", s.cfg.limit, s.cfg.per)
	}
	if s.faults.take429() {
		b := s.bucket.drained()
		b.setHeaders(w.Header(), now)
		return newError("rate_limit_exceeded", "limit of %d requests per %v exceeded", s.cfg.limit, s.cfg.per)
	}
	s.bucket.setHeaders(w.Header(), now)
	if !s.authorized(r) {
		return newError("unauthorized", "unable to authenticate")
	}
	if s.readOnlyRefuses(r) {
		return newError("token_readonly", "the token is only allowed to perform GET requests")
	}
	return s.faults.takeStatus(r.Method, path)
}

func (s *Server) authorized(r *http.Request) bool {
	token, ok := bearer(r)
	return ok && (len(s.cfg.tokens) == 0 || slices.Contains(s.cfg.tokens, token) || slices.Contains(s.cfg.readOnly, token))
}

func bearer(r *http.Request) (string, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return token, ok && strings.TrimSpace(token) != ""
}

func routeKey(method, path string, rt *route) string {
	if rt != nil {
		return method + " " + rt.pattern
	}
	return method + " " + path
}

// Requests returns how many requests the fake has received since it started
// or since ResetCounters, whatever their answer.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// RequestsBy returns how many requests matched a method and a route pattern
// such as "/servers/{id}" or "/actions" (with or without the /v1 prefix).
// A path that matches no route is counted under its literal path.
func (s *Server) RequestsBy(method, pathPattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byRoute[strings.ToUpper(method)+" "+strings.TrimPrefix(pathPattern, apiPrefix)]
}

// RequestsWithToken is RequestsBy for the requests that carried token.
func (s *Server) RequestsWithToken(token, method, pathPattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byToken[token+" "+strings.ToUpper(method)+" "+strings.TrimPrefix(pathPattern, apiPrefix)]
}

// ResetCounters sets Requests and every RequestsBy and RequestsWithToken
// count back to zero.
func (s *Server) ResetCounters() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.total = 0
	s.byRoute = map[string]int{}
	s.byToken = map[string]int{}
}

// ActionDelay sets how long actions created from now on stay running.
func (s *Server) ActionDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.actionDelay = d
}

// ServerInfo is a snapshot of one server, for assertions.
type ServerInfo struct {
	BootedServer
	Status  string // as the API reports it; "deleting" until the delete action ends
	Created time.Time
}

// Servers returns every server the fake holds, by ID, including deleted
// ones whose delete action has not finished yet (Status "deleting").
func (s *Server) Servers() []ServerInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settle()
	out := make([]ServerInfo, 0, len(s.state.servers)+len(s.state.deleting))
	for _, m := range []map[int64]*vm{s.state.servers, s.state.deleting} {
		for _, v := range m {
			out = append(out, ServerInfo{BootedServer: v.booted(), Status: v.status, Created: v.created})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// discardWriter swallows the answer of a request whose connection is dropped.
type discardWriter struct{ header http.Header }

func (d discardWriter) Header() http.Header         { return d.header }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}
