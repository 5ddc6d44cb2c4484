package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/sortie/sortie/pkg/protocol"
)

// Docker is the Runtime backed by the Docker Engine API. It is safe for
// concurrent use.
type Docker struct {
	c *client.Client
}

var _ Runtime = (*Docker)(nil)

// Log rotation of the json-file driver. The supervisor reads the output
// through the attach stream; the engine's own copy is kept only for
// debugging on the VM, bounded so a chatty agent cannot fill the disk.
const (
	logMaxSize  = "16m"
	logMaxFiles = "2"
)

// NewDocker connects to the Docker engine described by the environment
// (DOCKER_HOST, DOCKER_API_VERSION, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY; the
// local socket by default) and negotiates the API version down to what the
// engine speaks (Debian's 20.10 speaks 1.41). It fails when the engine does
// not answer.
func NewDocker(ctx context.Context) (*Docker, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		c.Close()
		return nil, fmt.Errorf("ping Docker engine at %s: %w", c.DaemonHost(), err)
	}
	return &Docker{c: c}, nil
}

// Close releases the client's idle connections.
func (d *Docker) Close() error { return d.c.Close() }

// APIVersion is the Engine API version in use after negotiation.
func (d *Docker) APIVersion() string { return d.c.ClientVersion() }

// ImageExists reports whether ref is present in the engine's image store.
func (d *Docker) ImageExists(ctx context.Context, ref string) (bool, error) {
	_, err := d.c.ImageInspect(ctx, ref)
	switch {
	case err == nil:
		return true, nil
	case cerrdefs.IsNotFound(err):
		return false, nil
	default:
		return false, fmt.Errorf("inspect image %q: %w", ref, err)
	}
}

// Pull pulls ref from its registry, with auth's credentials when auth is
// not nil (else anonymously), and returns once the pull has finished,
// draining the progress stream. An error reported inside the stream, such
// as an unknown repository, is returned. The error never holds the
// password.
func (d *Docker) Pull(ctx context.Context, ref string, auth *protocol.RegistryAuth) error {
	var opts client.ImagePullOptions
	if auth != nil {
		enc, err := authconfig.Encode(registry.AuthConfig{
			Username: auth.Username, Password: auth.Password.Reveal(), ServerAddress: auth.Server,
		})
		if err != nil {
			return fmt.Errorf("encode registry credentials: %w", err)
		}
		opts.RegistryAuth = enc
	}
	resp, err := d.c.ImagePull(ctx, ref, opts)
	if err == nil {
		err = resp.Wait(ctx)
		resp.Close()
	}
	if err != nil && auth != nil {
		err = redactError(err, auth.Password)
	}
	switch {
	case err == nil:
		return nil
	case registryRefused(err) && auth != nil:
		return fmt.Errorf("the registry refused access with the credentials of user %q: check the user name, the password or token, and that user's access to the repository: %w", auth.Username, err)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("it does not exist or its registry refused access: %w", err)
	case registryRefused(err):
		return fmt.Errorf("the registry refused access without credentials: give the run registry credentials: %w", err)
	default:
		return err
	}
}

// registryRefused reports whether a pull failed because the registry
// refused the credentials, or asked for some. An engine may say so with a
// typed error; Debian's 20.10 answers HTTP 500 with nothing but a message,
// so the message is matched too, for the registry's error codes of the
// distribution API ("unauthorized: ...", "denied: ...") and the engine's
// words for a pull without credentials.
func registryRefused(err error) bool {
	if cerrdefs.IsUnauthorized(err) || cerrdefs.IsPermissionDenied(err) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"unauthorized: ", "denied: ", "no basic auth credentials"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// Create creates the container without starting it. Besides what cfg asks
// for, every container gets: no new privileges, all capabilities dropped
// except cfg.CapAdd, the default bridge network, no restart policy, no
// auto-removal (the supervisor reads the exit status, then removes it), no
// swap beyond the memory limit, and bounded engine logs.
func (d *Docker) Create(ctx context.Context, cfg ContainerConfig) (string, error) {
	cc, hc := containerConfigs(cfg)
	res, err := d.c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       cfg.Name,
		Config:     cc,
		HostConfig: hc,
	})
	if err != nil {
		return "", fmt.Errorf("create container %q from image %q: %w", cfg.Name, cfg.Image, err)
	}
	return res.ID, nil
}

// containerConfigs maps cfg to the Engine API's container and host config.
func containerConfigs(cfg ContainerConfig) (*container.Config, *container.HostConfig) {
	cc := &container.Config{
		Image:        cfg.Image,
		Entrypoint:   cfg.Entrypoint,
		Cmd:          cfg.Cmd,
		Env:          cfg.Env,
		WorkingDir:   cfg.WorkDir,
		User:         cfg.User,
		Labels:       cfg.Labels,
		AttachStdout: true,
		AttachStderr: true,
	}
	mounts := make([]mount.Mount, 0, len(cfg.Mounts))
	for _, m := range cfg.Mounts {
		mounts = append(mounts, mount.Mount{
			Type:     mount.TypeBind,
			Source:   m.Source,
			Target:   m.Target,
			ReadOnly: m.ReadOnly,
		})
	}
	hc := &container.HostConfig{
		Mounts:         mounts,
		NetworkMode:    network.NetworkBridge,
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		AutoRemove:     false,
		SecurityOpt:    []string{"no-new-privileges"},
		CapDrop:        []string{"ALL"},
		CapAdd:         cfg.CapAdd,
		ReadonlyRootfs: cfg.ReadOnlyRootfs,
		LogConfig: container.LogConfig{
			Type:   "json-file",
			Config: map[string]string{"max-size": logMaxSize, "max-file": logMaxFiles},
		},
		Resources: container.Resources{
			Memory:   cfg.Limits.MemoryBytes,
			NanoCPUs: cfg.Limits.NanoCPUs,
		},
	}
	if cfg.ReadOnlyRootfs {
		// A read-only root still needs a scratch /tmp.
		hc.Tmpfs = map[string]string{"/tmp": "rw,nosuid,nodev,size=256m"}
	}
	if cfg.Limits.MemoryBytes > 0 {
		// Memory plus swap equals memory: the limit is not stretched by
		// swap. Engines without swap accounting ignore this with a warning.
		hc.MemorySwap = cfg.Limits.MemoryBytes
	}
	if cfg.Limits.PidsLimit > 0 {
		pids := cfg.Limits.PidsLimit
		hc.PidsLimit = &pids
	}
	return cc, hc
}

// Attach attaches to the container's stdout and stderr (stream mode, so it
// can and should happen before Start) and copies them, demultiplexed, into
// stdout and stderr in the background until the container's streams end or
// ctx ends. The channel yields nil at a normal end, ctx's error when ctx
// ended the copy, or the first error of a writer or of the stream; then it
// is closed.
//
// A writer that fails does not stall the container: the rest of the output
// is read and dropped, and the writer's error is reported at the end.
func (d *Docker) Attach(ctx context.Context, id string, stdout, stderr io.Writer) (<-chan error, error) {
	// Engines before API 1.42 label every attach stream as raw, so the
	// container's TTY setting decides whether the stream is multiplexed.
	info, err := d.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, fmt.Errorf("attach to container %s: %w", id, err)
	}
	tty := info.Container.Config != nil && info.Container.Config.Tty
	res, err := d.c.ContainerAttach(ctx, id, client.ContainerAttachOptions{
		Stream: true,
		Stdout: true,
		Stderr: true,
	})
	if err != nil {
		return nil, fmt.Errorf("attach to container %s: %w", id, err)
	}
	// The hijacked connection outlives the request's context; close it when
	// ctx ends so the copy returns.
	stop := context.AfterFunc(ctx, res.Close)
	done := make(chan error, 1)
	go func() {
		defer close(done)
		defer res.Close()
		var sinkErr error
		out := &sink{w: stdout, err: &sinkErr}
		errOut := &sink{w: stderr, err: &sinkErr}
		var err error
		if tty {
			_, err = io.Copy(out, res.Reader)
		} else {
			_, err = stdcopy.StdCopy(out, errOut, res.Reader)
		}
		if stopped := stop(); err != nil && !stopped && ctx.Err() != nil {
			// ctx closed the connection; that, not the read error it
			// caused, is the copy's end.
			err = ctx.Err()
		}
		switch {
		case sinkErr != nil:
			done <- fmt.Errorf("copy output of container %s: %w", id, sinkErr)
		case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
			done <- err
		case err != nil:
			done <- fmt.Errorf("read output of container %s: %w", id, err)
		default:
			done <- nil
		}
	}()
	return done, nil
}

// sink writes to w until w fails once; after that it drops what it is given,
// so the stream keeps draining, and err holds the first failure.
type sink struct {
	w   io.Writer
	err *error
}

func (s *sink) Write(p []byte) (int, error) {
	if *s.err != nil {
		return len(p), nil
	}
	n, err := s.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		*s.err = err
	}
	return len(p), nil
}

// Start starts a created container.
func (d *Docker) Start(ctx context.Context, id string) error {
	if _, err := d.c.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		return fmt.Errorf("start container %s: %w", id, err)
	}
	return nil
}

// Wait blocks until the container is not running and returns its exit code
// and whether the kernel's OOM killer ended it. Call it after Start: a
// created container that never ran counts as not running.
func (d *Docker) Wait(ctx context.Context, id string) (ExitStatus, error) {
	w := d.c.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	var code int64
	select {
	case r := <-w.Result:
		if r.Error != nil && r.Error.Message != "" {
			return ExitStatus{}, fmt.Errorf("wait for container %s: %s", id, r.Error.Message)
		}
		code = r.StatusCode
	case err := <-w.Error:
		return ExitStatus{}, fmt.Errorf("wait for container %s: %w", id, err)
	}
	info, err := d.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return ExitStatus{}, fmt.Errorf("inspect container %s after exit: %w", id, err)
	}
	st := ExitStatus{Code: int(code)}
	if s := info.Container.State; s != nil {
		st.OOMKilled = s.OOMKilled
	}
	return st, nil
}

// Stop asks the container to stop with its stop signal (SIGTERM unless the
// image says otherwise), waits up to grace (rounded up to whole seconds, the
// API's unit) and then kills it with SIGKILL. It returns once the container
// has stopped. Stopping a container that is not running succeeds.
func (d *Docker) Stop(ctx context.Context, id string, grace time.Duration) error {
	secs := int(math.Ceil(max(grace, 0).Seconds()))
	if _, err := d.c.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		return fmt.Errorf("stop container %s: %w", id, err)
	}
	return nil
}

// Remove force-removes the container (killing it if it runs) and its
// anonymous volumes. A container that does not exist counts as removed.
func (d *Docker) Remove(ctx context.Context, id string) error {
	_, err := d.c.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	// With force, a conflict means another removal is already under way.
	if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}
