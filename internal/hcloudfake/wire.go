package hcloudfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/hetznercloud/hcloud-go/v2/hcloud/schema"
)

// apiError is an error answer in the API's {"error":{...}} shape.
type apiError struct {
	status  int
	code    string
	message string
	details any
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

// codeStatus is the HTTP status the real API answers with for each error code
// (from the error table of the API documentation).
var codeStatus = map[string]int{
	"json_error":                     http.StatusBadRequest,
	"unauthorized":                   http.StatusUnauthorized,
	"token_readonly":                 http.StatusUnauthorized,
	"forbidden":                      http.StatusForbidden,
	"maintenance":                    http.StatusForbidden,
	"resource_limit_exceeded":        http.StatusForbidden,
	"not_found":                      http.StatusNotFound,
	"method_not_allowed":             http.StatusMethodNotAllowed,
	"uniqueness_error":               http.StatusConflict,
	"conflict":                       http.StatusConflict,
	"deprecated_api_endpoint":        http.StatusGone,
	"resource_unavailable":           http.StatusPreconditionFailed,
	"primary_ip_version_mismatch":    http.StatusPreconditionFailed,
	"invalid_input":                  http.StatusUnprocessableEntity,
	"service_error":                  http.StatusUnprocessableEntity,
	"unsupported_error":              http.StatusUnprocessableEntity,
	"placement_error":                http.StatusUnprocessableEntity,
	"primary_ip_assigned":            http.StatusUnprocessableEntity,
	"primary_ip_datacenter_mismatch": http.StatusUnprocessableEntity,
	"locked":                         http.StatusLocked,
	"protected":                      http.StatusLocked,
	"rate_limit_exceeded":            http.StatusTooManyRequests,
	"server_error":                   http.StatusInternalServerError,
	"bad_gateway":                    http.StatusBadGateway,
	"unavailable":                    http.StatusServiceUnavailable,
	"timeout":                        http.StatusGatewayTimeout,
}

// statusFor returns the HTTP status of an error code; unknown codes are 422.
func statusFor(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusUnprocessableEntity
}

func newError(code, format string, args ...any) *apiError {
	return &apiError{status: statusFor(code), code: code, message: fmt.Sprintf(format, args...)}
}

func notFound(what string) *apiError {
	return newError("not_found", "%s not found", what)
}

// fieldError is one field of an invalid_input answer.
type fieldError struct {
	Name     string   `json:"name"`
	Messages []string `json:"messages,omitempty"`
}

// invalidInput builds an invalid_input error naming every offending field,
// worded like the real API ("invalid input in fields 'a', 'b'").
func invalidInput(fields ...fieldError) *apiError {
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = "'" + f.Name + "'"
	}
	noun := "field"
	if len(fields) > 1 {
		noun = "fields"
	}
	return &apiError{
		status:  http.StatusUnprocessableEntity,
		code:    "invalid_input",
		message: fmt.Sprintf("invalid input in %s %s", noun, strings.Join(names, ", ")),
		details: map[string]any{"fields": fields},
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, newError("server_error", "encode response: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, e *apiError) {
	var raw json.RawMessage
	if e.details != nil {
		raw, _ = json.Marshal(e.details)
	}
	body, _ := json.Marshal(schema.ErrorResponse{Error: schema.Error{
		Code: e.code, Message: e.message, DetailsRaw: raw,
	}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// Pagination defaults of the real API.
const (
	defaultPerPage = 25
	maxPerPage     = 50
)

// page cuts one page out of n items as the page and per_page parameters ask
// and returns the bounds and the meta object. per_page above the maximum is
// capped, as the API documents a maximum rather than an error.
func page(n int, q url.Values) (lo, hi int, meta schema.Meta, err *apiError) {
	p, err := intParam(q, "page", 1)
	if err != nil {
		return 0, 0, meta, err
	}
	per, err := intParam(q, "per_page", defaultPerPage)
	if err != nil {
		return 0, 0, meta, err
	}
	per = min(per, maxPerPage)
	last := max(1, (n+per-1)/per)
	pg := &schema.MetaPagination{Page: p, PerPage: per, LastPage: last, TotalEntries: n}
	if p > 1 {
		pg.PreviousPage = p - 1
	}
	if p < last {
		pg.NextPage = p + 1
	}
	lo = min(n, (p-1)*per)
	hi = min(n, lo+per)
	return lo, hi, schema.Meta{Pagination: pg}, nil
}

func intParam(q url.Values, name string, def int) (int, *apiError) {
	s := q.Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return 0, invalidInput(fieldError{Name: name, Messages: []string{"must be a positive integer"}})
	}
	return v, nil
}

// pathID parses the {id} segment of a path.
func pathID(s string) (int64, *apiError) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, invalidInput(fieldError{Name: "id", Messages: []string{"must be a positive integer"}})
	}
	return id, nil
}

// decodeBody reads a JSON request body into v, answering json_error like the
// real API when it is not valid JSON.
func decodeBody(r *http.Request, v any) *apiError {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		return newError("json_error", "invalid JSON in request body: %v", err)
	}
	return nil
}
