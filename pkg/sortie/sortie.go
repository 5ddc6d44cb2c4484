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
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/internal/coordinator/hetzner"
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
	// RegistryAuth are credentials for pulling a run's image
	// (RunSpec.Registry).
	RegistryAuth = protocol.RegistryAuth
)

// StoreOptions name an S3-compatible bucket. With no Bucket, the embedded
// store is used.
type StoreOptions struct {
	Endpoint        string `yaml:"endpoint"`
	Region          string `yaml:"region"`
	Bucket          string `yaml:"bucket"`
	Prefix          string `yaml:"prefix"`
	PathStyle       bool   `yaml:"path_style"`
	AccessKeyID     string `yaml:"-"`
	SecretAccessKey Secret `yaml:"-"`
}

// STSOptions configure the sts access mode.
type STSOptions struct {
	// Endpoint is the STS API. Default: the store's endpoint (MinIO);
	// for AWS, https://sts.amazonaws.com or a regional endpoint.
	Endpoint string `yaml:"endpoint"`
	// RoleARN is the role to assume: AWS requires it, MinIO ignores it.
	RoleARN string `yaml:"role_arn"`
}

// HetznerOptions configure the hetzner provider; see the fields of
// internal/coordinator/hetzner.Config for defaults.
type HetznerOptions struct {
	Token         Secret            `yaml:"-"`
	Endpoint      string            `yaml:"endpoint"`
	ServerTypes   []string          `yaml:"server_types"`
	Locations     []string          `yaml:"locations"`
	Image         string            `yaml:"image"`
	InstallDocker *bool             `yaml:"install_docker"`
	PublicIPv4    *bool             `yaml:"public_ipv4"`
	PublicIPv6    *bool             `yaml:"public_ipv6"`
	Firewalls     []int64           `yaml:"firewalls"`
	Networks      []int64           `yaml:"networks"`
	Labels        map[string]string `yaml:"labels"`
	Arch          string            `yaml:"arch"`
	SSHKeyName    string            `yaml:"ssh_key_name"`
	// SelfDestruct is "poweroff" (default) or "delete"; DeleteToken is the
	// VMs' own token for "delete" ($SORTIE_HCLOUD_DELETE_TOKEN).
	SelfDestruct string `yaml:"self_destruct"`
	DeleteToken  Secret `yaml:"-"`
}

// Options configure a Client. Every field has a default.
type Options struct {
	// StateDir holds the embedded store's data and the local VMs.
	// Default: $SORTIE_STATE_DIR, else $XDG_STATE_HOME/sortie, else
	// ~/.local/state/sortie.
	StateDir string `yaml:"state_dir"`
	// Store is the bucket; default: the embedded store under StateDir.
	Store StoreOptions `yaml:"store"`
	// Access is how VMs reach the store: "presigned" (default: a book of
	// presigned URLs for exactly the run's keys, refilled while the run
	// lives; no credentials on the VM), "sts" (temporary credentials from
	// STS AssumeRole, narrowed to the run's prefix and renewed while the
	// run lives; AWS S3 and MinIO) or "credentials" (the store credentials
	// above, sealed in the bootstrap bundle).
	Access string `yaml:"access"`
	// AccessTTL is how long the VM's presigned URLs or temporary
	// credentials work; they are renewed at half-life while the run lives,
	// so access ends within one AccessTTL after it. Default 15 min.
	AccessTTL time.Duration `yaml:"access_ttl"`
	// STS says where the sts access mode gets credentials.
	STS STSOptions `yaml:"sts"`
	// Provider is "local" or "hetzner". Default: "hetzner" when a Hetzner
	// token is set, else "local".
	Provider string `yaml:"provider"`
	// Hetzner configures the hetzner provider.
	Hetzner HetznerOptions `yaml:"hetzner"`
	// OwnerID names this coordinator in VM labels; it reaps only VMs with
	// its own owner label. Default: $SORTIE_OWNER, else the host name.
	OwnerID string `yaml:"owner"`
	// SupervisorPath is the vm-supervisor binary for the VMs' architecture.
	// Default: $SORTIE_SUPERVISOR, else vm-supervisor-linux-<arch> beside
	// the running executable, else vm-supervisor there.
	SupervisorPath string `yaml:"supervisor"`
	// BootTimeout is how long a VM may take to say hello. Default 5 min.
	BootTimeout time.Duration `yaml:"boot_timeout"`
	// ReapInterval is how often the reaper runs while the Client is open,
	// for providers that can list their VMs (hetzner); it also runs once at
	// Open, so a restarted coordinator removes what its predecessor left.
	// Default 5 min; negative: never.
	ReapInterval time.Duration `yaml:"reap_interval"`
	// PollMin and PollMax bound status polling. Defaults 100 ms and 2 s.
	PollMin time.Duration `yaml:"poll_min"`
	PollMax time.Duration `yaml:"poll_max"`
	// Logger receives logs (never secrets). Default: discard.
	Logger *slog.Logger `yaml:"-"`
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
	o.resolveDefaults()
	if o.OwnerID == "" {
		o.OwnerID = DefaultOwnerID()
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	cl := &Client{}
	fail := func(err error) (*Client, error) {
		_ = cl.Close()
		return nil, err
	}
	var sc store.Config
	if o.Store.Bucket == "" {
		if o.Access == protocol.AccessSTS {
			return fail(errors.New("the embedded store has no STS: use the presigned access mode, or configure a MinIO or AWS S3 bucket for sts"))
		}
		if o.Provider != "local" {
			return fail(fmt.Errorf("the %s provider's VMs cannot reach the embedded store: configure a bucket (endpoint, bucket, credentials)", o.Provider))
		}
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
	arch := runtime.GOARCH
	installDocker := false
	switch o.Provider {
	case "local":
		lp := &local.Provider{Dir: filepath.Join(o.StateDir, "vms"), Logger: o.Logger}
		if err := lp.Recover(ctx); err != nil {
			o.Logger.Warn("clean up dead local VMs", "err", err)
		}
		cl.closers = append(cl.closers, func() error { return lp.Shutdown(context.Background()) })
		prov = lp
	case "hetzner":
		h := o.Hetzner
		hp, err := hetzner.New(hetzner.Config{
			Token: h.Token, Endpoint: h.Endpoint, ServerTypes: h.ServerTypes, Locations: h.Locations,
			Image: h.Image, InstallDocker: h.InstallDocker, PublicIPv4: h.PublicIPv4, PublicIPv6: h.PublicIPv6,
			Firewalls: h.Firewalls, Networks: h.Networks, Labels: h.Labels, Arch: h.Arch,
			SelfDestruct: h.SelfDestruct, DeleteToken: h.DeleteToken,
			SSHKeyName: h.SSHKeyName, SSHKeyDir: filepath.Join(o.StateDir, "ssh"), Logger: o.Logger,
		})
		if err != nil {
			return fail(err)
		}
		prov, arch, installDocker = hp, hp.Arch(), hp.InstallDocker()
	}
	if o.SupervisorPath == "" {
		o.SupervisorPath = os.Getenv("SORTIE_SUPERVISOR")
	}
	if o.SupervisorPath == "" {
		o.SupervisorPath = defaultSupervisor(arch)
	}
	var issuer coordinator.CredentialIssuer
	if o.Access == protocol.AccessSTS {
		issuer = &store.STSIssuer{Store: sc, STS: store.STSConfig{Endpoint: o.STS.Endpoint, RoleARN: o.STS.RoleARN}}
	}
	c, err := coordinator.New(coordinator.Config{
		Store: s3, Prefix: sc.Prefix, Provider: prov, OwnerID: o.OwnerID,
		VMAccess: protocol.StoreAccess{
			Mode: protocol.AccessCredentials, Endpoint: sc.Endpoint, Region: sc.Region,
			Bucket: sc.Bucket, Prefix: sc.Prefix, PathStyle: sc.PathStyle,
			AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey,
		},
		SupervisorPath: o.SupervisorPath, SupervisorArch: arch, InstallDocker: installDocker,
		Access: o.Access, STS: issuer, AccessTTL: o.AccessTTL,
		BootTimeout: o.BootTimeout, PollMin: o.PollMin, PollMax: o.PollMax, Logger: o.Logger,
	})
	if err != nil {
		return fail(err)
	}
	cl.Coordinator = c
	if _, ok := prov.(coordinator.Lister); ok && o.ReapInterval >= 0 {
		if o.ReapInterval == 0 {
			o.ReapInterval = 5 * time.Minute
		}
		rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() { defer close(done); c.ReapEvery(rctx, o.ReapInterval) }()
		cl.closers = append(cl.closers, func() error { stop(); <-done; return nil })
	}
	return cl, nil
}

// resolveDefaults fills in the state directory and the provider as Open
// and Doctor both see them.
func (o *Options) resolveDefaults() {
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir()
	}
	if o.Provider == "" {
		o.Provider = "local"
		if o.Hetzner.Token != "" {
			o.Provider = "hetzner"
		}
	}
}

// validate reports the settings no provider may run with, all at once,
// before anything starts.
func (o *Options) validate() error {
	var errs []error
	switch o.Provider {
	case "local", "hetzner":
	default:
		errs = append(errs, fmt.Errorf("unknown provider %q: use \"local\" or \"hetzner\"", o.Provider))
	}
	switch o.Access {
	case "", protocol.AccessPresigned, protocol.AccessSTS, protocol.AccessCredentials:
	default:
		errs = append(errs, fmt.Errorf("unknown store access mode %q: use presigned, sts or credentials", o.Access))
	}
	if o.Access == protocol.AccessSTS && o.STS.RoleARN == "" && isAWS(o.STS.Endpoint, o.Store.Endpoint) {
		errs = append(errs, errors.New("the sts access mode on AWS needs a role to assume: set sts.role_arn (--sts-role-arn, SORTIE_STS_ROLE_ARN) to a role this machine's credentials may assume"))
	}
	switch o.Hetzner.SelfDestruct {
	case "", protocol.SelfDestructPoweroff, protocol.SelfDestructDelete:
	default:
		errs = append(errs, fmt.Errorf("unknown self-destruct mode %q: use poweroff or delete", o.Hetzner.SelfDestruct))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"access_ttl", o.AccessTTL}, {"boot_timeout", o.BootTimeout}, {"poll_min", o.PollMin}, {"poll_max", o.PollMax}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %s (leave it out for the default)", d.name, d.v))
		}
	}
	if o.AccessTTL > 0 && o.AccessTTL < 2*time.Second {
		errs = append(errs, fmt.Errorf("access_ttl %s is too short to renew at half-life: use at least 2s (default 15m)", o.AccessTTL))
	}
	if o.AccessTTL > store.MaxPresignTTL {
		errs = append(errs, fmt.Errorf("access_ttl %s is longer than presigned URLs can live (%s)", o.AccessTTL, store.MaxPresignTTL))
	}
	return errors.Join(errs...)
}

// isAWS reports whether STS requests go to AWS: an AWS STS endpoint, or no
// STS endpoint and an AWS (or no) S3 endpoint.
func isAWS(stsEndpoint, s3Endpoint string) bool {
	e := stsEndpoint
	if e == "" {
		e = s3Endpoint
	}
	return e == "" || strings.Contains(e, ".amazonaws.com")
}

// defaultSupervisor finds the vm-supervisor for arch beside the running
// executable: vm-supervisor-linux-<arch>, else vm-supervisor (built for
// this machine) when arch is this machine's.
func defaultSupervisor(arch string) string {
	exe, err := os.Executable()
	if err != nil {
		return "vm-supervisor"
	}
	dir := filepath.Dir(exe)
	if p := filepath.Join(dir, "vm-supervisor-linux-"+arch); fileExists(p) || arch != runtime.GOARCH {
		return p
	}
	return filepath.Join(dir, "vm-supervisor")
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

var ownerChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// DefaultOwnerID is $SORTIE_OWNER, else this machine's host name, made a
// valid label value.
func DefaultOwnerID() string {
	o := os.Getenv("SORTIE_OWNER")
	if o == "" {
		o, _ = os.Hostname()
	}
	o = strings.Trim(ownerChars.ReplaceAllString(o, "-"), "-_.")
	if len(o) > 63 {
		o = strings.Trim(o[:63], "-_.")
	}
	if o == "" {
		o = "sortie"
	}
	return o
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
