package store

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/sortie/sortie/pkg/protocol"
)

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"http://127.0.0.1:9000/b/k?X-Amz-Signature=abc&X-Amz-Security-Token=tok", "http://127.0.0.1:9000/b/k"},
		{"https://user:pw@h/k#frag", "https://h/k"},
		{"https://h/runs/r1/inbox/0000000001.json?", "https://h/runs/r1/inbox/0000000001.json"},
		{"%zz", "[unparseable URL]"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHTTPErrorIs(t *testing.T) {
	tests := []struct {
		err  *HTTPError
		want bool
	}{
		{&HTTPError{StatusCode: http.StatusNotFound, Code: "NoSuchKey"}, true},
		{&HTTPError{StatusCode: http.StatusNotFound}, true},
		{&HTTPError{StatusCode: http.StatusNotFound, Code: "NoSuchBucket"}, false},
		{&HTTPError{StatusCode: http.StatusForbidden, Code: "AccessDenied"}, false},
	}
	for _, tt := range tests {
		if got := errors.Is(tt.err, protocol.ErrNotFound); got != tt.want {
			t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestHTTPTransportErrorHidesQuery(t *testing.T) {
	// Port 1 on loopback: nothing listens there.
	const u = "http://127.0.0.1:1/bucket/key?X-Amz-Signature=do-not-leak"
	_, err := HTTPGet(context.Background(), u)
	if err == nil {
		t.Fatal("HTTPGet succeeded")
	}
	if strings.Contains(err.Error(), "do-not-leak") {
		t.Errorf("HTTPGet error %q carries the signature", err)
	}
	err = HTTPPut(context.Background(), u, strings.NewReader("x"))
	if err == nil || strings.Contains(err.Error(), "do-not-leak") {
		t.Errorf("HTTPPut error = %v, want an error without the signature", err)
	}
}
