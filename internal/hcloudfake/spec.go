package hcloudfake

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	vconfig "github.com/pb33f/libopenapi-validator/config"
	verrors "github.com/pb33f/libopenapi-validator/errors"
)

// SpecEnv names the environment variable that overrides where the OpenAPI
// description of the Hetzner Cloud API is read from.
const SpecEnv = "SORTIE_HCLOUD_SPEC"

// defaultSpecPath is where the spec lives relative to the repository root.
const defaultSpecPath = "../shared/hcloud/cloud.spec.json"

// WithSpecValidation validates every request the fake receives and every
// response it sends against the official OpenAPI description of the Hetzner
// Cloud API, and reports each violation with t.Errorf: a request the real API
// would reject, or an answer it would never give, fails the test.
//
// specPath "" means $SORTIE_HCLOUD_SPEC, or else ../shared/hcloud/cloud.spec.json
// relative to the repository root (the directory holding go.mod). When the
// file is absent the test is skipped, unless CI=true, where it fails. The spec
// is parsed once per process. Call it on the test's goroutine.
func WithSpecValidation(t testing.TB, specPath string) Option {
	t.Helper()
	path, err := resolveSpecPath(specPath)
	if err == nil {
		_, err = os.Stat(path)
	}
	if err != nil {
		msg := fmt.Sprintf("hcloudfake: Hetzner Cloud OpenAPI spec not available (%v); set %s to its path", err, SpecEnv)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	sv, loaded, err := loadSpec(path)
	if err != nil {
		t.Fatalf("hcloudfake: load spec %s: %v", path, err)
	}
	if loaded > 0 {
		t.Logf("hcloudfake: parsed %s in %v (once per process)", path, loaded.Round(time.Millisecond))
	}
	check := &specCheck{t: t, sv: sv}
	return func(c *config) { c.spec = check }
}

func resolveSpecPath(specPath string) (string, error) {
	if specPath != "" {
		return specPath, nil
	}
	if env := os.Getenv(SpecEnv); env != "" {
		return env, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, defaultSpecPath), nil
}

// repoRoot walks up from the working directory to the directory with go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// specValidator is a parsed spec. libopenapi-validator is not documented as
// safe for concurrent use, so calls are serialised; each takes well under a
// millisecond.
type specValidator struct {
	mu sync.Mutex
	v  validator.Validator
}

type specEntry struct {
	once sync.Once
	sv   *specValidator
	dur  time.Duration
	err  error
}

var specs sync.Map // path -> *specEntry

// loadSpec parses the spec at path once per process. loaded is how long the
// parse took when this call did it, else 0.
func loadSpec(path string) (sv *specValidator, loaded time.Duration, err error) {
	e, _ := specs.LoadOrStore(path, &specEntry{})
	entry := e.(*specEntry)
	did := false
	entry.once.Do(func() {
		did = true
		start := time.Now()
		entry.sv, entry.err = parseSpec(path)
		entry.dur = time.Since(start)
	})
	if did {
		loaded = entry.dur
	}
	return entry.sv, loaded, entry.err
}

func parseSpec(path string) (*specValidator, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw, err = applyErrata(raw)
	if err != nil {
		return nil, fmt.Errorf("apply errata: %w", err)
	}
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		return nil, err
	}
	v, errs := validator.NewValidator(doc, vconfig.WithFormatAssertions(),
		vconfig.WithCustomFormat("decimal", checkDecimal))
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &specValidator{v: v}, nil
}

// checkDecimal is the spec's "decimal" string format: prices like "1.1900".
func checkDecimal(v any) error {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	var f json.Number = json.Number(s)
	if _, err := f.Float64(); err != nil || strings.ContainsAny(s, "eE+") {
		return fmt.Errorf("%q is not a decimal", s)
	}
	return nil
}

// specCheck is the validating middleware of one fake.
type specCheck struct {
	t  testing.TB
	sv *specValidator
}

func (c *specCheck) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		c.report("request", r, nil, c.sv.request(cloneWithBody(r, body)))
		rec := &recorder{header: w.Header(), status: http.StatusOK}
		next.ServeHTTP(rec, r) // a dropped connection panics through here, unvalidated
		resp := &http.Response{
			StatusCode: rec.status, Header: rec.header,
			Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		}
		c.report("response", r, rec.body.Bytes(), c.sv.response(cloneWithBody(r, body), resp))
		w.WriteHeader(rec.status)
		_, _ = w.Write(rec.body.Bytes())
	})
}

func (sv *specValidator) request(r *http.Request) []*verrors.ValidationError {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	_, errs := sv.v.ValidateHttpRequestSync(r)
	return errs
}

func (sv *specValidator) response(r *http.Request, resp *http.Response) []*verrors.ValidationError {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	_, errs := sv.v.ValidateHttpResponse(r, resp)
	return errs
}

func cloneWithBody(r *http.Request, body []byte) *http.Request {
	c := r.Clone(r.Context())
	c.Body = io.NopCloser(bytes.NewReader(body))
	return c
}

func (c *specCheck) report(what string, r *http.Request, body []byte, errs []*verrors.ValidationError) {
	if len(errs) == 0 {
		return
	}
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n  - %s: %s", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			fmt.Fprintf(&b, "\n      %s: %s", f.FieldPath, f.Reason)
		}
	}
	if len(body) > 0 {
		fmt.Fprintf(&b, "\n  body: %.500s", body)
	}
	c.t.Errorf("hcloudfake: %s %s: %s violates the Hetzner Cloud API spec:%s", r.Method, r.URL, what, b.String())
}

// recorder holds an answer until it has been validated.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }
