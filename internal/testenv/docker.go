package testenv

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// TestAgentPackage is the import path of the test agent.
const TestAgentPackage = "github.com/sortie/sortie/internal/testenv/testagent"

// ContentLabel is the image label BuildImage sets to the hash of the build
// context; an image with the tag and the same hash is not rebuilt.
const ContentLabel = "dev.sortie.testenv.content"

const dockerHint = "no Docker engine answers: run scripts/ensure-docker.sh"

// dockerClient connects to the engine from the environment once per test
// process; a missing engine is remembered so later tests skip at once.
var dockerClient = sync.OnceValues(func() (*client.Client, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		c.Close()
		return nil, fmt.Errorf("ping %s: %w", c.DaemonHost(), err)
	}
	return c, nil
})

// Docker skips the test when no Docker engine answers (DOCKER_HOST or the
// local socket), or fails it when CI=true.
func Docker(t testing.TB) {
	t.Helper()
	dockerOrSkip(t)
}

func dockerOrSkip(t testing.TB) *client.Client {
	t.Helper()
	c, err := dockerClient()
	if err != nil {
		Absent(t, fmt.Sprintf("%s (%v)", dockerHint, err))
	}
	return c
}

// buildMu serializes image builds within the test process.
var buildMu sync.Mutex

// BuildImage builds tag from dockerfile and files (name to content, all
// mode 0755) through the Engine API with the classic builder, so it needs no
// registry for FROM scratch. The build is skipped when tag exists with a
// ContentLabel equal to the hash of the context. It skips the test when no
// engine answers.
func BuildImage(t testing.TB, tag string, files map[string][]byte, dockerfile string) {
	t.Helper()
	c := dockerOrSkip(t)
	if err := buildImage(t.Context(), c, tag, files, dockerfile); err != nil {
		t.Fatalf("build image %s: %v", tag, err)
	}
}

func buildImage(ctx context.Context, c *client.Client, tag string, files map[string][]byte, dockerfile string) error {
	buildMu.Lock()
	defer buildMu.Unlock()
	hash := contextHash(files, dockerfile)
	img, err := c.ImageInspect(ctx, tag)
	switch {
	case err == nil:
		if img.Config != nil && img.Config.Labels[ContentLabel] == hash {
			return nil
		}
	case !cerrdefs.IsNotFound(err):
		return fmt.Errorf("inspect: %w", err)
	}
	tarball, err := buildContext(files, dockerfile)
	if err != nil {
		return err
	}
	res, err := c.ImageBuild(ctx, bytes.NewReader(tarball), client.ImageBuildOptions{
		Tags:        []string{tag},
		Labels:      map[string]string{ContentLabel: hash},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return err
	}
	defer res.Body.Close()
	var out strings.Builder
	dec := json.NewDecoder(res.Body)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fmt.Errorf("read build output: %w\n%s", err, out.String())
		}
		out.WriteString(m.Stream)
		if m.Error != nil {
			return fmt.Errorf("%s\n%s", m.Error.Message, out.String())
		}
	}
	return nil
}

// contextHash hashes the build context in a stable order.
func contextHash(files map[string][]byte, dockerfile string) string {
	h := sha256.New()
	fmt.Fprintf(h, "Dockerfile %d\n%s", len(dockerfile), dockerfile)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(h, "%s %d\n", name, len(files[name]))
		h.Write(files[name])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// buildContext is the tar archive of dockerfile and files.
func buildContext(files map[string][]byte, dockerfile string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, data []byte, mode int64) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("Dockerfile", []byte(dockerfile), 0o644); err != nil {
		return nil, err
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if err := add(name, files[name], 0o755); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var (
	binMu    sync.Mutex
	binCache = map[string][]byte{}
)

// BuildStaticBinary builds the main package pkg (an import path of this
// module) with CGO_ENABLED=0 for linux on this machine's architecture and
// returns the executable. Results are cached for the test process.
func BuildStaticBinary(t testing.TB, pkg string) []byte {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if b, ok := binCache[pkg]; ok {
		return b
	}
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+runtime.GOARCH)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	binCache[pkg] = b
	return b
}

// TestAgentImage returns the tag of a FROM scratch image whose entrypoint
// is the test agent (/testagent), building the agent and the image when
// needed. It skips the test when no engine answers.
func TestAgentImage(t testing.TB) string {
	t.Helper()
	Docker(t)
	bin := BuildStaticBinary(t, TestAgentPackage)
	sum := sha256.Sum256(bin)
	tag := "sortie-testagent:" + hex.EncodeToString(sum[:])[:12]
	BuildImage(t, tag, map[string][]byte{"testagent": bin},
		"FROM scratch\nCOPY testagent /testagent\nENTRYPOINT [\"/testagent\"]\n")
	return tag
}

// SupervisorPackage is the vm-supervisor's package path.
const SupervisorPackage = "github.com/sortie/sortie/cmd/vm-supervisor"

// SupervisorBinary builds the vm-supervisor statically (once per process)
// and writes it to a file of the test's own, returning its path.
func SupervisorBinary(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vm-supervisor")
	if err := os.WriteFile(p, BuildStaticBinary(t, SupervisorPackage), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// AssertNoContainers fails the test if any container of run runID (label
// dev.sortie.run) is still on the local engine after a few seconds (a
// removal under way elsewhere may take that long to finish).
func AssertNoContainers(t testing.TB, runID string) {
	t.Helper()
	dc, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		list, err := dc.ContainerList(context.Background(), client.ContainerListOptions{
			All: true, Filters: make(client.Filters).Add("label", "dev.sortie.run="+runID),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d containers of run %s left behind", len(list.Items), runID)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
