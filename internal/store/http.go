package store

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/sortie/sortie/pkg/protocol"
)

// HTTPError is a non-2xx answer to a request on a presigned URL. It matches
// protocol.ErrNotFound with errors.Is for a 404 other than NoSuchBucket.
type HTTPError struct {
	Method string
	// URL is the request URL without its query, so that the signature
	// (a bearer credential) never reaches an error message or a log.
	URL        string
	StatusCode int
	// Code and Message come from the S3 error document, if there was one:
	// "NoSuchKey", "AccessDenied", "SignatureDoesNotMatch", ...
	Code    string
	Message string
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Is makes errors.Is(err, protocol.ErrNotFound) true for a missing object.
func (e *HTTPError) Is(target error) bool {
	return target == protocol.ErrNotFound && e.StatusCode == http.StatusNotFound && e.Code != "NoSuchBucket"
}

// HTTPGet fetches a presigned GET URL with http.DefaultClient and returns the
// body. A missing object gives an error matching protocol.ErrNotFound;
// other refusals give an *HTTPError.
func HTTPGet(ctx context.Context, rawURL string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: bad URL", redactURL(rawURL))
	}
	resp, err := do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, responseError(req, resp)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: read body: %w", redactURL(rawURL), err)
	}
	return b, nil
}

// HTTPPut uploads body, from its start to its end, to a presigned PUT URL
// with http.DefaultClient. A refusal gives an *HTTPError.
func HTTPPut(ctx context.Context, rawURL string, body io.ReadSeeker) error {
	n, err := body.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("PUT %s: size body: %w", redactURL(rawURL), err)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("PUT %s: rewind body: %w", redactURL(rawURL), err)
	}
	var rd io.Reader = io.NopCloser(body)
	if n == 0 {
		rd = http.NoBody // else a zero length would read as "unknown"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, rawURL, rd)
	if err != nil {
		return fmt.Errorf("PUT %s: bad URL", redactURL(rawURL))
	}
	req.ContentLength = n
	if n > 0 {
		req.GetBody = func() (io.ReadCloser, error) {
			if _, err := body.Seek(0, io.SeekStart); err != nil {
				return nil, err
			}
			return io.NopCloser(body), nil
		}
	}
	resp, err := do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return responseError(req, resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return nil
}

// do sends req and strips the URL's query from a transport error.
func do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s: %w", req.Method, redactURL(req.URL.String()), err)
	}
	return resp, nil
}

func responseError(req *http.Request, resp *http.Response) error {
	e := &HTTPError{Method: req.Method, URL: redactURL(req.URL.String()), StatusCode: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var doc struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if len(bytes.TrimSpace(b)) > 0 && xml.Unmarshal(b, &doc) == nil {
		e.Code, e.Message = doc.Code, doc.Message
	}
	return e
}

// redactURL drops the query, the fragment and any user info of a URL: for a
// presigned URL that is where its signature and session token are.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparseable URL]"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return u.String()
}
