package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// Store is the object store as the coordinator needs it.
type Store interface {
	protocol.Store
	// Exists reports whether key exists (a HEAD).
	Exists(ctx context.Context, key string) (bool, error)
	// PresignGet returns a GET URL for key that works without credentials
	// until ttl has passed.
	PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error)
	// PresignPut returns a PUT URL for key, likewise.
	PresignPut(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// Provider creates and deletes VMs.
type Provider interface {
	// Name is the provider's name, such as "local" or "hetzner".
	Name() string
	// SelfDestruct is the self-destruct mode its VMs use.
	SelfDestruct() string
	// Create asks for a VM booted from req.UserData. It returns once the
	// provider accepted the VM, not when the VM is up: the supervisor's
	// hello says that.
	Create(ctx context.Context, req CreateRequest) (*VM, error)
	// Delete removes a VM. A VM that is already gone is not an error.
	Delete(ctx context.Context, vm *VM) error
}

// CreateRequest is what the coordinator asks of a provider.
type CreateRequest struct {
	// Name is derived from the run ID, so a retried create cannot make a
	// second VM.
	Name     string
	RunID    string
	UserData []byte
	Labels   map[string]string
	Deadline time.Time
}

// VM is a provider's VM.
type VM struct {
	ID      string
	Name    string
	RunID   string
	Created time.Time
	// Labels, Status, Type and Location are filled in by List.
	Labels   map[string]string
	Status   string
	Type     string
	Location string
}

// SelfDeleter is implemented by providers whose VMs can delete themselves
// (self-destruct mode "delete"): what the VM named name needs for it, or
// nil. It travels only in the sealed bootstrap bundle.
type SelfDeleter interface {
	SelfDelete(name string) *protocol.SelfDelete
}

// Lister is implemented by providers that can list the VMs of an owner
// (by label), for `coordinator ls` and the reaper.
type Lister interface {
	List(ctx context.Context, owner string) ([]*VM, error)
}

// Config configures a Coordinator. Each field documents its default.
type Config struct {
	// Store holds the runs' mailboxes. Required.
	Store Store
	// Prefix is the key prefix of all runs in the store. Default "".
	Prefix string
	// VMAccess is how the VMs reach the store; it travels only inside the
	// sealed bootstrap bundle. Required.
	VMAccess protocol.StoreAccess
	// Provider creates VMs. Required.
	Provider Provider
	// SupervisorPath is the vm-supervisor binary for the VMs. Default: the
	// file "vm-supervisor" beside the running executable.
	SupervisorPath string
	// SupervisorArch is the CPU architecture of SupervisorPath. Default: this machine's.
	SupervisorArch string
	// InstallDocker makes the user-data install Docker (plain images).
	InstallDocker bool
	// BootTimeout is how long a VM may take to say hello. Default 5 min.
	BootTimeout time.Duration
	// DeadlineGrace is how long past a run's VM deadline the coordinator
	// waits for a result before it deletes the VM. Default 2 min.
	DeadlineGrace time.Duration
	// PollMin and PollMax bound the status polling interval: it starts at
	// PollMin after any progress and backs off to PollMax while idle.
	// Defaults 100 ms and 2 s.
	PollMin, PollMax time.Duration
	// Logger receives the coordinator's logs. Default: discard.
	Logger *slog.Logger
	// OwnerID identifies this coordinator in VM labels. Default "sortie".
	OwnerID string
	// Access is how VMs reach the store: AccessPresigned (default: a book
	// of presigned URLs, no credentials on the VM), AccessSTS (temporary
	// credentials narrowed to the run's prefix, from STS) or
	// AccessCredentials (the credentials of VMAccess).
	Access string
	// STS mints the temporary credentials of AccessSTS. Required in that
	// mode.
	STS CredentialIssuer
	// AccessTTL is how long presigned URLs or temporary credentials work;
	// the host renews them at half-life while the run lives, so the VM's
	// access ends within one AccessTTL after the run. Default 15 min.
	AccessTTL time.Duration
	// BookEvents, BookBlobs and BookInbox are how many event, blob and
	// inbox sequence numbers one book covers ahead. Defaults 64, 64, 8.
	BookEvents, BookBlobs, BookInbox int64
}

func isELF(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	magic := make([]byte, 4)
	_, err = io.ReadFull(f, magic)
	return err == nil && string(magic) == "\x7fELF"
}

func (c *Config) setDefaults() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("a store is required"))
	}
	if c.Provider == nil {
		errs = append(errs, errors.New("a provider is required"))
	}
	if c.VMAccess.Bucket == "" || c.VMAccess.Endpoint == "" {
		errs = append(errs, errors.New("VM store access needs an endpoint and a bucket"))
	}
	if c.SupervisorPath == "" {
		c.SupervisorPath = defaultSupervisorPath()
	}
	if fi, err := os.Stat(c.SupervisorPath); err != nil || !fi.Mode().IsRegular() {
		errs = append(errs, fmt.Errorf("vm-supervisor binary %q not found: build it with `make build` or set the supervisor path", c.SupervisorPath))
	} else if !isELF(c.SupervisorPath) {
		errs = append(errs, fmt.Errorf("vm-supervisor binary %q is not a Linux executable (ELF): build it with `make build`", c.SupervisorPath))
	}
	if c.SupervisorArch == "" {
		c.SupervisorArch = hostArch()
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.BootTimeout, 5*time.Minute)
	def(&c.DeadlineGrace, 2*time.Minute)
	def(&c.PollMin, 100*time.Millisecond)
	def(&c.PollMax, 2*time.Second)
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.OwnerID == "" {
		c.OwnerID = "sortie"
	}
	switch c.Access {
	case "":
		c.Access = AccessPresigned
	case AccessPresigned, AccessCredentials:
	case AccessSTS:
		if c.STS == nil {
			errs = append(errs, errors.New("the sts store access mode needs an STS credential issuer"))
		}
	default:
		errs = append(errs, fmt.Errorf("store access mode %q: want %q, %q or %q", c.Access, AccessPresigned, AccessSTS, AccessCredentials))
	}
	def(&c.AccessTTL, 15*time.Minute)
	defN := func(n *int64, v int64) {
		if *n <= 0 {
			*n = v
		}
	}
	defN(&c.BookEvents, 64)
	defN(&c.BookBlobs, 64)
	defN(&c.BookInbox, 8)
	return errors.Join(errs...)
}
