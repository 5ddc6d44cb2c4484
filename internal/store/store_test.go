package store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/internal/testenv"
	"github.com/sortie/sortie/pkg/protocol"
)

// backend is one S3 implementation the suite runs against, with what it is
// known to do differently.
type backend struct {
	name string
	// config returns the config of an empty bucket for this test.
	config func(t *testing.T) store.Config
	// checksSignatures: the server refuses tampered and expired presigned
	// URLs. gofakes3 checks neither.
	checksSignatures bool
}

var backends = []backend{
	{
		name: "embedded",
		config: func(t *testing.T) store.Config {
			return startEmbedded(t).Config()
		},
		checksSignatures: false,
	},
	{
		name:             "minio",
		config:           func(t *testing.T) store.Config { return testenv.MinIO(t) },
		checksSignatures: true,
	},
}

func startEmbedded(t *testing.T) *store.Embedded {
	t.Helper()
	e, err := store.StartEmbedded(testContext(t), t.TempDir(), "")
	if err != nil {
		t.Fatalf("StartEmbedded: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newS3(t *testing.T, cfg store.Config) *store.S3 {
	t.Helper()
	s, err := store.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// suite is the behaviour every backend must show, one case per test.
var suite = []struct {
	name string
	run  func(t *testing.T, b backend, cfg store.Config)
}{
	{"PutGetDelete", testPutGetDelete},
	{"GetMissing", testGetMissing},
	{"DeleteMissing", testDeleteMissing},
	{"MissingBucket", testMissingBucket},
	{"Exists", testExists},
	{"PutRewinds", testPutRewinds},
	{"EmptyObject", testEmptyObject},
	{"RunPrefixKeys", testRunPrefixKeys},
	{"Binary5MiB", testBinary5MiB},
	{"PresignGet", testPresignGet},
	{"PresignGetMissing", testPresignGetMissing},
	{"PresignPut", testPresignPut},
	{"PresignTampered", testPresignTampered},
	{"PresignExpired", testPresignExpired},
	{"PutIfAbsent", testPutIfAbsent},
	{"PutIfAbsentRace", testPutIfAbsentRace},
	{"EnsureBucket", testEnsureBucket},
	{"WrongCredentials", testWrongCredentials},
	{"OverwriteIsAtomic", testOverwriteIsAtomic},
	{"CutOffUpload", testCutOffUpload},
}

func TestBackends(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range suite {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, b, b.config(t))
				})
			}
		})
	}
}

func testPutGetDelete(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	for _, body := range []string{"first", "second, longer than the first"} {
		if err := s.Put(ctx, "k/v.json", strings.NewReader(body)); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := s.Get(ctx, "k/v.json")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if string(got) != body {
			t.Errorf("Get = %q, want %q", got, body)
		}
	}
	if err := s.Delete(ctx, "k/v.json"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "k/v.json"); !errors.Is(err, protocol.ErrNotFound) {
		t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
	}
}

func testGetMissing(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	_, err := s.Get(ctx, "no/such/key")
	if !errors.Is(err, protocol.ErrNotFound) {
		t.Fatalf("Get: err = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), `"no/such/key"`) {
		t.Errorf("error %q does not name the key", err)
	}
	// A missing key below an existing "directory" is missing too.
	if err := s.Put(ctx, "dir/file", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"dir", "dir/", "dir/other"} {
		if _, err := s.Get(ctx, key); !errors.Is(err, protocol.ErrNotFound) {
			t.Errorf("Get(%q): err = %v, want ErrNotFound", key, err)
		}
	}
}

func testDeleteMissing(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	if err := s.Delete(ctx, "never/written"); err != nil {
		t.Errorf("Delete of a missing key: %v, want nil", err)
	}
}

func testMissingBucket(t *testing.T, _ backend, cfg store.Config) {
	ctx := testContext(t)
	cfg.Bucket = "no-such-bucket-" + strings.ToLower(rand.Text()[:8])
	s := newS3(t, cfg)
	_, err := s.Get(ctx, "k")
	if err == nil || errors.Is(err, protocol.ErrNotFound) {
		t.Errorf("Get in a missing bucket: err = %v, want an error that is not ErrNotFound", err)
	}
	if err := s.Put(ctx, "k", strings.NewReader("x")); err == nil {
		t.Error("Put in a missing bucket: err = nil, want an error")
	}
	if err := s.Delete(ctx, "k"); err == nil {
		t.Error("Delete in a missing bucket: err = nil, want an error")
	}
}

func testExists(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	check := func(when string, want bool) {
		t.Helper()
		got, err := s.Exists(ctx, "e/key")
		if err != nil {
			t.Fatalf("Exists %s: %v", when, err)
		}
		if got != want {
			t.Errorf("Exists %s = %v, want %v", when, got, want)
		}
	}
	check("before Put", false)
	if err := s.Put(ctx, "e/key", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	check("after Put", true)
	if err := s.Delete(ctx, "e/key"); err != nil {
		t.Fatal(err)
	}
	check("after Delete", false)
}

func testPutRewinds(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	r := strings.NewReader("whole body")
	_, _ = io.Copy(io.Discard, r) // leave the reader at its end
	if err := s.Put(ctx, "rewind", r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "rewind")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "whole body" {
		t.Errorf("Get = %q, want %q", got, "whole body")
	}
}

func testEmptyObject(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	if err := s.Put(ctx, "empty", bytes.NewReader(nil)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "empty")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("Get = %q, want empty", got)
	}
	u, err := s.PresignPut(ctx, "empty-presigned", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.HTTPPut(ctx, u, bytes.NewReader(nil)); err != nil {
		t.Fatalf("HTTPPut of an empty body: %v", err)
	}
	if ok, err := s.Exists(ctx, "empty-presigned"); err != nil || !ok {
		t.Errorf("Exists after presigned PUT of an empty body = %v, %v; want true", ok, err)
	}
}

func testRunPrefixKeys(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	keys := protocol.NewRunKeys("sortie/prod", "01JH4Z8Q5V6X7Y8Z9A0B1C2D3E")
	for _, key := range []string{
		keys.Spec(), keys.Bootstrap(), keys.Status(), keys.Result(),
		keys.Event(1), keys.Event(1234567890), keys.Inbox(7), keys.Blob(42),
		protocol.SupervisorKey("sortie/prod", "arm64", strings.Repeat("ab", 32)),
	} {
		body := []byte(`{"v":1,"key":"` + key + `"}`)
		if err := s.Put(ctx, key, bytes.NewReader(body)); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !bytes.Equal(got, body) {
			t.Errorf("Get(%q) = %q, want %q", key, got, body)
		}
	}
	// The sequence-numbered keys of the protocol, read back through it.
	want := map[string]any{"v": float64(protocol.Version), "seq": float64(3)}
	if err := protocol.PutJSON(ctx, s, keys.Event(3), want); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := protocol.GetJSON(ctx, s, keys.Event(3), &got); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("GetJSON = %v, want %v", got, want)
	}
}

func testBinary5MiB(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	body := randomBytes(t, 5<<20)
	if err := s.Put(ctx, "blobs/big", bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, "blobs/big")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Errorf("Get: %d bytes back, not the %d bytes written", len(got), len(body))
	}

	put, err := s.PresignPut(ctx, "blobs/big-presigned", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.HTTPPut(ctx, put, bytes.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	get, err := s.PresignGet(ctx, "blobs/big-presigned", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	got, err = store.HTTPGet(ctx, get)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, body) {
		t.Errorf("HTTPGet: %d bytes back, not the %d bytes written", len(got), len(body))
	}
}

func testPresignGet(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	if err := s.Put(ctx, "p/get", strings.NewReader("presigned")); err != nil {
		t.Fatal(err)
	}
	u, err := s.PresignGet(ctx, "p/get", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// A plain client, no SDK, no header of our own.
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || string(got) != "presigned" {
		t.Errorf("GET presigned URL = %d %q, want 200 %q", resp.StatusCode, got, "presigned")
	}
	got, err = store.HTTPGet(ctx, u)
	if err != nil || string(got) != "presigned" {
		t.Errorf("HTTPGet = %q, %v; want %q", got, err, "presigned")
	}
}

func testPresignGetMissing(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	u, err := s.PresignGet(ctx, "inbox/0000000009.json", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.HTTPGet(ctx, u)
	if !errors.Is(err, protocol.ErrNotFound) {
		t.Fatalf("HTTPGet of a missing key: err = %v, want ErrNotFound", err)
	}
	var he *store.HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound || he.Code != "NoSuchKey" {
		t.Errorf("HTTPGet of a missing key: err = %#v, want an *HTTPError 404 NoSuchKey", err)
	}
	if strings.Contains(err.Error(), "Signature") || strings.Contains(err.Error(), "?") {
		t.Errorf("error %q carries the URL's query", err)
	}
	if !strings.Contains(err.Error(), "inbox/0000000009.json") {
		t.Errorf("error %q does not name the key", err)
	}
}

func testPresignPut(t *testing.T, b backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	u, err := s.PresignPut(ctx, "p/put", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// A plain client, no SDK, no header of our own.
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, strings.NewReader("uploaded"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT presigned URL = %d, want 200", resp.StatusCode)
	}
	if got, err := s.Get(ctx, "p/put"); err != nil || string(got) != "uploaded" {
		t.Errorf("Get = %q, %v; want %q", got, err, "uploaded")
	}
	// Rewriting the same key with the same URL (a retried write).
	if err := store.HTTPPut(ctx, u, strings.NewReader("uploaded again")); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get(ctx, "p/put"); err != nil || string(got) != "uploaded again" {
		t.Errorf("Get = %q, %v; want %q", got, err, "uploaded again")
	}
	// A presigned PUT is for its key only.
	other := strings.Replace(u, "/p/put?", "/p/other?", 1)
	err = store.HTTPPut(ctx, other, strings.NewReader("x"))
	if b.checksSignatures {
		if err == nil {
			t.Error("PUT to another key with a presigned URL succeeded")
		}
	} else if err != nil {
		t.Errorf("embedded: PUT to another key: %v; gofakes3 checks no signature, want success", err)
	}
}

func testPresignTampered(t *testing.T, b backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	if err := s.Put(ctx, "p/t", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	raw, err := s.PresignGet(ctx, "p/t", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(raw)
	q := u.Query()
	q.Set("X-Amz-Signature", strings.Repeat("0", 64))
	u.RawQuery = q.Encode()
	_, err = store.HTTPGet(ctx, u.String())
	if b.checksSignatures {
		var he *store.HTTPError
		if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
			t.Errorf("GET with a tampered signature: err = %v, want 403", err)
		}
	} else if err != nil {
		t.Errorf("GET with a tampered signature: err = %v; gofakes3 checks no signature, want success", err)
	}
}

func testPresignExpired(t *testing.T, b backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	if err := s.Put(ctx, "p/exp", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	u, err := s.PresignGet(ctx, "p/exp", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// X-Amz-Date has one-second resolution; wait until the URL is past
	// its expiry on any reading.
	time.Sleep(2100 * time.Millisecond)
	_, err = store.HTTPGet(ctx, u)
	if b.checksSignatures {
		var he *store.HTTPError
		if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
			t.Errorf("GET with an expired URL: err = %v, want 403", err)
		}
	} else if err != nil {
		t.Errorf("GET with an expired URL: err = %v; gofakes3 does not check expiry, want success", err)
	}
}

func testPutIfAbsent(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	created, err := s.PutIfAbsent(ctx, "claim", strings.NewReader("first"))
	if err != nil || !created {
		t.Fatalf("first PutIfAbsent = %v, %v; want true, nil", created, err)
	}
	created, err = s.PutIfAbsent(ctx, "claim", strings.NewReader("second"))
	if err != nil || created {
		t.Fatalf("second PutIfAbsent = %v, %v; want false, nil", created, err)
	}
	if got, err := s.Get(ctx, "claim"); err != nil || string(got) != "first" {
		t.Errorf("Get = %q, %v; want %q", got, err, "first")
	}
	if err := s.Delete(ctx, "claim"); err != nil {
		t.Fatal(err)
	}
	created, err = s.PutIfAbsent(ctx, "claim", strings.NewReader("third"))
	if err != nil || !created {
		t.Errorf("PutIfAbsent after Delete = %v, %v; want true, nil", created, err)
	}
}

func testPutIfAbsentRace(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	const n = 8
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		errs    []error
	)
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf("writer %d", i)
			created, err := s.PutIfAbsent(ctx, "race", strings.NewReader(body))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
			if created {
				winners = append(winners, body)
			}
		})
	}
	wg.Wait()
	// S3 may answer 409 ConditionalRequestConflict to a write racing
	// another; that is an error, never a second winner.
	if len(winners) != 1 {
		t.Fatalf("%d writers created the key (%v), want exactly 1; errors: %v", len(winners), winners, errs)
	}
	if got, err := s.Get(ctx, "race"); err != nil || string(got) != winners[0] {
		t.Errorf("Get = %q, %v; want the winner's %q", got, err, winners[0])
	}
}

func testEnsureBucket(t *testing.T, _ backend, cfg store.Config) {
	ctx := testContext(t)
	if err := newS3(t, cfg).EnsureBucket(ctx); err != nil {
		t.Fatalf("EnsureBucket on an existing bucket: %v", err)
	}
	cfg.Bucket += "-new"
	s := newS3(t, cfg)
	for range 2 {
		if err := s.EnsureBucket(ctx); err != nil {
			t.Fatalf("EnsureBucket on a new bucket: %v", err)
		}
	}
	if err := s.Put(ctx, "k", strings.NewReader("x")); err != nil {
		t.Errorf("Put in the new bucket: %v", err)
	}
}

func testWrongCredentials(t *testing.T, b backend, cfg store.Config) {
	ctx := testContext(t)
	const secret = "wrong-secret-that-must-not-leak"
	cfg.SecretAccessKey = secret
	s := newS3(t, cfg)
	_, err := s.Get(ctx, "k")
	if !b.checksSignatures {
		// gofakes3 ignores credentials: the key is just missing.
		if !errors.Is(err, protocol.ErrNotFound) {
			t.Errorf("Get with a wrong secret: err = %v; gofakes3 checks no credential, want ErrNotFound", err)
		}
		return
	}
	if err == nil || errors.Is(err, protocol.ErrNotFound) {
		t.Fatalf("Get with a wrong secret: err = %v, want an error that is not ErrNotFound", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q carries the secret", err)
	}
	if err := s.Put(ctx, "k", strings.NewReader("x")); err == nil {
		t.Error("Put with a wrong secret succeeded")
	} else if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q carries the secret", err)
	}
}

// testOverwriteIsAtomic: a reader never sees a torn object while the key is
// rewritten, as the host polls a status object the supervisor rewrites.
func testOverwriteIsAtomic(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	versions := [][]byte{bytes.Repeat([]byte("a"), 256<<10), bytes.Repeat([]byte("b"), 256<<10)}
	if err := s.Put(ctx, "status.json", bytes.NewReader(versions[0])); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := s.Put(ctx, "status.json", bytes.NewReader(versions[i%2])); err != nil {
				t.Errorf("Put: %v", err)
				return
			}
		}
	})
	defer wg.Wait()
	defer close(stop)
	for range 100 {
		got, err := s.Get(ctx, "status.json")
		if err != nil {
			t.Fatalf("Get during overwrites: %v", err)
		}
		if !bytes.Equal(got, versions[0]) && !bytes.Equal(got, versions[1]) {
			t.Fatalf("Get during overwrites: %d bytes that are neither version", len(got))
		}
	}
}

// testCutOffUpload: an upload that ends before its Content-Length leaves the
// object as it was.
func testCutOffUpload(t *testing.T, _ backend, cfg store.Config) {
	ctx, s := testContext(t), newS3(t, cfg)
	if err := s.Put(ctx, "result.json", strings.NewReader("old")); err != nil {
		t.Fatal(err)
	}
	raw, err := s.PresignPut(ctx, "result.json", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 100000\r\n\r\n", u.RequestURI(), u.Host)
	_, _ = conn.Write(bytes.Repeat([]byte("x"), 50000))
	_ = conn.(*net.TCPConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.Copy(io.Discard, conn) // until the server gives up on the request
	got, err := s.Get(ctx, "result.json")
	if err != nil || string(got) != "old" {
		t.Errorf("Get after a cut-off upload = %.20q (%d bytes), %v; want %q", got, len(got), err, "old")
	}
}
