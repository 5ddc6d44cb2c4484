package coordinator

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/sortie/sortie/internal/cloudinit"
	"github.com/sortie/sortie/pkg/protocol"
)

// Coordinator starts runs on fresh VMs and follows them to their result.
// It keeps no state of its own: the store and the provider hold it all.
type Coordinator struct {
	cfg Config

	supMu  sync.Mutex
	supKey string // content-addressed key of the uploaded supervisor
	supSHA string
}

// New returns a Coordinator; it checks cfg and reports every problem at once.
func New(cfg Config) (*Coordinator, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("coordinator config: %w", err)
	}
	return &Coordinator{cfg: cfg}, nil
}

// Provider returns the coordinator's provider.
func (c *Coordinator) Provider() Provider { return c.cfg.Provider }

// NewRunID mints a sortable run ID: a lower-case ULID, usable in keys and in
// server names.
func NewRunID(t time.Time) string {
	return strings.ToLower(ulid.MustNew(ulid.Timestamp(t), rand.Reader).String())
}

// VMName is the VM name of a run: derived from the run ID, so a retried
// create cannot make a second VM.
func VMName(runID string) string { return "sortie-" + runID }

// Coordinator-side phases, reported as events with Source "coordinator".
const (
	PhaseStoreWrites = "store-writes" // spec, workspace, supervisor, bundle
	PhaseRender      = "render"       // user-data
	PhaseVMCreate    = "vm-create"    // the provider's create call
	PhaseVMBoot      = "vm-boot"      // create returned -> hello seen
)

// Start validates spec, writes the run to the store, renders the user-data
// and asks the provider for a VM. It returns once the VM is asked for; the
// returned Run streams what happens next. Nothing is left behind when Start
// fails.
func (c *Coordinator) Start(ctx context.Context, spec RunSpec) (*Run, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	s := spec.withDefaults()
	started := time.Now()
	id := NewRunID(started)
	s.OutboxDir = strings.ReplaceAll(s.OutboxDir, "{run}", id)
	if err := CheckWritableDir(s.OutboxDir); err != nil {
		return nil, err
	}
	keys := protocol.NewRunKeys(c.cfg.Prefix, id)
	deadline := started.Add(s.VMDeadline)
	r := newRun(c, id, keys, &s, started, deadline)
	log := c.cfg.Logger.With("run", id)

	// 1. Store writes. Until the VM is asked for, a failure removes what
	// was written (the supervisor binary is shared and stays).
	t0 := time.Now()
	cleanup := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for _, k := range []string{keys.Bootstrap(), keys.Spec(), keys.Workspace()} {
			if err := c.cfg.Store.Delete(dctx, k); err != nil {
				log.Warn("clean up after a failed start", "key", k, "err", err)
			}
		}
	}
	hasWS := s.Workspace != ""
	if hasWS {
		var buf bytes.Buffer
		if err := archiveDir(s.Workspace, &buf); err != nil {
			return nil, fmt.Errorf("pack workspace %q: %w", s.Workspace, err)
		}
		if err := c.cfg.Store.Put(ctx, keys.Workspace(), bytes.NewReader(buf.Bytes())); err != nil {
			cleanup()
			return nil, fmt.Errorf("upload workspace: %w", err)
		}
	}
	if err := protocol.PutJSON(ctx, c.cfg.Store, keys.Spec(), s.protocolSpec(id, started, deadline, hasWS)); err != nil {
		cleanup()
		return nil, fmt.Errorf("write spec: %w", err)
	}
	supKey, supSHA, err := c.ensureSupervisor(ctx)
	if err != nil {
		cleanup()
		return nil, err
	}
	bkey, err := protocol.NewBootstrapKey()
	if err != nil {
		cleanup()
		return nil, err
	}
	access := c.cfg.VMAccess
	access.Prefix = c.cfg.Prefix
	switch c.cfg.Access {
	case AccessSTS:
		creds, err := c.issue(ctx, keys, id)
		if err != nil {
			cleanup()
			return nil, err
		}
		// Not the host's credentials: temporary ones for this run's
		// prefix only.
		access.Mode = AccessSTS
		access.AccessKeyID, access.SecretAccessKey, access.SessionToken = creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken
		access.Expires = creds.Expires
		r.creds = creds
	case AccessPresigned:
		w := bookWindow{eventFrom: 1, blobFrom: 1, inboxFrom: 1}
		book, err := c.signBook(ctx, keys, w)
		if err != nil {
			cleanup()
			return nil, err
		}
		// No credentials leave the host: only the URLs of this run.
		access = protocol.StoreAccess{Mode: AccessPresigned, Prefix: c.cfg.Prefix, Book: book, Expires: book.Expires}
		r.book, r.bookFrom = book, w
	}
	bundle := &protocol.Bootstrap{V: protocol.Version, RunID: id, Store: access, Secrets: s.Secrets, Registry: s.Registry}
	if sd, ok := c.cfg.Provider.(SelfDeleter); ok {
		bundle.SelfDelete = sd.SelfDelete(VMName(id))
	}
	sealed, err := protocol.Seal(bkey, bundle)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("seal bootstrap bundle: %w", err)
	}
	if err := c.cfg.Store.Put(ctx, keys.Bootstrap(), bytes.NewReader(sealed)); err != nil {
		cleanup()
		return nil, fmt.Errorf("write bootstrap bundle: %w", err)
	}
	supURL, err := c.cfg.Store.PresignGet(ctx, supKey, c.cfg.BootTimeout)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("presign supervisor: %w", err)
	}
	bootURL, err := c.cfg.Store.PresignGet(ctx, keys.Bootstrap(), c.cfg.BootTimeout)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("presign bootstrap bundle: %w", err)
	}
	r.phase(PhaseStoreWrites, time.Since(t0))

	// 2. User-data.
	t0 = time.Now()
	ud, err := cloudinit.Render(cloudinit.Params{
		SupervisorURL: supURL, SupervisorSHA256: supSHA, InstallDocker: c.cfg.InstallDocker,
		Boot: protocol.Boot{
			V: protocol.Version, RunID: id, BootstrapURL: bootURL, BootstrapKey: bkey,
			Deadline: deadline.UTC(), SelfDestruct: c.cfg.Provider.SelfDestruct(),
		},
	})
	if err != nil {
		cleanup()
		return nil, err
	}
	r.phase(PhaseRender, time.Since(t0))

	// 3. The VM.
	t0 = time.Now()
	vm, err := c.cfg.Provider.Create(ctx, CreateRequest{
		Name: VMName(id), RunID: id, UserData: ud, Deadline: deadline,
		Labels: map[string]string{
			"managed-by": "sortie", "owner": c.cfg.OwnerID, "run": id,
			"expires": fmt.Sprint(deadline.Unix()),
		},
	})
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("create VM with %s provider: %w", c.cfg.Provider.Name(), err)
	}
	r.vm = vm
	r.phase(PhaseVMCreate, time.Since(t0))
	r.createdAt = time.Now()
	log.Info("VM requested", "vm", vm.Name, "provider", c.cfg.Provider.Name())
	go r.watch()
	return r, nil
}

// ensureSupervisor uploads the supervisor binary to its content-addressed
// key unless it is there already.
func (c *Coordinator) ensureSupervisor(ctx context.Context) (key, sum string, err error) {
	c.supMu.Lock()
	defer c.supMu.Unlock()
	if c.supKey != "" {
		return c.supKey, c.supSHA, nil
	}
	f, err := os.Open(c.cfg.SupervisorPath)
	if err != nil {
		return "", "", fmt.Errorf("open vm-supervisor binary: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", "", fmt.Errorf("hash vm-supervisor binary: %w", err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	key = protocol.SupervisorKey(c.cfg.Prefix, c.cfg.SupervisorArch, sum)
	ok, err := c.cfg.Store.Exists(ctx, key)
	if err != nil {
		return "", "", fmt.Errorf("check vm-supervisor in store: %w", err)
	}
	if !ok {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", "", err
		}
		if err := c.cfg.Store.Put(ctx, key, f); err != nil {
			return "", "", fmt.Errorf("upload vm-supervisor: %w", err)
		}
	}
	c.supKey, c.supSHA = key, sum
	return key, sum, nil
}

// CheckWritableDir makes dir (if set) and checks a file can be written in
// it, so a run never starts whose outbox files would be lost.
func CheckWritableDir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("outbox folder: %w", err)
	}
	f, err := os.CreateTemp(dir, ".sortie-check-")
	if err != nil {
		return fmt.Errorf("outbox folder %q is not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

func defaultSupervisorPath() string {
	exe, err := os.Executable()
	if err != nil {
		return "vm-supervisor"
	}
	return filepath.Join(filepath.Dir(exe), "vm-supervisor")
}

func hostArch() string { return runtime.GOARCH }

// errNoHello is the error of a VM that never said hello.
var errNoHello = errors.New("the VM did not say hello within the boot timeout")
