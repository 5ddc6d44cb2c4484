// Package sortie is the Go API of the Sortie coordinator: open a Client,
// Start a run of an agent container on a fresh VM, read its Events, Send it
// follow-up messages, Cancel it, and Wait for its Result. With no bucket and
// no provider configured it runs everything on this machine: an embedded S3
// server and the local provider, whose VMs are vm-supervisor processes
// booted from the same cloud-init user-data a cloud VM gets.
package sortie

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/local"
	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/pkg/protocol"
)

// The public names of the coordinator's types.
type (
	// RunSpec is what to run; see its fields for defaults.
	RunSpec = coordinator.RunSpec
	// Run is a started run.
	Run = coordinator.Run
	// Event is one thing that happened in a run.
	Event = coordinator.Event
	// Result is a run's outcome.
	Result = protocol.Result
	// Limits are container resource limits.
	Limits = protocol.Limits
	// Secret is a string that never prints.
	Secret = protocol.Secret
)

// StoreOptions name an S3-compatible bucket. With no Bucket, the embedded
// store is used.
type StoreOptions struct {
	Endpoint        string
	Region          string
	Bucket          string
	Prefix          string
	PathStyle       bool
	AccessKeyID     string
	SecretAccessKey Secret
}

// Options configure a Client. Every field has a default.
type Options struct {
	// StateDir holds the embedded store's data and the local VMs.
	// Default: $SORTIE_STATE_DIR, else $XDG_STATE_HOME/sortie, else
	// ~/.local/state/sortie.
	StateDir string
	// Store is the bucket; default: the embedded store under StateDir.
	Store StoreOptions
	// Provider is "local" (the default).
	Provider string
	// SupervisorPath is the vm-supervisor binary. Default: beside the
	// running executable.
	SupervisorPath string
	// BootTimeout is how long a VM may take to say hello. Default 5 min.
	BootTimeout time.Duration
	// PollMin and PollMax bound status polling. Defaults 100 ms and 2 s.
	PollMin, PollMax time.Duration
	// Logger receives logs (never secrets). Default: discard.
	Logger *slog.Logger
}

// Client is an open coordinator.
type Client struct {
	*coordinator.Coordinator
	closers []func() error
}

// Open sets up the store and the provider and returns a Client. Close it
// when done: the embedded store and local VMs live as long as the Client.
func Open(ctx context.Context, o Options) (*Client, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir()
	}
	cl := &Client{}
	fail := func(err error) (*Client, error) {
		_ = cl.Close()
		return nil, err
	}
	var sc store.Config
	if o.Store.Bucket == "" {
		emb, err := store.StartEmbedded(ctx, filepath.Join(o.StateDir, "s3"), "127.0.0.1:0")
		if err != nil {
			return fail(fmt.Errorf("start embedded store: %w", err))
		}
		cl.closers = append(cl.closers, func() error { emb.Close(); return nil })
		sc = emb.Config()
	} else {
		sc = store.Config{
			Endpoint: o.Store.Endpoint, Region: o.Store.Region, Bucket: o.Store.Bucket,
			Prefix: o.Store.Prefix, PathStyle: o.Store.PathStyle,
			AccessKeyID: o.Store.AccessKeyID, SecretAccessKey: o.Store.SecretAccessKey,
		}
	}
	s3, err := store.New(sc)
	if err != nil {
		return fail(err)
	}
	var prov coordinator.Provider
	switch o.Provider {
	case "", "local":
		lp := &local.Provider{Dir: filepath.Join(o.StateDir, "vms"), Logger: o.Logger}
		cl.closers = append(cl.closers, func() error { return lp.Shutdown(context.Background()) })
		prov = lp
	default:
		return fail(fmt.Errorf("unknown provider %q: use \"local\"", o.Provider))
	}
	c, err := coordinator.New(coordinator.Config{
		Store: s3, Prefix: sc.Prefix, Provider: prov,
		VMAccess: protocol.StoreAccess{
			Mode: protocol.AccessCredentials, Endpoint: sc.Endpoint, Region: sc.Region,
			Bucket: sc.Bucket, Prefix: sc.Prefix, PathStyle: sc.PathStyle,
			AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey,
		},
		SupervisorPath: o.SupervisorPath, BootTimeout: o.BootTimeout,
		PollMin: o.PollMin, PollMax: o.PollMax, Logger: o.Logger,
	})
	if err != nil {
		return fail(err)
	}
	cl.Coordinator = c
	return cl, nil
}

// Close stops what Open started, last first.
func (c *Client) Close() error {
	var errs []error
	for i := len(c.closers) - 1; i >= 0; i-- {
		errs = append(errs, c.closers[i]())
	}
	c.closers = nil
	return errors.Join(errs...)
}

// DefaultStateDir is where state lives when Options.StateDir is empty.
func DefaultStateDir() string {
	if d := os.Getenv("SORTIE_STATE_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "sortie")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "sortie")
	}
	return filepath.Join(os.TempDir(), "sortie")
}
