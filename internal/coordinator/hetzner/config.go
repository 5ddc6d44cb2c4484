package hetzner

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/sortie/sortie/pkg/protocol"
)

// Config configures the provider. Each field documents its default.
type Config struct {
	// Token is the Hetzner Cloud API token (HCLOUD_TOKEN). Required.
	Token protocol.Secret
	// Endpoint is the API's base URL (HCLOUD_ENDPOINT). Default: Hetzner's.
	Endpoint string
	// ServerTypes are tried in order when one has no capacity. All must be
	// of Arch. Default: cx23, cpx22.
	ServerTypes []string
	// Locations are tried in order after every server type failed in the
	// previous one. Default: fsn1, nbg1, hel1.
	Locations []string
	// Image is an image name (such as "docker-ce" or "debian-12") or a
	// snapshot ID. Default: "docker-ce", Hetzner's app image with Docker
	// ready at boot.
	Image string
	// InstallDocker makes cloud-init install Docker (Debian's docker.io)
	// before the supervisor starts. Default: on for images other than
	// docker-ce.
	InstallDocker *bool
	// PublicIPv4 and PublicIPv6 give the server public addresses. Default:
	// both on. (The VM needs a way out to reach the store.)
	PublicIPv4, PublicIPv6 *bool
	// Firewalls and Networks are IDs attached to every server.
	Firewalls []int64
	Networks  []int64
	// Labels are extra labels on every server; they cannot override
	// Sortie's own.
	Labels map[string]string
	// Arch is the CPU architecture of ServerTypes. Default amd64.
	Arch string
	// SSHKeyName is the name of the project SSH key, found by label and
	// created once. Default "sortie".
	SSHKeyName string
	// SSHKeyDir is where a newly created key's private half is saved.
	// Default: not saved (the key still stops Hetzner from mailing a
	// root password).
	SSHKeyDir string
	// MaxCreateTries bounds create attempts per run. Default 6.
	MaxCreateTries int
	// RetryDelay is the first pause between create attempts; it doubles
	// up to 8 times its value. Default 1 s.
	RetryDelay time.Duration
	// SelfDestruct is how a VM ends itself after its run: "poweroff"
	// (default: the VM holds no Hetzner token; the coordinator or the
	// reaper deletes the stopped server) or "delete" (the VM deletes its
	// own server with DeleteToken, so nothing waits on the coordinator).
	SelfDestruct string
	// DeleteToken is the token the VMs use in the delete mode, carried
	// only in the sealed bootstrap bundle. It must differ from Token:
	// Hetzner tokens are project-wide, so give the VMs a token of their
	// own (ideally of a project used for nothing else) that can be
	// revoked alone. Required in the delete mode.
	DeleteToken protocol.Secret
	// DeleteTimeout bounds a delete that waits out "locked". Default 3 min.
	DeleteTimeout time.Duration
	// HTTPClient carries the API requests (its Transport is wrapped by the
	// shared rate limiter, which gives each attempt 30 s; a Timeout here
	// would also cut waits for the rate limit). Default: no overall timeout.
	HTTPClient *http.Client
	// Logger receives the provider's logs (never the token). Default: discard.
	Logger *slog.Logger
}

var (
	labelKey   = regexp.MustCompile(`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$`)
	labelValue = regexp.MustCompile(`^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$`)
)

// reserved are the labels Sortie sets itself.
var reserved = map[string]bool{"managed-by": true, "owner": true, "run": true, "expires": true}

func (c *Config) setDefaults() error {
	var errs []error
	if c.Token == "" {
		errs = append(errs, errors.New("a Hetzner Cloud API token is required: set HCLOUD_TOKEN"))
	}
	if len(c.ServerTypes) == 0 {
		c.ServerTypes = []string{"cx23", "cpx22"}
	}
	if len(c.Locations) == 0 {
		c.Locations = []string{"fsn1", "nbg1", "hel1"}
	}
	if c.Image == "" {
		c.Image = "docker-ce"
	}
	if c.InstallDocker == nil {
		v := c.Image != "docker-ce"
		c.InstallDocker = &v
	}
	on := true
	if c.PublicIPv4 == nil {
		c.PublicIPv4 = &on
	}
	if c.PublicIPv6 == nil {
		c.PublicIPv6 = &on
	}
	if c.Arch == "" {
		c.Arch = "amd64"
	}
	if c.Arch != "amd64" && c.Arch != "arm64" {
		errs = append(errs, fmt.Errorf("arch %q: want amd64 or arm64", c.Arch))
	}
	for _, st := range c.ServerTypes {
		if arm := strings.HasPrefix(st, "cax"); arm != (c.Arch == "arm64") {
			errs = append(errs, fmt.Errorf("server type %q is not %s: list server types of one architecture and set the arch to match", st, c.Arch))
		}
	}
	for k, v := range c.Labels {
		if reserved[k] {
			errs = append(errs, fmt.Errorf("label %q is Sortie's own and cannot be set", k))
		}
		if !labelKey.MatchString(k) || !labelValue.MatchString(v) {
			errs = append(errs, fmt.Errorf("label %q=%q is not a valid Hetzner label", k, v))
		}
	}
	switch c.SelfDestruct {
	case "":
		c.SelfDestruct = protocol.SelfDestructPoweroff
	case protocol.SelfDestructPoweroff:
	case protocol.SelfDestructDelete:
		switch {
		case c.DeleteToken == "":
			errs = append(errs, errors.New("the delete self-destruct mode needs a token for the VMs: set SORTIE_HCLOUD_DELETE_TOKEN (a separate token, ideally of a dedicated project)"))
		case c.DeleteToken == c.Token:
			errs = append(errs, errors.New("the VMs' delete token must not be the coordinator's own token: create a separate token (ideally in a dedicated project) so it can be revoked alone"))
		}
	default:
		errs = append(errs, fmt.Errorf("self-destruct mode %q: want %q or %q", c.SelfDestruct, protocol.SelfDestructPoweroff, protocol.SelfDestructDelete))
	}
	if c.SSHKeyName == "" {
		c.SSHKeyName = "sortie"
	}
	if c.MaxCreateTries <= 0 {
		c.MaxCreateTries = 6
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.DeleteTimeout <= 0 {
		c.DeleteTimeout = 3 * time.Minute
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("hetzner provider: %w", err)
	}
	return nil
}
