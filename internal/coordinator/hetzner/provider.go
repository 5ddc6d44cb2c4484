package hetzner

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/hetznercloud/hcloud-go/v2/hcloud"

	"github.com/sortie/sortie/internal/cloudinit"
	"github.com/sortie/sortie/internal/coordinator"
	"github.com/sortie/sortie/pkg/protocol"
)

// Provider creates one Hetzner Cloud server per run.
type Provider struct {
	cfg    Config
	client *hcloud.Client
	lim    *limiter

	keyMu sync.Mutex
	key   *hcloud.SSHKey
}

// New returns a provider. It sends no request: Prepare does.
func New(cfg Config) (*Provider, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	hc := *cfg.HTTPClient
	lim := newLimiter(hc.Transport)
	hc.Transport = lim
	opts := []hcloud.ClientOption{
		hcloud.WithToken(cfg.Token.Reveal()),
		hcloud.WithHTTPClient(&hc),
		hcloud.WithApplication("sortie", "1"),
	}
	if cfg.Endpoint != "" {
		opts = append(opts, hcloud.WithEndpoint(cfg.Endpoint))
	}
	return &Provider{cfg: cfg, client: hcloud.NewClient(opts...), lim: lim}, nil
}

// Name implements coordinator.Provider.
func (p *Provider) Name() string { return "hetzner" }

// SelfDestruct implements coordinator.Provider: by default the VM powers
// itself off (it holds no Hetzner token) and the coordinator or the reaper
// deletes it; in the delete mode it deletes its own server.
func (p *Provider) SelfDestruct() string { return p.cfg.SelfDestruct }

// SelfDelete implements coordinator.SelfDeleter: in the delete mode, the
// token and server the VM named name needs to delete itself.
func (p *Provider) SelfDelete(name string) *protocol.SelfDelete {
	if p.cfg.SelfDestruct != protocol.SelfDestructDelete {
		return nil
	}
	return &protocol.SelfDelete{Provider: "hetzner", Endpoint: p.cfg.Endpoint, Token: p.cfg.DeleteToken, Server: name}
}

// Arch is the CPU architecture of the provider's servers.
func (p *Provider) Arch() string { return p.cfg.Arch }

// InstallDocker says whether cloud-init must install Docker.
func (p *Provider) InstallDocker() bool { return *p.cfg.InstallDocker }

// Requests returns how many API requests the provider has sent.
func (p *Provider) Requests() int64 { return p.lim.Requests() }

// RequestsFor returns how many API requests the provider sent for one run
// (its create and delete, with every retry).
func (p *Provider) RequestsFor(runID string) int64 { return p.lim.RequestsFor(runID) }

// Prepare finds the project SSH key by label, creating it once. Every
// server gets it: without one, Hetzner mails a root password.
func (p *Provider) Prepare(ctx context.Context) error {
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	if p.key != nil {
		return nil
	}
	key, err := p.projectKey(ctx)
	if err != nil {
		return fmt.Errorf("project SSH key: %w", err)
	}
	p.key = key
	return nil
}

// Create creates the run's server. It tries the server types in order,
// then the next location, on resource_unavailable or placement_error, with
// a growing pause and at most MaxCreateTries tries. A create whose answer
// was lost is retried; the API then says uniqueness_error, and the server
// is looked up by its name, so there is never a second one.
func (p *Provider) Create(ctx context.Context, req coordinator.CreateRequest) (*coordinator.VM, error) {
	vm, err := p.create(ctx, req)
	if err != nil && ctx.Err() != nil {
		// The caller gave up, perhaps after the API took a create: a
		// server it made must not stay behind unknown to anyone.
		p.removeOrphan(ctx, req.Name, req.RunID)
	}
	return vm, err
}

func (p *Provider) create(ctx context.Context, req coordinator.CreateRequest) (*coordinator.VM, error) {
	if len(req.UserData) > cloudinit.MaxUserData {
		return nil, fmt.Errorf("create server %q: user-data is %d bytes, over Hetzner's limit of %d", req.Name, len(req.UserData), cloudinit.MaxUserData)
	}
	if err := p.Prepare(ctx); err != nil {
		return nil, err
	}
	ctx = withRun(ctx, req.RunID)
	labels := map[string]string{}
	for k, v := range p.cfg.Labels {
		labels[k] = v
	}
	for k, v := range req.Labels {
		labels[k] = v
	}
	image := &hcloud.Image{Name: p.cfg.Image}
	if id, err := strconv.ParseInt(p.cfg.Image, 10, 64); err == nil {
		image = &hcloud.Image{ID: id}
	}
	opts := hcloud.ServerCreateOpts{
		Name: req.Name, Image: image, UserData: string(req.UserData), Labels: labels,
		SSHKeys:          []*hcloud.SSHKey{{ID: p.key.ID}},
		StartAfterCreate: hcloud.Ptr(true),
		PublicNet:        &hcloud.ServerCreatePublicNet{EnableIPv4: *p.cfg.PublicIPv4, EnableIPv6: *p.cfg.PublicIPv6},
	}
	for _, id := range p.cfg.Firewalls {
		opts.Firewalls = append(opts.Firewalls, &hcloud.ServerCreateFirewall{Firewall: hcloud.Firewall{ID: id}})
	}
	for _, id := range p.cfg.Networks {
		opts.Networks = append(opts.Networks, &hcloud.Network{ID: id})
	}
	var tried []string
	tries := 0
	delay := p.cfg.RetryDelay
	for _, loc := range p.cfg.Locations {
		for _, st := range p.cfg.ServerTypes {
			opts.Location, opts.ServerType = &hcloud.Location{Name: loc}, &hcloud.ServerType{Name: st}
			for {
				if tries == p.cfg.MaxCreateTries {
					return nil, fmt.Errorf("no server created after %d tries (%s): raise the tries or add server types or locations", tries, strings.Join(tried, ", "))
				}
				if tries > 0 {
					if err := sleep(ctx, delay); err != nil {
						return nil, err
					}
					delay = min(delay*2, 8*p.cfg.RetryDelay)
				}
				tries++
				vm, retry, err := p.createOnce(ctx, opts, req)
				if err == nil {
					return vm, nil
				}
				if retry == retrySame {
					tried = append(tried, fmt.Sprintf("%s in %s: %v", st, loc, err))
					continue
				}
				if retry == retryNext {
					tried = append(tried, fmt.Sprintf("%s in %s: %s", st, loc, hcloudCode(err)))
					break
				}
				return nil, err
			}
		}
	}
	return nil, fmt.Errorf("no server created: none of the server types and locations had capacity (%s)", strings.Join(tried, ", "))
}

type retryKind int

const (
	retryNone retryKind = iota // give up
	retrySame                  // the answer was lost: try the same again
	retryNext                  // no capacity: the next type or location
)

func (p *Provider) createOnce(ctx context.Context, opts hcloud.ServerCreateOpts, req coordinator.CreateRequest) (*coordinator.VM, retryKind, error) {
	res, _, err := p.client.Server.Create(ctx, opts)
	switch {
	case err == nil:
		return p.vm(res.Server, req.RunID), retryNone, nil
	case hcloud.IsError(err, hcloud.ErrorCodeUniquenessError):
		// An earlier try of ours may have made it; never a second server.
		s, _, gerr := p.client.Server.GetByName(ctx, opts.Name)
		if gerr != nil {
			return nil, retryNone, fmt.Errorf("create server %q: name taken, and the lookup failed: %w", opts.Name, gerr)
		}
		if s == nil || s.Labels["run"] != req.RunID {
			return nil, retryNone, fmt.Errorf("create server %q: the name is taken by a server that is not this run's", opts.Name)
		}
		return p.vm(s, req.RunID), retryNone, nil
	case hcloud.IsError(err, hcloud.ErrorCodeResourceUnavailable, hcloud.ErrorCodePlacementError):
		return nil, retryNext, err
	case ctx.Err() != nil:
		return nil, retryNone, err
	case isTransient(err):
		return nil, retrySame, err
	}
	return nil, retryNone, fmt.Errorf("create server %q: %w", opts.Name, err)
}

// removeOrphan deletes the server named name if it exists and is run's,
// on a context the caller's cancellation does not reach.
func (p *Provider) removeOrphan(ctx context.Context, name, runID string) {
	ctx, cancel := context.WithTimeout(withRun(context.WithoutCancel(ctx), runID), p.cfg.DeleteTimeout)
	defer cancel()
	s, _, err := p.client.Server.GetByName(ctx, name)
	if err != nil || s == nil || s.Labels["run"] != runID {
		return
	}
	if err := p.Delete(ctx, p.vm(s, runID)); err != nil {
		p.cfg.Logger.Warn("delete a server whose create was cancelled; the reaper will", "server", name, "err", err)
	}
}

// isTransient: no API answer (network), or a 5xx that is not a refusal.
func isTransient(err error) bool {
	var apiErr hcloud.Error
	if errors.As(err, &apiErr) {
		return hcloud.IsError(err, hcloud.ErrorCodeServerError, hcloud.ErrorCodeBadGateway,
			hcloud.ErrorCodeTimeout, hcloud.ErrorCodeServiceError, hcloud.ErrorCodeConflict, hcloud.ErrorCodeMaintenance)
	}
	return true // transport errors, and 5xx bodies that are not API errors
}

func hcloudCode(err error) string {
	var apiErr hcloud.Error
	if errors.As(err, &apiErr) {
		return string(apiErr.Code)
	}
	return err.Error()
}

func (p *Provider) vm(s *hcloud.Server, runID string) *coordinator.VM {
	vm := &coordinator.VM{
		ID: strconv.FormatInt(s.ID, 10), Name: s.Name, RunID: runID, Created: s.Created,
		Labels: s.Labels, Status: string(s.Status),
	}
	if vm.RunID == "" {
		vm.RunID = s.Labels["run"]
	}
	if s.ServerType != nil {
		vm.Type = s.ServerType.Name
	}
	if s.Location != nil {
		vm.Location = s.Location.Name
	}
	return vm
}

// Delete deletes the server, waiting out "locked" (an action still runs on
// it); a server that is already gone counts as deleted. It does not wait for
// the delete action: the server stops billing once the request is taken.
func (p *Provider) Delete(ctx context.Context, vm *coordinator.VM) error {
	id, err := strconv.ParseInt(vm.ID, 10, 64)
	if err != nil {
		return fmt.Errorf("delete server: bad ID %q", vm.ID)
	}
	ctx, cancel := context.WithTimeout(withRun(context.WithoutCancel(ctx), vm.RunID), p.cfg.DeleteTimeout)
	defer cancel()
	delay := p.cfg.RetryDelay
	for {
		_, _, err := p.client.Server.DeleteWithResult(ctx, &hcloud.Server{ID: id})
		switch {
		case err == nil, hcloud.IsError(err, hcloud.ErrorCodeNotFound):
			return nil
		case hcloud.IsError(err, hcloud.ErrorCodeLocked, hcloud.ErrorCodeConflict) || (isTransient(err) && ctx.Err() == nil):
			p.cfg.Logger.Info("delete server: retrying", "server", vm.Name, "err", hcloudCode(err))
			if serr := sleep(ctx, delay); serr != nil {
				return fmt.Errorf("delete server %s: %w (last error: %v)", vm.Name, serr, err)
			}
			delay = min(delay*2, 8*p.cfg.RetryDelay)
		default:
			return fmt.Errorf("delete server %s: %w", vm.Name, err)
		}
	}
}

// List returns the servers that carry owner's labels. It never returns a
// server without them.
func (p *Provider) List(ctx context.Context, owner string) ([]*coordinator.VM, error) {
	servers, err := p.client.Server.AllWithOpts(ctx, hcloud.ServerListOpts{
		ListOpts: hcloud.ListOpts{LabelSelector: "managed-by=sortie,owner=" + owner},
	})
	if err != nil {
		return nil, fmt.Errorf("list servers: %w", err)
	}
	var out []*coordinator.VM
	for _, s := range servers {
		if s.Labels["managed-by"] != "sortie" || s.Labels["owner"] != owner {
			continue // the selector is the API's; check anyway
		}
		out = append(out, p.vm(s, ""))
	}
	return out, nil
}

// HourlyPrices returns the gross hourly price of each server type in each
// location, from the live /pricing endpoint: key "type/location".
func (p *Provider) HourlyPrices(ctx context.Context) (map[string]float64, string, error) {
	pr, _, err := p.client.Pricing.Get(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("get pricing: %w", err)
	}
	out := map[string]float64{}
	for _, st := range pr.ServerTypes {
		for _, l := range st.Pricings {
			if v, err := strconv.ParseFloat(l.Hourly.Gross, 64); err == nil && st.ServerType != nil && l.Location != nil {
				out[st.ServerType.Name+"/"+l.Location.Name] = v
			}
		}
	}
	return out, pr.Currency, nil
}
