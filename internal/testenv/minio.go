package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/pkg/protocol"
)

// MinIOServer is this test process's MinIO server and its root credentials,
// for tests that need admin rights (creating users, STS). Most tests want
// MinIO instead: a fresh bucket of their own.
type MinIOServer struct {
	// Endpoint is the server's base URL, "http://127.0.0.1:<port>".
	Endpoint string
	// Region is the region the server signs for.
	Region       string
	RootUser     string
	RootPassword protocol.Secret
}

// Config returns the store config of bucket on this server, with the root
// credentials. It does not create the bucket.
func (s *MinIOServer) Config(bucket string) store.Config {
	return store.Config{
		Endpoint:        s.Endpoint,
		Region:          s.Region,
		Bucket:          bucket,
		PathStyle:       true,
		AccessKeyID:     s.RootUser,
		SecretAccessKey: s.RootPassword,
	}
}

// MinIO returns the config of a new, empty bucket, unique to this call, on
// the shared MinIO server of this test process (see MinIORoot).
func MinIO(t testing.TB) store.Config {
	t.Helper()
	srv := MinIORoot(t)
	cfg := srv.Config(bucketFor(t))
	s, err := store.New(cfg)
	if err != nil {
		t.Fatalf("MinIO: %v", err)
	}
	// Right after start MinIO can answer 503 while its subsystems come up,
	// although its readiness check passed: retry for a while.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		err = s.EnsureBucket(ctx)
		if err == nil {
			return cfg
		}
		select {
		case <-ctx.Done():
			t.Fatalf("MinIO: %v", err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

const minioMissing = "MinIO not installed: run scripts/ensure-minio.sh"

var (
	minioOnce sync.Once
	minioSrv  *MinIOServer
	minioErr  error
	// minioLife is the write end of the pipe whose closing, when this
	// process exits however it exits, makes the watchdog kill MinIO and
	// remove its data. It is never written and never closed.
	minioLife *os.File
)

// MinIORoot returns the MinIO server shared by this test process, starting it
// on first use: the binary from $MINIO_BIN, else `minio` on PATH, else in
// $GOBIN, $GOPATH/bin or ~/go/bin, listening on a free 127.0.0.1 port with a
// temporary data directory and random root credentials. The server and its
// data go away when the test process exits, even if it crashes or is killed.
//
// Without a MinIO binary the test is skipped, or fails under CI=true. In
// -short mode it is skipped.
func MinIORoot(t testing.TB) *MinIOServer {
	t.Helper()
	if testing.Short() {
		t.Skip("MinIO tests do not run in -short mode")
	}
	bin, why := minioBinary()
	if bin == "" {
		Absent(t, minioMissing+why)
	}
	minioOnce.Do(func() { minioSrv, minioErr = startMinIO(bin) })
	if minioErr != nil {
		t.Fatalf("start MinIO: %v", minioErr)
	}
	return minioSrv
}

// minioBinary returns the path of the MinIO binary, or "" and why not.
func minioBinary() (path, why string) {
	if p := os.Getenv("MINIO_BIN"); p != "" {
		if isExecutable(p) {
			return p, ""
		}
		return "", " (MINIO_BIN=" + p + " is not an executable file)"
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, ""
	}
	var dirs []string
	if gb := os.Getenv("GOBIN"); gb != "" {
		dirs = append(dirs, gb)
	}
	if gp := os.Getenv("GOPATH"); gp != "" {
		for _, d := range filepath.SplitList(gp) {
			dirs = append(dirs, filepath.Join(d, "bin"))
		}
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, "minio"); isExecutable(p) {
			return p, ""
		}
	}
	return "", ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// watchdog runs MinIO ("$@") and waits for it. Its stdin is the read end of
// a pipe whose write end only this test process holds: when the process
// exits, however it exits, the read sees end of file and MinIO is killed.
// Either way the data directory ($1) is removed when MinIO has gone. Until
// then it holds, as fd 3, the test process's stdout: `go test` waits for
// that to close, so no MinIO outlives `go test`.
const watchdog = `
root=$1; shift
exec 4<&0 0</dev/null
"$@" 3>&- 4<&- &
pid=$!
( exec 3>&-; cat <&4 >/dev/null 2>&1; kill -KILL "$pid" 2>/dev/null ) &
guard=$!
exec 4<&-
wait "$pid"
status=$?
kill "$guard" 2>/dev/null
rm -rf "$root"
exit "$status"
`

func startMinIO(bin string) (*MinIOServer, error) {
	var errs []error
	// A free port found by listening can be taken before MinIO binds it:
	// try a few.
	for range 3 {
		srv, err := startMinIOOnce(bin)
		if err == nil {
			return srv, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func startMinIOOnce(bin string) (*MinIOServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "sortie-testenv-minio-")
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(root, "minio.log")
	logf, err := os.Create(logPath)
	if err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	defer pr.Close()

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	user, password := "root-"+randomHex(8), randomHex(20)
	cmd := exec.Command("/bin/sh", "-c", watchdog, "sh", root,
		bin, "server", "--quiet", "--address", addr,
		"--certs-dir", filepath.Join(root, "certs"), filepath.Join(root, "data"))
	// Credentials go through the environment, not the process list.
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+user,
		"MINIO_ROOT_PASSWORD="+password,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pr, logf, logf
	cmd.ExtraFiles = []*os.File{os.Stdout}
	// Its own process group: a Ctrl-C at the terminal reaches the test
	// process, whose exit then stops MinIO through the pipe.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = pw.Close()
		_ = os.RemoveAll(root)
		return nil, fmt.Errorf("run %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	if err := waitHTTP("http://"+addr+"/minio/health/ready", http.StatusOK, exited, 60*time.Second); err != nil {
		log, _ := os.ReadFile(logPath)
		_ = pw.Close() // stops MinIO and removes root
		<-exited
		return nil, fmt.Errorf("MinIO on %s: %w; its output:\n%s", addr, err, tail(string(log), 2000))
	}
	minioLife = pw
	return &MinIOServer{
		Endpoint:     "http://" + addr,
		Region:       store.DefaultRegion,
		RootUser:     user,
		RootPassword: protocol.Secret(password),
	}, nil
}

// waitHTTP waits until url answers with status (a server's sign that it
// serves), the server has exited, or timeout has passed.
func waitHTTP(url string, status int, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("exited before it was ready")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s", timeout)
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

var bucketSeq atomic.Int64

// bucketFor returns a bucket name unique in this process that shows which
// test made it: "t<seq>-<test name>", within the 63 characters S3 allows.
func bucketFor(t testing.TB) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(t.Name()) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
	}
	name := fmt.Sprintf("t%d-%s", bucketSeq.Add(1), strings.Trim(b.String(), "-"))
	if len(name) > 63 {
		name = name[:63]
	}
	return strings.TrimRight(name, "-")
}
