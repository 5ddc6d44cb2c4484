package supervisor_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/supervisor"
	"github.com/sortie/sortie/internal/testenv"
)

// needNetAdmin skips the test (fails it under CI=true) unless it runs as
// root with ip, iptables and busybox at hand.
func needNetAdmin(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	for _, tool := range []string{"ip", "iptables", "busybox"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	testenv.Absent(t, fmt.Sprintf("the metadata guard test needs %s (it creates a network namespace and an iptables rule)", strings.Join(missing, ", ")))
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fakeMetadata serves HTTP on port 80 of an address in a fresh network
// namespace, reached from the host over a veth pair, as the metadata
// service is reached off-host on a VM. It returns the address.
func fakeMetadata(t *testing.T) string {
	t.Helper()
	// A /30 in 10.213.0.0/16 that no route on this host covers.
	routes := sh(t, "ip", "-4", "route", "show", "table", "all") + sh(t, "ip", "-4", "addr")
	prefix := ""
	for range 20 {
		n, _ := rand.Int(rand.Reader, big.NewInt(64))
		p := fmt.Sprintf("10.213.%d.", n.Int64()*4)
		if !strings.Contains(routes, p) && !strings.Contains(routes, "10.213.0.0/16") && !strings.Contains(routes, "10.0.0.0/8") {
			prefix = p
			break
		}
	}
	if prefix == "" {
		t.Fatal("found no unused /30 in 10.213.0.0/16")
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	id := hex.EncodeToString(suffix)
	ns, host, peer := "sortie-md-"+id, "smd"+id+"h", "smd"+id+"n"
	hostAddr, nsAddr := prefix+"1", prefix+"2"

	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	sh(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	// Deleting one end deletes both; deleting the netns deletes the peer.
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", host).Run() })
	sh(t, "ip", "link", "set", peer, "netns", ns)
	sh(t, "ip", "addr", "add", hostAddr+"/30", "dev", host)
	sh(t, "ip", "link", "set", host, "up")
	sh(t, "ip", "netns", "exec", ns, "ip", "addr", "add", nsAddr+"/30", "dev", peer)
	sh(t, "ip", "netns", "exec", ns, "ip", "link", "set", peer, "up")
	sh(t, "ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	sh(t, "ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", hostAddr)

	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "index.html"), []byte("ami-id\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	busybox, _ := exec.LookPath("busybox")
	httpd := exec.Command("ip", "netns", "exec", ns, busybox, "httpd", "-f", "-p", nsAddr+":80", "-h", root)
	httpd.Stderr = os.Stderr
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = httpd.Process.Kill(); _ = httpd.Wait() })

	g := &supervisor.MetadataGuard{Addr: nsAddr}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := g.Reach(t.Context())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fake metadata service at %s never answered: %v", nsAddr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nsAddr
}

// TestMetadataGuard: with the guard installed, a container cannot connect
// to the (fake) metadata service while the supervisor on the host still
// can; without it, the container can, so the probe proves something.
func TestMetadataGuard(t *testing.T) {
	testenv.Docker(t)
	needNetAdmin(t)
	addr := fakeMetadata(t)
	d, err := supervisor.NewDocker(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	g := &supervisor.MetadataGuard{Addr: addr, ProbeBinary: testenv.SupervisorBinary(t)}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	if err := g.Verify(ctx, d); !errors.Is(err, supervisor.ErrMetadataReachable) {
		t.Fatalf("before the guard: Verify = %v, want %v (a container must reach the fake service, or the test proves nothing)", err, supervisor.ErrMetadataReachable)
	}

	t.Cleanup(func() {
		if err := g.Remove(context.WithoutCancel(ctx)); err != nil {
			t.Errorf("remove the rule: %v", err)
		}
	})
	for range 2 { // idempotent
		if err := g.Install(ctx); err != nil {
			t.Fatalf("Install: %v", err)
		}
	}
	rules := sh(t, "iptables", "-w", "5", "-S", "DOCKER-USER")
	if n := strings.Count(rules, "-d "+addr+"/32"); n != 1 {
		t.Errorf("DOCKER-USER has %d rules for %s after two installs, want 1:\n%s", n, addr, rules)
	}
	if err := g.Verify(ctx, d); err != nil {
		t.Errorf("with the guard: Verify = %v, want the container cut off", err)
	}
	if err := g.Reach(ctx); err != nil {
		t.Errorf("with the guard: the supervisor's own request failed: %v", err)
	}

	if err := g.Remove(ctx); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := g.Verify(ctx, d); !errors.Is(err, supervisor.ErrMetadataReachable) {
		t.Errorf("after Remove: Verify = %v, want %v", err, supervisor.ErrMetadataReachable)
	}
}

// TestMetadataProbeConnect: the probe exits 0 only when it cannot connect.
func TestMetadataProbeConnect(t *testing.T) {
	ctx := t.Context()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cases := []struct {
		name, addr string
		want       int
	}{
		{"refused", "127.0.0.1:1", 0},
		{"connected", ln.Addr().String(), 1},
		{"bad address", "metadata:80", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := supervisor.ProbeConnect(ctx, c.addr, time.Second)
			if got := supervisor.ProbeExitCode(err); got != c.want {
				t.Errorf("exit code = %d (err %v), want %d", got, err, c.want)
			}
		})
	}
}
