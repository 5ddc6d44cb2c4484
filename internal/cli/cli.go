// Package cli is the coordinator's command line: cobra commands over the
// public Go API in pkg/sortie, so the CLI does exactly what a Go host can.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sortie/sortie/pkg/sortie"
)

// Exit codes of `coordinator run`, besides the agent's own (1-123).
const (
	ExitTimedOut  = 124 // the container ran past its timeout
	ExitSortie    = 125 // Sortie itself failed: bad input, no VM, no result
	ExitCancelled = 130 // the run was cancelled
	ExitOOM       = 137 // the container ran out of memory
)

// ExitError carries a process exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Main runs the CLI with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, version string) int {
	root := newRoot(stdout, stderr, version)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(stderr, "sortie:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(stderr, "sortie:", err)
	return ExitSortie
}

type globals struct {
	stateDir   string
	supervisor string
	bucket     string
	endpoint   string
	region     string
	prefix     string
	pathStyle  bool
	provider   string
	verbose    bool
	stdout     io.Writer
	stderr     io.Writer
}

func newRoot(stdout, stderr io.Writer, version string) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "coordinator",
		Short:         "Run AI-agent containers on disposable VMs",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.stateDir, "state-dir", "", "state directory (default $SORTIE_STATE_DIR or ~/.local/state/sortie)")
	pf.StringVar(&g.supervisor, "supervisor", os.Getenv("SORTIE_SUPERVISOR"), "vm-supervisor binary (default: beside this executable; env SORTIE_SUPERVISOR)")
	pf.StringVar(&g.bucket, "bucket", os.Getenv("SORTIE_BUCKET"), "S3 bucket (env SORTIE_BUCKET; default: the embedded store)")
	pf.StringVar(&g.endpoint, "endpoint", os.Getenv("SORTIE_S3_ENDPOINT"), "S3 endpoint URL (env SORTIE_S3_ENDPOINT)")
	pf.StringVar(&g.region, "region", os.Getenv("SORTIE_S3_REGION"), "S3 region (env SORTIE_S3_REGION)")
	pf.StringVar(&g.prefix, "prefix", os.Getenv("SORTIE_S3_PREFIX"), "key prefix in the bucket (env SORTIE_S3_PREFIX)")
	pf.BoolVar(&g.pathStyle, "path-style", os.Getenv("SORTIE_S3_PATH_STYLE") == "true", "path-style S3 addressing (MinIO)")
	pf.StringVar(&g.provider, "provider", "local", "VM provider: local")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log what the coordinator does to stderr")
	root.AddCommand(newRunCmd(g))
	return root
}

// open builds a client from the global flags and the environment. S3
// credentials come only from the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY), never from flags, so they stay out of the
// process list.
func (g *globals) open(ctx context.Context) (*sortie.Client, error) {
	level := slog.LevelWarn
	if g.verbose {
		level = slog.LevelInfo
	}
	o := sortie.Options{
		StateDir: g.stateDir, SupervisorPath: g.supervisor, Provider: g.provider,
		Logger: slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level})),
		Store: sortie.StoreOptions{
			Endpoint: g.endpoint, Region: g.region, Bucket: g.bucket, Prefix: g.prefix, PathStyle: g.pathStyle,
			AccessKeyID:     os.Getenv("AWS_ACCESS_KEY_ID"),
			SecretAccessKey: sortie.Secret(os.Getenv("AWS_SECRET_ACCESS_KEY")),
		},
	}
	if o.Store.Bucket != "" && (o.Store.AccessKeyID == "" || o.Store.SecretAccessKey == "") {
		return nil, errors.New("a bucket is set but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not: export both")
	}
	return sortie.Open(ctx, o)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func splitKV(s string) (string, string, bool) {
	k, v, ok := strings.Cut(s, "=")
	return k, v, ok && k != ""
}
