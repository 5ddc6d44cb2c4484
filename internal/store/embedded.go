package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/spf13/afero"
)

// Fixed settings of the embedded server.
const (
	EmbeddedBucket = "sortie"
	// The embedded server checks no signature, so its credentials are
	// fixed placeholders; the SDK only needs something to sign with.
	embeddedAccessKeyID     = "sortie-embedded"
	embeddedSecretAccessKey = "sortie-embedded-secret"
)

// Embedded is an S3 server inside this process, for the zero-config default:
// gofakes3 with objects stored as files under a state directory, serving one
// bucket, EmbeddedBucket, on a loopback address.
//
// gofakes3 does not check request signatures, credentials or the expiry of
// presigned URLs: any client that reaches the port can read and write every
// object. That is why StartEmbedded listens on loopback only and refuses any
// other address: the local provider's "VMs" are processes on this machine.
// It also differs from S3 in that a key cannot be both an object and the
// directory of other keys ("a" and "a/b"); the protocol's keys never are.
// Overwrites are atomic as on S3 (see embeddedfs.go). One server at a time
// may use a state directory.
type Embedded struct {
	srv  *http.Server
	cfg  Config
	done chan struct{}
	err  error // of Serve, once done is closed

	mu sync.Mutex
	// fresh holds the connections that have not started a request yet.
	// http.Server.Shutdown waits up to 5 s for them; Close does not.
	fresh map[net.Conn]struct{}
}

// StartEmbedded starts the embedded server with its data under dir (created
// if needed) listening on addr, a loopback host:port; an empty addr means
// 127.0.0.1 on a random free port. It creates the bucket, so the store is
// ready when it returns. ctx bounds the start only: the server runs until
// Close.
func StartEmbedded(ctx context.Context, dir, addr string) (*Embedded, error) {
	if dir == "" {
		return nil, errors.New("start embedded S3: state directory is empty: set a directory to keep objects in")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("start embedded S3: %w", err)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	if err := checkLoopback(addr); err != nil {
		return nil, fmt.Errorf("start embedded S3: %w", err)
	}
	// Temporary files left by a crash are of no use: start afresh.
	spool := filepath.Join(dir, tmpDir)
	if err := os.RemoveAll(spool); err != nil {
		return nil, fmt.Errorf("start embedded S3: %w", err)
	}
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("start embedded S3: %w", err)
	}
	files, err := s3afero.MultiBucket(atomicFs{afero.NewBasePathFs(afero.NewOsFs(), dir)})
	if err != nil {
		return nil, fmt.Errorf("start embedded S3: open %s: %w", dir, err)
	}
	backend := wholeBodies{Backend: files, spool: spool}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("start embedded S3: %w", err)
	}
	e := &Embedded{
		srv: &http.Server{
			Handler:           gofakes3.New(backend).Server(),
			ReadHeaderTimeout: 30 * time.Second,
		},
		cfg: Config{
			Endpoint:        "http://" + ln.Addr().String(),
			Region:          DefaultRegion,
			Bucket:          EmbeddedBucket,
			PathStyle:       true,
			AccessKeyID:     embeddedAccessKeyID,
			SecretAccessKey: embeddedSecretAccessKey,
		},
		done:  make(chan struct{}),
		fresh: make(map[net.Conn]struct{}),
	}
	e.srv.ConnState = e.track
	go func() {
		defer close(e.done)
		if err := e.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			e.err = err
		}
	}()
	c, err := New(e.cfg)
	if err == nil {
		err = c.EnsureBucket(ctx)
	}
	if err != nil {
		_ = e.Close()
		return nil, fmt.Errorf("start embedded S3: %w", err)
	}
	return e, nil
}

// Config returns the settings to reach the server: its endpoint, the bucket
// EmbeddedBucket, path style and placeholder credentials.
func (e *Embedded) Config() Config { return e.cfg }

// Close stops the server, waiting up to 5 seconds for requests under way.
// The data stays in the state directory for the next start.
func (e *Embedded) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- e.srv.Shutdown(ctx) }()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case err = <-shut:
			break wait
		case <-tick.C:
			// A client's spare connection that never sent a request
			// would hold Shutdown for 5 s: close those.
			e.closeFresh()
		}
	}
	if err != nil {
		err = errors.Join(err, e.srv.Close())
	}
	<-e.done
	return errors.Join(err, e.err)
}

func (e *Embedded) track(c net.Conn, state http.ConnState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if state == http.StateNew {
		e.fresh[c] = struct{}{}
	} else {
		delete(e.fresh, c)
	}
}

func (e *Embedded) closeFresh() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for c := range e.fresh {
		_ = c.Close()
		delete(e.fresh, c)
	}
}

// checkLoopback refuses any address whose host is not a loopback IP or
// "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("listen address %q is not a loopback address: the embedded S3 server checks no credentials, so it listens only on 127.0.0.1, ::1 or localhost", addr)
}
