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
	config      string
	stateDir    string
	supervisor  string
	bucket      string
	endpoint    string
	region      string
	prefix      string
	pathStyle   bool
	provider    string
	access      string
	stsEndpoint string
	stsRoleARN  string
	owner       string
	serverTypes []string
	locations   []string
	image       string
	selfDestr   string
	verbose     bool
	stdout      io.Writer
	stderr      io.Writer
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
	pf.StringVar(&g.config, "config", os.Getenv("SORTIE_CONFIG"), "YAML config file (env SORTIE_CONFIG); flags override it")
	pf.StringVar(&g.stateDir, "state-dir", "", "state directory (default $SORTIE_STATE_DIR, else $XDG_STATE_HOME/sortie, else ~/.local/state/sortie)")
	pf.StringVar(&g.supervisor, "supervisor", os.Getenv("SORTIE_SUPERVISOR"), "vm-supervisor binary for the VMs (default: beside this executable; env SORTIE_SUPERVISOR)")
	pf.StringVar(&g.bucket, "bucket", os.Getenv("SORTIE_BUCKET"), "S3 bucket (env SORTIE_BUCKET; default: the embedded store)")
	pf.StringVar(&g.endpoint, "endpoint", os.Getenv("SORTIE_S3_ENDPOINT"), "S3 endpoint URL (env SORTIE_S3_ENDPOINT)")
	pf.StringVar(&g.region, "region", os.Getenv("SORTIE_S3_REGION"), "S3 region (env SORTIE_S3_REGION; default us-east-1)")
	pf.StringVar(&g.prefix, "prefix", os.Getenv("SORTIE_S3_PREFIX"), "key prefix in the bucket (env SORTIE_S3_PREFIX)")
	pf.BoolVar(&g.pathStyle, "path-style", os.Getenv("SORTIE_S3_PATH_STYLE") == "true", "path-style S3 addressing, as MinIO needs (env SORTIE_S3_PATH_STYLE=true)")
	pf.StringVar(&g.access, "access", "", "how VMs reach the store: presigned (default; URLs for the run's keys only, no credentials on the VM), sts (temporary credentials for the run's prefix; MinIO, AWS) or credentials")
	pf.StringVar(&g.stsEndpoint, "sts-endpoint", os.Getenv("SORTIE_STS_ENDPOINT"), "sts access: the STS endpoint (env SORTIE_STS_ENDPOINT; default: the S3 endpoint, as MinIO serves it)")
	pf.StringVar(&g.stsRoleARN, "sts-role-arn", os.Getenv("SORTIE_STS_ROLE_ARN"), "sts access: the role to assume (env SORTIE_STS_ROLE_ARN; AWS requires one, MinIO ignores it)")
	pf.StringVar(&g.provider, "provider", "", "VM provider: local or hetzner (default: hetzner when HCLOUD_TOKEN is set, else local)")
	pf.StringVar(&g.owner, "owner", "", "owner ID in VM labels; reap touches only this owner's VMs (default $SORTIE_OWNER or the host name)")
	pf.StringSliceVar(&g.serverTypes, "server-type", nil, "hetzner: server types in fallback order (default cx23,cpx22)")
	pf.StringSliceVar(&g.locations, "location", nil, "hetzner: locations in fallback order (default fsn1,nbg1,hel1)")
	pf.StringVar(&g.image, "server-image", "", "hetzner: server image name or snapshot ID (default docker-ce)")
	pf.StringVar(&g.selfDestr, "self-destruct", "", "hetzner: how a VM ends itself: poweroff (default; no token on the VM) or delete (with its own token from $SORTIE_HCLOUD_DELETE_TOKEN)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "log what the coordinator does to stderr")
	root.AddCommand(newRunCmd(g), newLsCmd(g), newReapCmd(g), newDoctorCmd(g))
	return root
}

// options builds the client options: the config file, then flags and the
// environment. Secrets come only from the environment (HCLOUD_TOKEN,
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never from flags or files, so
// they stay out of the process list and out of config files.
func (g *globals) options() (sortie.Options, error) {
	var o sortie.Options
	if g.config != "" {
		var err error
		if o, err = sortie.LoadConfig(g.config); err != nil {
			return o, err
		}
	}
	// Warnings reach the user as events ("sortie: warning: ..."); the log
	// shows only errors unless -v.
	level := slog.LevelError
	if g.verbose {
		level = slog.LevelInfo
	}
	o.Logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
	setS := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	setS(&o.StateDir, g.stateDir)
	setS(&o.SupervisorPath, g.supervisor)
	setS(&o.Provider, g.provider)
	setS(&o.Access, g.access)
	setS(&o.STS.Endpoint, g.stsEndpoint)
	setS(&o.STS.RoleARN, g.stsRoleARN)
	setS(&o.OwnerID, g.owner)
	setS(&o.Store.Bucket, g.bucket)
	setS(&o.Store.Endpoint, g.endpoint)
	setS(&o.Store.Region, g.region)
	setS(&o.Store.Prefix, g.prefix)
	setS(&o.Hetzner.Image, g.image)
	setS(&o.Hetzner.SelfDestruct, g.selfDestr)
	if g.pathStyle {
		o.Store.PathStyle = true
	}
	if len(g.serverTypes) > 0 {
		o.Hetzner.ServerTypes = g.serverTypes
	}
	if len(g.locations) > 0 {
		o.Hetzner.Locations = g.locations
	}
	o.FromEnv()
	if o.Store.Bucket != "" && (o.Store.AccessKeyID == "" || o.Store.SecretAccessKey == "") {
		return o, errors.New("a bucket is set but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not: export both")
	}
	if o.Provider == "hetzner" && o.Hetzner.Token == "" {
		return o, errors.New("the hetzner provider needs an API token: export HCLOUD_TOKEN")
	}
	return o, nil
}

func (g *globals) open(ctx context.Context) (*sortie.Client, error) {
	o, err := g.options()
	if err != nil {
		return nil, err
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
