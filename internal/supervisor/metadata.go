package supervisor

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// DefaultMetadataAddr is the cloud metadata service (Hetzner, AWS, GCP…).
const DefaultMetadataAddr = "169.254.169.254"

// MetadataOff as Config.Metadata installs no metadata guard. The local
// provider uses it: its "VMs" are processes on the developer's own host,
// whose firewall the supervisor must not touch.
const MetadataOff = "off"

// ErrMetadataReachable means a container could connect to the metadata
// service.
var ErrMetadataReachable = errors.New("a container can connect to the metadata service")

// dockerUserChain is where the guard's rule lives.
//
// A container reaches the metadata service through the host's FORWARD
// chain: its packets come in on a bridge (docker0 or a user network) and
// leave towards an off-host address, so the host's INPUT and OUTPUT chains
// never see them and the supervisor's own requests (OUTPUT) stay allowed.
// DOCKER-USER is the chain Docker jumps to first from FORWARD and promises
// never to flush: when dockerd starts or restarts it creates the chain if it
// is missing, keeps its rules and moves the jump back to the top of FORWARD,
// so the rule survives a daemon restart and precedes Docker's own ACCEPTs.
// Install creates the chain and the jump itself when dockerd has not done so
// yet. The rule does not survive a reboot, which is fine: it is (re)installed
// and verified by the supervisor before it starts any container, and the VM
// is single-use anyway.
const dockerUserChain = "DOCKER-USER"

// MetadataGuard cuts containers off from the metadata service with an
// iptables rule, and proves that it works with a probe container.
//
// The rule rejects every protocol to Addr with icmp-port-unreachable rather
// than dropping it: the agent gets a fast "connection refused" instead of
// hanging until a timeout, and one rule covers TCP, UDP and the rest (a TCP
// reset would need a second rule for the other protocols).
type MetadataGuard struct {
	// Addr is the metadata service's IPv4 address. Default DefaultMetadataAddr.
	Addr string
	// ProbeBinary is a static vm-supervisor executable, the probe image's
	// only file. Default: os.Executable(), the running supervisor.
	ProbeBinary string
}

func (g *MetadataGuard) addr() (string, error) {
	a := g.Addr
	if a == "" {
		a = DefaultMetadataAddr
	}
	if ip := net.ParseIP(a); ip == nil || ip.To4() == nil {
		return "", fmt.Errorf("metadata address %q is not an IPv4 address", a)
	}
	return a, nil
}

// rule is the rule's specification after the chain name.
func (g *MetadataGuard) rule() ([]string, error) {
	a, err := g.addr()
	if err != nil {
		return nil, err
	}
	return []string{"-d", a + "/32", "-j", "REJECT", "--reject-with", "icmp-port-unreachable"}, nil
}

// Install inserts the rule at the top of DOCKER-USER unless it is already
// there, creating the chain and its jump from FORWARD when dockerd has not.
func (g *MetadataGuard) Install(ctx context.Context) error {
	rule, err := g.rule()
	if err != nil {
		return err
	}
	if iptables(ctx, "-S", dockerUserChain) != nil {
		if err := iptables(ctx, "-N", dockerUserChain); err != nil && iptables(ctx, "-S", dockerUserChain) != nil {
			return fmt.Errorf("create chain %s: %w", dockerUserChain, err)
		}
	}
	if iptables(ctx, "-C", "FORWARD", "-j", dockerUserChain) != nil {
		if err := iptables(ctx, "-I", "FORWARD", "1", "-j", dockerUserChain); err != nil {
			return fmt.Errorf("jump from FORWARD to %s: %w", dockerUserChain, err)
		}
	}
	if iptables(ctx, append([]string{"-C", dockerUserChain}, rule...)...) == nil {
		return nil
	}
	if err := iptables(ctx, append([]string{"-I", dockerUserChain, "1"}, rule...)...); err != nil {
		return fmt.Errorf("insert rule: %w", err)
	}
	return nil
}

// Remove deletes the rule (every copy of it); the chain and its jump stay.
// It is for tests: on a VM the rule stays until the VM is gone.
func (g *MetadataGuard) Remove(ctx context.Context) error {
	rule, err := g.rule()
	if err != nil {
		return err
	}
	for i := 0; i < 10 && iptables(ctx, append([]string{"-C", dockerUserChain}, rule...)...) == nil; i++ {
		if err := iptables(ctx, append([]string{"-D", dockerUserChain}, rule...)...); err != nil {
			return fmt.Errorf("delete rule: %w", err)
		}
	}
	return nil
}

// iptables runs iptables, waiting for the xtables lock that dockerd may hold.
func iptables(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "iptables", append([]string{"-w", "5"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// probeTimeout is how long the probe tries to connect.
const probeTimeout = 2 * time.Second

// Verify runs a probe container on the default bridge, with the same
// defaults as the agent's, that tries to connect to Addr:80. It returns nil
// only when the probe ran and could not connect; ErrMetadataReachable when
// it connected; another error when the probe could not tell.
func (g *MetadataGuard) Verify(ctx context.Context, d *Docker) error {
	a, err := g.addr()
	if err != nil {
		return err
	}
	image, err := g.probeImage(ctx, d)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	id, err := d.Create(ctx, ContainerConfig{
		Name:  "sortie-probe-" + hex.EncodeToString(suffix),
		Image: image,
		Entrypoint: []string{"/vm-supervisor", "probe-connect",
			"--addr", net.JoinHostPort(a, "80"), "--timeout", probeTimeout.String()},
		Labels: map[string]string{"dev.sortie.probe": "metadata"},
	})
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_ = d.Remove(rctx, id)
	}()
	out := &syncBuffer{}
	attached, err := d.Attach(ctx, id, out, out)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	if err := d.Start(ctx, id); err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	st, err := d.Wait(ctx, id)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	select {
	case <-attached:
	case <-ctx.Done():
	}
	switch st.Code {
	case 0:
		return nil
	case probeConnected:
		return fmt.Errorf("%w (probe connected to %s)", ErrMetadataReachable, net.JoinHostPort(a, "80"))
	default:
		return fmt.Errorf("probe container exited with %d, so it proves nothing: %s", st.Code, bytes.TrimSpace(out.bytes()))
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// probeImage returns the tag of a FROM-scratch image holding only the probe
// binary, importing it when the engine lacks it: no registry is needed.
func (g *MetadataGuard) probeImage(ctx context.Context, d *Docker) (string, error) {
	path := g.ProbeBinary
	if path == "" {
		var err error
		if path, err = os.Executable(); err != nil {
			return "", fmt.Errorf("find the probe binary: %w", err)
		}
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the probe binary: %w", err)
	}
	sum := sha256.Sum256(bin)
	tag := "sortie-probe:" + hex.EncodeToString(sum[:])[:12]
	if ok, err := d.ImageExists(ctx, tag); err != nil || ok {
		return tag, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "vm-supervisor", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	if _, err := tw.Write(bin); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	res, err := d.c.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, tag, client.ImageImportOptions{})
	if err != nil {
		return "", fmt.Errorf("import probe image %s: %w", tag, err)
	}
	defer res.Close()
	dec := json.NewDecoder(res)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return tag, nil
		} else if err != nil {
			return "", fmt.Errorf("import probe image %s: %w", tag, err)
		}
		if m.Error != nil {
			return "", fmt.Errorf("import probe image %s: %s", tag, m.Error.Message)
		}
	}
}

// Reach is the supervisor's own request to the metadata service: a plain
// GET of http://Addr/ from the host. Any HTTP answer counts.
func (g *MetadataGuard) Reach(ctx context.Context) error {
	a, err := g.addr()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a+"/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("reach the metadata service: %w", err)
	}
	resp.Body.Close()
	return nil
}

// probeConnected is the probe's exit code when it connected.
const probeConnected = 1

// ProbeConnect is the probe: it tries to connect to addr (host:port) for up
// to timeout and returns nil only when it could not. It is run inside the
// probe container by the hidden "vm-supervisor probe-connect" command.
func ProbeConnect(ctx context.Context, addr string, timeout time.Duration) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || net.ParseIP(host) == nil {
		return fmt.Errorf("probe address %q is not IP:port", addr)
	}
	if timeout <= 0 {
		return fmt.Errorf("probe timeout must be positive, got %s", timeout)
	}
	c, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", addr)
	if err != nil {
		// Refused, unreachable or timed out; unless the probe itself was
		// stopped, which proves nothing.
		return ctx.Err()
	}
	c.Close()
	return fmt.Errorf("%w (connected to %s)", ErrMetadataReachable, addr)
}

// ProbeExitCode is the probe command's exit code for ProbeConnect's error:
// 0 cut off, 1 connected, 3 the probe itself failed.
func ProbeExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrMetadataReachable):
		return probeConnected
	default:
		return 3
	}
}

// cutOffMetadata installs and verifies the metadata guard for the run's
// containers; any failure fails the run closed, before the agent's
// container exists.
func (r *run) cutOffMetadata(ctx context.Context, d *Docker) error {
	if r.cfg.Metadata == MetadataOff {
		r.log.Warn("metadata guard is off: containers may reach the metadata service")
		return nil
	}
	g := &MetadataGuard{Addr: r.cfg.Metadata}
	err := g.Install(ctx)
	if err == nil {
		err = g.Verify(ctx, d)
	}
	if err != nil {
		return fmt.Errorf("containers could not be cut off from the metadata service: %w", err)
	}
	r.log.Info("containers are cut off from the metadata service", "addr", r.cfg.Metadata)
	return nil
}
