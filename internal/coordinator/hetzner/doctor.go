package hetzner

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"
)

// Errors of the token checks, for errors.Is.
var (
	// ErrTokenUnknown: the API does not accept the token (401
	// unauthorized): mistyped, revoked, or of no project.
	ErrTokenUnknown = errors.New("the Hetzner API does not accept the token")
	// ErrTokenReadOnly: the token may only read; it cannot create servers.
	ErrTokenReadOnly = errors.New("the token is read-only")
)

// The doctor's write probe: an SSH key whose public key is not a key.
const (
	probeKeyName   = "sortie-doctor-probe"
	probePublicKey = "sortie-doctor-probe: this is not a public key"
)

// CheckToken sends one authenticated read (a list of at most one server).
// It returns nil when the token can read, an error wrapping
// ErrTokenUnknown when the API refuses it, or the API's or the network's
// error.
func (p *Provider) CheckToken(ctx context.Context) error {
	_, _, err := p.client.Server.List(ctx, hcloud.ServerListOpts{ListOpts: hcloud.ListOpts{PerPage: 1}})
	switch {
	case err == nil:
		return nil
	case hcloud.IsError(err, hcloud.ErrorCodeUnauthorized):
		return fmt.Errorf("%w (%s)", ErrTokenUnknown, hcloudCode(err))
	}
	return fmt.Errorf("list servers: %w", err)
}

// CheckWrite tells a read-write token from a read-only one without
// changing anything. Hetzner has no endpoint that reports a token's scope,
// so it asks to create an SSH key whose public key is not a key: the API
// refuses a read-only token's write before it looks at the request (401
// token_readonly, as its error table documents; 403 forbidden is taken the
// same way), and a read-write token's request fails validation (422
// invalid_input, or 409 uniqueness_error should a key of the probe's name
// exist). Nothing is created either way; should a key be created
// even so, it is deleted at once. It returns nil for a read-write token,
// an error wrapping ErrTokenReadOnly for a read-only one, and another
// error when the answer tells neither.
func (p *Provider) CheckWrite(ctx context.Context) error {
	key, _, err := p.client.SSHKey.Create(ctx, hcloud.SSHKeyCreateOpts{
		Name: probeKeyName, PublicKey: probePublicKey,
		Labels: map[string]string{"managed-by": "sortie", "sortie-role": "doctor-probe"},
	})
	switch {
	case err == nil:
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, derr := p.client.SSHKey.Delete(dctx, key); derr != nil {
			return fmt.Errorf("the API took an SSH key that is not a key and the probe could not delete it: delete the key %q by hand: %w", probeKeyName, derr)
		}
		return nil
	case hcloud.IsError(err, hcloud.ErrorCodeInvalidInput, hcloud.ErrorCodeUniquenessError):
		// Refused for what it asked, so after the token's scope was
		// checked (a key of the probe's name exists: uniqueness_error).
		return nil
	case hcloud.IsError(err, "token_readonly", hcloud.ErrorCodeForbidden):
		return fmt.Errorf("%w (%s)", ErrTokenReadOnly, hcloudCode(err))
	case hcloud.IsError(err, hcloud.ErrorCodeUnauthorized):
		return fmt.Errorf("%w (%s)", ErrTokenUnknown, hcloudCode(err))
	}
	return fmt.Errorf("write probe (create an invalid SSH key): %w", err)
}

// Catalog returns the server types, locations and image the provider
// asks for, defaults applied.
func (p *Provider) Catalog() (serverTypes, locations []string, image string) {
	return p.cfg.ServerTypes, p.cfg.Locations, p.cfg.Image
}

// CatalogProblem is a configured server type, location or image that the
// API does not offer as configured.
type CatalogProblem struct {
	Text string
	// Fatal: no server can be created this way. Otherwise it is a warning
	// (a deprecated server type, say).
	Fatal bool
}

// CheckCatalog looks up every configured server type and location and the
// image, and returns what does not fit: one that does not exist or is of
// the wrong architecture (fatal even as a fallback: a create that reaches
// it fails), a server type offered in none of the locations, a deprecated
// one. The error is for a lookup that failed.
func (p *Provider) CheckCatalog(ctx context.Context) ([]CatalogProblem, error) {
	var probs []CatalogProblem
	add := func(fatal bool, format string, a ...any) {
		probs = append(probs, CatalogProblem{Text: fmt.Sprintf(format, a...), Fatal: fatal})
	}
	arch := hcloud.ArchitectureX86
	if p.cfg.Arch == "arm64" {
		arch = hcloud.ArchitectureARM
	}
	locs := map[string]bool{}
	for _, name := range p.cfg.Locations {
		l, _, err := p.client.Location.GetByName(ctx, name)
		if err != nil {
			return probs, fmt.Errorf("look up location %q: %w", name, err)
		}
		if l == nil {
			add(true, "location %q does not exist", name)
			continue
		}
		locs[name] = true
	}
	for _, name := range p.cfg.ServerTypes {
		st, _, err := p.client.ServerType.GetByName(ctx, name)
		if err != nil {
			return probs, fmt.Errorf("look up server type %q: %w", name, err)
		}
		switch {
		case st == nil:
			add(true, "server type %q does not exist", name)
			continue
		case st.Architecture != arch:
			add(true, "server type %q is %s, not %s as configured", name, st.Architecture, arch)
			continue
		}
		if st.IsDeprecated() {
			add(false, "server type %q is deprecated", name)
		}
		offered := len(st.Locations) == 0 // an older API lists none: assume it is
		for _, l := range st.Locations {
			if l.Location != nil && locs[l.Location.Name] && l.Available && !l.IsDeprecated() {
				offered = true
			}
		}
		if !offered {
			add(false, "server type %q is offered in none of the locations %v", name, p.cfg.Locations)
		}
	}
	var img *hcloud.Image
	var err error
	if id, perr := strconv.ParseInt(p.cfg.Image, 10, 64); perr == nil {
		img, _, err = p.client.Image.GetByID(ctx, id)
	} else {
		img, _, err = p.client.Image.GetByNameAndArchitecture(ctx, p.cfg.Image, arch)
	}
	switch {
	case err != nil:
		return probs, fmt.Errorf("look up image %q: %w", p.cfg.Image, err)
	case img == nil:
		add(true, "image %q does not exist for %s", p.cfg.Image, arch)
	case img.Architecture != "" && img.Architecture != arch:
		add(true, "image %q is %s, not %s as configured", p.cfg.Image, img.Architecture, arch)
	case img.IsDeprecated():
		add(false, "image %q is deprecated", p.cfg.Image)
	}
	return probs, nil
}
