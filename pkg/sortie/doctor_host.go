package sortie

import (
	"context"
	"debug/elf"
	"errors"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"github.com/moby/moby/client"

	"github.com/sortie/sortie/internal/coordinator/hetzner"
	"github.com/sortie/sortie/pkg/protocol"
)

// hetzner checks the Hetzner token and catalog when the provider is
// hetzner, or HCLOUD_TOKEN is set although it is not (then a failure is
// only a warning: the token is not used).
func (d *doctor) hetzner(ctx context.Context) {
	o := d.o
	used := o.Provider == "hetzner"
	if !used && o.Hetzner.Token == "" {
		return
	}
	add := func(name string, st Status, format string, a ...any) {
		if !used && st == StatusFail {
			st = StatusWarn
			format += " (the provider is %s, so this does not stop a run)"
			a = append(a, o.Provider)
		}
		d.add(name, st, format, a...)
	}
	if o.Hetzner.Token == "" {
		add("hetzner token", StatusFail, "the hetzner provider needs an API token: export HCLOUD_TOKEN (a Read & Write token of the project the VMs go to)")
		return
	}
	h := o.Hetzner
	// The settings that decide what the API is asked, and the
	// self-destruct mode with its token; Open passes the rest (SSH key,
	// addresses), which need no API check.
	p, err := hetzner.New(hetzner.Config{
		Token: h.Token, Endpoint: h.Endpoint, ServerTypes: h.ServerTypes, Locations: h.Locations,
		Image: h.Image, Firewalls: h.Firewalls, Networks: h.Networks, Labels: h.Labels, Arch: h.Arch,
		SelfDestruct: h.SelfDestruct, DeleteToken: h.DeleteToken,
	})
	if err != nil {
		add("hetzner config", StatusFail, "%v", err)
		return
	}
	where := "the Hetzner API"
	if h.Endpoint != "" {
		where = "the Hetzner API at " + h.Endpoint
	}
	hctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	switch err := p.CheckToken(hctx); {
	case errors.Is(err, hetzner.ErrTokenUnknown):
		add("hetzner token", StatusFail, "%s does not accept HCLOUD_TOKEN (unauthorized): check that it is copied whole, not revoked, and of the project the VMs go to", where)
		return
	case err != nil:
		add("hetzner token", StatusFail, "cannot ask %s: %v: check the network and HCLOUD_ENDPOINT", where, rootCause(err))
		return
	}
	add("hetzner token", StatusOK, "%s accepts HCLOUD_TOKEN", where)
	switch err := p.CheckWrite(hctx); {
	case errors.Is(err, hetzner.ErrTokenReadOnly):
		add("hetzner write", StatusFail, "HCLOUD_TOKEN is read-only, so it cannot create servers: generate a Read & Write token (Hetzner Console: Security, API tokens) and export that")
	case err != nil:
		add("hetzner write", StatusWarn, "could not tell whether HCLOUD_TOKEN may write: %v", rootCause(err))
	default:
		add("hetzner write", StatusOK, "HCLOUD_TOKEN may write, so it can create servers (an invalid request was refused by validation, not for lack of permission; nothing was created)")
	}
	d.selfDestruct(hctx, add, where)
	probs, err := p.CheckCatalog(hctx)
	if err != nil {
		add("hetzner catalog", StatusWarn, "could not look up the server types, locations and image: %v", rootCause(err))
		return
	}
	if len(probs) == 0 {
		types, locs, image := p.Catalog()
		add("hetzner catalog", StatusOK, "server types %s, locations %s and image %s exist (%s)",
			strings.Join(types, ", "), strings.Join(locs, ", "), image, p.Arch())
		return
	}
	st := StatusWarn
	var texts []string
	for _, pr := range probs {
		if pr.Fatal {
			st = StatusFail
		}
		texts = append(texts, pr.Text)
	}
	add("hetzner catalog", st, "%s: fix --server-type, --location or --server-image (or the hetzner section of the config file)", strings.Join(texts, "; "))
}

// selfDestruct says how the VMs end themselves and, in the delete mode,
// checks the VMs' own token: accepted, and allowed to write (delete).
func (d *doctor) selfDestruct(ctx context.Context, add func(string, Status, string, ...any), where string) {
	h := d.o.Hetzner
	if h.SelfDestruct != protocol.SelfDestructDelete {
		add("self-destruct", StatusOK, "poweroff (the default): VMs hold no Hetzner token; they power off and this coordinator or the reaper deletes them, so run `coordinator reap` from cron if no coordinator stays up")
		return
	}
	add("self-destruct", StatusWarn, "delete: every VM holds SORTIE_HCLOUD_DELETE_TOKEN, which is project-wide (it can delete or create any server of the project); use it only in a Hetzner project dedicated to Sortie (docs/security.md)")
	p, err := hetzner.New(hetzner.Config{Token: h.DeleteToken, Endpoint: h.Endpoint})
	if err != nil {
		add("delete token", StatusFail, "%v", err)
		return
	}
	switch err := p.CheckToken(ctx); {
	case errors.Is(err, hetzner.ErrTokenUnknown):
		add("delete token", StatusFail, "%s does not accept SORTIE_HCLOUD_DELETE_TOKEN (unauthorized): VMs could not delete themselves and would fall back to powering off; check the token", where)
		return
	case err != nil:
		add("delete token", StatusFail, "cannot ask %s with SORTIE_HCLOUD_DELETE_TOKEN: %v", where, rootCause(err))
		return
	}
	switch err := p.CheckWrite(ctx); {
	case errors.Is(err, hetzner.ErrTokenReadOnly):
		add("delete token", StatusFail, "SORTIE_HCLOUD_DELETE_TOKEN is read-only, so VMs cannot delete their servers: generate a Read & Write token for it")
	case err != nil:
		add("delete token", StatusWarn, "SORTIE_HCLOUD_DELETE_TOKEN is accepted; could not tell whether it may delete: %v", rootCause(err))
	default:
		add("delete token", StatusOK, "SORTIE_HCLOUD_DELETE_TOKEN is accepted and may write, so VMs can delete their own servers")
	}
}

// docker checks that a Docker engine answers, for the local provider,
// whose VMs run the agent in it. It is found as the VMs find it: from
// DOCKER_HOST and friends, else the local socket.
func (d *doctor) docker(ctx context.Context) {
	if d.o.Provider != "local" {
		return
	}
	c, err := client.New(client.FromEnv)
	if err != nil {
		d.add("docker", StatusFail, "cannot set up a Docker client: %v: check DOCKER_HOST", err)
		return
	}
	defer c.Close()
	dctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if _, err := c.Ping(dctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		d.add("docker", StatusFail, "no Docker engine answers at %s, and local VMs run the agent there: start one (scripts/ensure-docker.sh installs and starts it) or set DOCKER_HOST", c.DaemonHost())
		return
	}
	version := "?"
	if v, err := c.ServerVersion(dctx, client.ServerVersionOptions{}); err == nil {
		version = v.Version
	}
	d.add("docker", StatusOK, "Docker engine %s answers at %s (API %s)", version, c.DaemonHost(), c.ClientVersion())
}

// elfArch names the Go architectures of ELF machines.
var elfArch = map[elf.Machine]string{elf.EM_X86_64: "amd64", elf.EM_AARCH64: "arm64"}

// supervisor checks the vm-supervisor binary Open would give the VMs: it
// exists, is a Linux executable for the VMs' architecture, and, for cloud
// VMs, is statically linked.
func (d *doctor) supervisor() {
	o := d.o
	arch := runtime.GOARCH
	if o.Provider == "hetzner" {
		arch = o.Hetzner.Arch
		if arch == "" {
			arch = "amd64"
		}
	}
	path := o.SupervisorPath
	if path == "" {
		path = os.Getenv("SORTIE_SUPERVISOR")
	}
	if path == "" {
		path = defaultSupervisor(arch)
	}
	build := "make build"
	if arch != runtime.GOARCH || o.Provider == "hetzner" {
		build = "make supervisors, for vm-supervisor-linux-" + arch
	}
	f, err := elf.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		d.add("supervisor", StatusFail, "no vm-supervisor at %s: build it (%s) or set --supervisor (SORTIE_SUPERVISOR)", path, build)
		return
	case err != nil:
		d.add("supervisor", StatusFail, "%s is not a Linux executable (%v): build it (%s) or set --supervisor (SORTIE_SUPERVISOR)", path, rootCause(err), build)
		return
	}
	defer f.Close()
	if got := elfArch[f.Machine]; got != arch {
		if got == "" {
			got = f.Machine.String()
		}
		d.add("supervisor", StatusFail, "%s is built for %s, and the VMs are %s: build it (%s) or set --supervisor (SORTIE_SUPERVISOR)", path, got, arch, build)
		return
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP && o.Provider != "local" {
			d.add("supervisor", StatusWarn, "%s is dynamically linked, and cloud VMs need a static build: build it with CGO_ENABLED=0 (%s)", path, build)
			return
		}
	}
	d.add("supervisor", StatusOK, "%s, for %s VMs", path, arch)
}
