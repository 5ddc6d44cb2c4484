package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"golang.org/x/crypto/bcrypt"

	"github.com/sortie/sortie/pkg/protocol"
)

const registryMissing = "the distribution registry is not installed: install Debian's docker-registry package (scripts/ensure-tools.sh)"

// Registry is a private container registry of one test: the distribution
// registry (Debian's docker-registry) on a free 127.0.0.1 port, with
// filesystem storage in the test's temporary directory and htpasswd
// authentication for one user. The Docker engine talks plain HTTP to
// registries on 127.0.0.0/8, so nothing needs TLS.
type Registry struct {
	// Host is "127.0.0.1:<port>", as image references name it.
	Host     string
	Username string
	Password protocol.Secret
}

// Auth returns the registry's credentials.
func (r *Registry) Auth() *protocol.RegistryAuth {
	return &protocol.RegistryAuth{Server: r.Host, Username: r.Username, Password: r.Password}
}

// StartRegistry starts a Registry for this test, which stops it (and removes
// its storage) when the test ends; the process gets SIGKILL if the test
// process dies first. Without the registry binary (docker-registry, or
// registry, on PATH) the test is skipped, or fails under CI=true. In -short
// mode it is skipped.
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	if testing.Short() {
		t.Skip("registry tests do not run in -short mode")
	}
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if bin, err = exec.LookPath("registry"); err != nil {
			Absent(t, registryMissing)
		}
	}
	dir := t.TempDir()
	reg := &Registry{Username: "sortie-test", Password: protocol.Secret(randomHex(20))}
	hash, err := bcrypt.GenerateFromPassword([]byte(reg.Password.Reveal()), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(reg.Username+":"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var errs []error
	// A free port found by listening can be taken before the registry
	// binds it: try a few.
	for range 3 {
		host, err := startRegistryOnce(t, bin, dir, htpasswd)
		if err == nil {
			reg.Host = host
			return reg
		}
		errs = append(errs, err)
	}
	t.Fatalf("start registry: %v", errors.Join(errs...))
	return nil
}

// registryConfig is the registry's configuration: storage, listen address,
// htpasswd file.
const registryConfig = `version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
http:
  addr: %q
  secret: %q
auth:
  htpasswd:
    realm: sortie-test
    path: %q
`

func startRegistryOnce(t testing.TB, bin, dir, htpasswd string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	host := fmt.Sprintf("127.0.0.1:%d", port)
	conf := filepath.Join(dir, fmt.Sprintf("config-%d.yml", port))
	data := filepath.Join(dir, "data")
	if err := os.WriteFile(conf, fmt.Appendf(nil, registryConfig, data, host, randomHex(16), htpasswd), 0o600); err != nil {
		return "", err
	}
	logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("registry-%d.log", port)))
	if err != nil {
		return "", err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	if err := waitHTTP("http://"+host+"/v2/", http.StatusUnauthorized, exited, 30*time.Second); err != nil {
		stop()
		log, _ := os.ReadFile(logf.Name())
		return "", fmt.Errorf("registry on %s: %w; its output:\n%s", host, err, tail(string(log), 2000))
	}
	t.Cleanup(stop)
	return host, nil
}

// Push tags the local image as <host>/<repo>:<a tag unique to this call>,
// pushes it with the registry's credentials and removes the local tag
// again, so a run must pull it. It returns the pushed reference; the test's
// end removes any local copy of it (from a pull).
func (r *Registry) Push(t testing.TB, image, repo string) string {
	t.Helper()
	c := dockerOrSkip(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ref := fmt.Sprintf("%s/%s:%s", r.Host, repo, randomHex(6))
	if _, err := c.ImageTag(ctx, client.ImageTagOptions{Source: image, Target: ref}); err != nil {
		t.Fatalf("tag %s as %s: %v", image, ref, err)
	}
	untag := func() {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Removing a tag leaves the image (and its other tags) alone.
		_, _ = c.ImageRemove(rctx, ref, client.ImageRemoveOptions{})
	}
	t.Cleanup(untag)
	auth, err := authconfig.Encode(registry.AuthConfig{
		Username: r.Username, Password: r.Password.Reveal(), ServerAddress: r.Host,
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: auth})
	if err == nil {
		err = resp.Wait(ctx)
		resp.Close()
	}
	if err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	untag()
	return ref
}
