package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// Config configures a supervisor. The zero value of each field means its
// documented default.
type Config struct {
	// BootPath is the boot file written by cloud-init. Required.
	BootPath string
	// WorkDir holds the run's workspace, inbox and outbox. Default /var/lib/sortie.
	WorkDir string
	// SelfDestruct overrides the boot file's mode ("exit", "poweroff" or
	// "delete").
	SelfDestruct string
	// NoPowerOff never powers the machine off: where the mode says power
	// off, the supervisor just ends. The local provider sets it, its VMs
	// being processes on the developer's own host.
	NoPowerOff bool
	// Runtime runs containers. Default: the Docker engine from the
	// environment, whose containers are cut off from Metadata before any
	// starts. A Runtime set here is the caller's to guard (tests set one).
	Runtime Runtime
	// Metadata is the IPv4 address of the cloud metadata service that
	// containers must not reach. Default DefaultMetadataAddr. MetadataOff
	// ("off") installs no guard: the local provider sets it, its VMs being
	// processes on the developer's own host.
	Metadata string
	// OpenStore opens the store described by the bundle. Default: S3.
	OpenStore func(context.Context, protocol.StoreAccess) (protocol.Store, error)
	// HTTPClient fetches the bootstrap bundle. Default: a client with a 30 s timeout.
	HTTPClient *http.Client
	// Logger receives the supervisor's logs (never a secret). Default: discard.
	Logger *slog.Logger
	// Version is reported in the hello.
	Version string
	// Heartbeat is the longest time between two status writes. Default 10 s.
	Heartbeat time.Duration
	// InboxPoll is how often an empty inbox is checked. Default 1 s.
	InboxPoll time.Duration
	// EventBatch is how long the first of a burst of events waits for
	// others to share its flush. Default 50 ms.
	EventBatch time.Duration
	// LogFlush is the longest a log line waits before it is sent. Default 250 ms.
	LogFlush time.Duration
	// LogChunk is the largest log chunk in bytes. Default 128 KiB.
	LogChunk int
	// OutboxRescan is how often the outbox is rescanned besides inotify. Default 2 s.
	OutboxRescan time.Duration
	// BootstrapTimeout bounds the bundle fetch. Default 5 min.
	BootstrapTimeout time.Duration
	// PowerOff powers the VM off. Default: systemctl poweroff.
	PowerOff func() error

	started time.Time
}

func (c *Config) setDefaults() error {
	if c.BootPath == "" {
		return errors.New("supervisor: boot file path is required")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Metadata == "" {
		c.Metadata = DefaultMetadataAddr
	}
	if c.Metadata != MetadataOff {
		if ip := net.ParseIP(c.Metadata); ip == nil || ip.To4() == nil {
			return fmt.Errorf("supervisor: metadata address %q is neither an IPv4 address nor %q", c.Metadata, MetadataOff)
		}
	}
	if c.WorkDir == "" {
		c.WorkDir = "/var/lib/sortie"
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.OpenStore == nil {
		c.OpenStore = openS3
	}
	if c.PowerOff == nil {
		c.PowerOff = func() error { return exec.Command("systemctl", "poweroff").Run() }
	}
	def(&c.Heartbeat, 10*time.Second)
	def(&c.InboxPoll, time.Second)
	def(&c.EventBatch, 50*time.Millisecond)
	def(&c.LogFlush, 250*time.Millisecond)
	def(&c.OutboxRescan, 2*time.Second)
	def(&c.BootstrapTimeout, 5*time.Minute)
	if c.LogChunk <= 0 {
		c.LogChunk = 128 << 10
	}
	if c.started.IsZero() {
		c.started = time.Now()
	}
	return nil
}

// Run runs the run described by the boot file to its end, then
// self-destructs. It returns when the run is over; an error means the run
// could not even be claimed or its result could not be written.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	b, err := os.ReadFile(cfg.BootPath)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBoot, err)
	}
	var boot protocol.Boot
	if err := protocol.Decode(b, &boot); err != nil {
		return fmt.Errorf("%w %s: %w", ErrBoot, cfg.BootPath, err)
	}
	mode := boot.SelfDestruct
	if cfg.SelfDestruct != "" {
		mode = cfg.SelfDestruct
	}
	switch mode {
	case protocol.SelfDestructExit, protocol.SelfDestructPoweroff, protocol.SelfDestructDelete:
	default:
		return fmt.Errorf("%w: unknown self-destruct mode %q (want %q, %q or %q)", ErrBoot, mode,
			protocol.SelfDestructPoweroff, protocol.SelfDestructDelete, protocol.SelfDestructExit)
	}
	// The VM deadline is enforced on the local clock, whatever the store does.
	dctx, cancel := context.WithDeadline(ctx, boot.Deadline)
	defer cancel()
	r := &run{cfg: &cfg, boot: &boot, log: cfg.Logger.With("run", boot.RunID)}
	runErr := r.run(dctx)
	if runErr != nil {
		r.log.Error("run failed", "err", runErr)
	}
	r.selfDestruct(mode)
	return runErr
}

func (r *run) selfDestruct(mode string) {
	dir := filepath.Join(r.cfg.WorkDir, "runs", r.boot.RunID)
	if err := os.RemoveAll(dir); err != nil {
		r.log.Warn("wipe run directory", "err", err)
	}
	if mode == protocol.SelfDestructExit {
		r.log.Info("self-destruct: exit")
		return
	}
	if mode == protocol.SelfDestructDelete {
		err := deleteSelf(context.Background(), r.selfDelete, r.cfg.HTTPClient)
		if err == nil {
			r.log.Info("self-destruct: server deleted")
			return
		}
		r.log.Error("self-destruct: deleting the server failed; powering off instead", "err", err)
	}
	if r.cfg.NoPowerOff {
		r.log.Info("self-destruct: power off skipped (--no-power-off)")
		return
	}
	r.log.Info("self-destruct: power off")
	if err := r.cfg.PowerOff(); err != nil {
		r.log.Error("power off failed; the dead-man's switch and the reaper remain", "err", err)
	}
}

// fetchBundle gets the sealed bundle over its presigned URL, retrying with
// backoff until the bootstrap timeout.
func (r *run) fetchBundle(ctx context.Context) (*protocol.Bootstrap, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.BootstrapTimeout)
	defer cancel()
	backoff := 250 * time.Millisecond
	for {
		sealed, err := httpGet(ctx, r.cfg.HTTPClient, r.boot.BootstrapURL)
		if err == nil {
			b, err := protocol.Open(r.boot.BootstrapKey, r.boot.RunID, sealed)
			if err == nil {
				r.keepBundle(sealed)
			}
			return b, err
		}
		var fe *errFetch
		if errors.As(err, &fe) && fe.status == http.StatusNotFound {
			// Deleted after our own claim: a restarted supervisor opens the
			// copy it kept, so it can still write a result.
			if sealed, rerr := os.ReadFile(r.bundleCopy()); rerr == nil {
				return protocol.Open(r.boot.BootstrapKey, r.boot.RunID, sealed)
			}
			// Deleted after an earlier claim (this supervisor restarted), or
			// never written: waiting will not bring it back.
			return nil, fmt.Errorf("fetch bootstrap bundle: %w: it was already claimed or never written", ErrBundleGone)
		}
		r.log.Warn("bootstrap bundle fetch failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("fetch bootstrap bundle: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

// bundleCopy is where the supervisor keeps the sealed bundle it fetched,
// readable by root only, wiped with the run directory at self-destruct.
func (r *run) bundleCopy() string {
	return filepath.Join(r.cfg.WorkDir, "runs", r.boot.RunID, "bundle.sealed")
}

func (r *run) keepBundle(sealed []byte) {
	p := r.bundleCopy()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
		err = os.WriteFile(p, sealed, 0o600)
		if err != nil {
			r.log.Warn("keep a copy of the bundle", "err", err)
		}
	}
}

// ErrBundleGone means the bootstrap bundle no longer exists.
var ErrBundleGone = errors.New("the bootstrap bundle is gone")

// ErrBoot marks an error that no restart can mend: a missing or invalid
// boot file. The service manager must not restart the supervisor for it.
var ErrBoot = errors.New("boot file")

// errFetch is a non-2xx answer from a presigned URL; it never carries the URL.
type errFetch struct{ status int }

func (e *errFetch) Error() string { return fmt.Sprintf("HTTP %d", e.status) }

func httpGet(ctx context.Context, c *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, errors.New("bad bootstrap URL")
	}
	resp, err := c.Do(req)
	if err != nil {
		// url.Error includes the URL, which is a bearer credential: drop it.
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("GET bootstrap bundle: %w", ue.Unwrap())
		}
		return nil, errors.New("GET bootstrap bundle failed")
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, &errFetch{status: resp.StatusCode}
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

func arch() string { return runtime.GOARCH }
