package protocol

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode/utf8"
)

// ErrNotFound is returned by a Store for a key that does not exist.
var ErrNotFound = errors.New("object not found")

// Store is the object store as the protocol needs it: get, put, delete of
// whole objects by key. No listing: every key is computable.
type Store interface {
	// Get returns the object's bytes, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put writes the object; body is read from its start to its end.
	Put(ctx context.Context, key string, body io.ReadSeeker) error
	// Delete removes the object; deleting a missing object succeeds.
	Delete(ctx context.Context, key string) error
}

// VersionError says a message carries a protocol version this side does not
// speak.
type VersionError struct{ Got int }

func (e *VersionError) Error() string {
	return fmt.Sprintf("protocol version %d is not supported: this side speaks version %d; upgrade the older of coordinator and vm-supervisor", e.Got, Version)
}

// CheckVersion returns a *VersionError unless v is a version this package speaks.
func CheckVersion(v int) error {
	if v != Version {
		return &VersionError{Got: v}
	}
	return nil
}

// PutJSON marshals v and writes it at key.
func PutJSON(ctx context.Context, s Store, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("marshal %s: %w", key, err)
	}
	if err := s.Put(ctx, key, bytes.NewReader(b)); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

// GetJSON reads key into v. It first reads only the "v" field and returns a
// *VersionError for a version this package does not speak, so a newer
// message is never half-understood.
func GetJSON(ctx context.Context, s Store, key string, v any) error {
	b, err := s.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	return Decode(b, v)
}

// Decode checks the version field of a JSON message and unmarshals it into v.
func Decode(b []byte, v any) error {
	var head struct {
		V *int `json:"v"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	if head.V == nil {
		return errors.New("decode message: no protocol version field \"v\"")
	}
	if err := CheckVersion(*head.V); err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	return nil
}

// MaxOutboxName is the longest outbox file name accepted, in bytes.
const MaxOutboxName = 255

// ValidOutboxName checks an outbox file name: a relative slash-separated path
// with no empty, "." or ".." element, no backslash and no control character.
// Both sides check it: the supervisor before upload, the host before it
// writes a file to disk.
func ValidOutboxName(name string) error {
	switch {
	case name == "":
		return errors.New("outbox name is empty")
	case len(name) > MaxOutboxName:
		return fmt.Errorf("outbox name is longer than %d bytes", MaxOutboxName)
	case !utf8.ValidString(name):
		return fmt.Errorf("outbox name %q is not valid UTF-8", name)
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("outbox name %q is absolute", name)
	case strings.ContainsAny(name, "\\"):
		return fmt.Errorf("outbox name %q contains a backslash", name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("outbox name %q contains a control character", name)
		}
	}
	for _, el := range strings.Split(name, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("outbox name %q has a %q element", name, el)
		}
	}
	if path.Clean(name) != name {
		return fmt.Errorf("outbox name %q is not clean", name)
	}
	return nil
}
