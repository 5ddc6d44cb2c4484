package sortie

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sortie/sortie/internal/store"
	"github.com/sortie/sortie/pkg/protocol"
)

// Status is the outcome of one Check.
type Status string

// The outcomes of a Check. Only StatusFail means a run would fail.
const (
	StatusOK   Status = "ok"
	StatusInfo Status = "info" // worth knowing, nothing to fix
	StatusWarn Status = "warn" // a run works, but look at this
	StatusFail Status = "FAIL" // a run would fail: fix this first
)

// Check is one finding of Doctor: what was checked, how it went, and in
// plain words what it means and what to do. It never holds a secret.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
}

// Failed reports whether any check has StatusFail.
func Failed(checks []Check) bool {
	for _, c := range checks {
		if c.Status == StatusFail {
			return true
		}
	}
	return false
}

// Clock skew against the store: presigned URLs and STS windows are
// computed on this machine's clock, and S3 refuses signatures more than
// 15 minutes off.
const (
	skewWarn = 30 * time.Second
	skewFail = 5 * time.Minute
)

// stepTimeout bounds each network step of Doctor.
const stepTimeout = 15 * time.Second

// Doctor checks what Open would run with, o resolved the same way, and
// says what is wrong: the provider and the store access mode and what they
// mean; that the store takes a write, a read and a delete with these
// credentials; the clock against the store's; whether STS issues
// credentials scoped as the sts mode needs; for Hetzner, that the token is
// accepted and may write, and that the server types, locations and image
// exist; for the local provider, that a Docker engine answers; and that
// the vm-supervisor binary for the VMs is there. Nothing it creates stays:
// probe objects under <prefix>/doctor/ are deleted, and the Hetzner write
// probe is a request the API refuses. No secret reaches a Check.
func Doctor(ctx context.Context, o Options) []Check {
	o.resolveDefaults()
	if o.Access == "" {
		o.Access = protocol.AccessPresigned
	}
	d := &doctor{o: o}
	if err := o.validate(); err != nil {
		d.add("settings", StatusFail, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	d.mode()
	s3 := d.store(ctx)
	d.clock(ctx, s3)
	d.sts(ctx, s3)
	d.hetzner(ctx)
	d.docker(ctx)
	d.supervisor()
	return redact(d.checks, string(o.Hetzner.Token), string(o.Hetzner.DeleteToken), o.Store.AccessKeyID, string(o.Store.SecretAccessKey))
}

type doctor struct {
	o      Options
	checks []Check
	// storeOK: the store took the probe, so its credentials work.
	storeOK bool
	// storeProblem is why it did not.
	storeProblem store.Problem
}

func (d *doctor) add(name string, st Status, format string, a ...any) {
	d.checks = append(d.checks, Check{Name: name, Status: st, Detail: fmt.Sprintf(format, a...)})
}

// mode says which provider and store access mode a run would use.
func (d *doctor) mode() {
	o := d.o
	switch o.Provider {
	case "local":
		why := "the default without HCLOUD_TOKEN"
		if o.Hetzner.Token != "" {
			why = "chosen, although HCLOUD_TOKEN is set"
		}
		d.add("provider", StatusOK, "local (%s): each VM is a vm-supervisor process on this machine that runs the agent container in the local Docker engine", why)
	case "hetzner":
		d.add("provider", StatusOK, "hetzner: each run gets a fresh Hetzner Cloud server, created with HCLOUD_TOKEN and deleted after the run")
	default:
		d.add("provider", StatusFail, "unknown provider %q: use --provider local or hetzner", o.Provider)
	}
	switch o.Access {
	case protocol.AccessPresigned:
		d.add("access", StatusOK, "presigned (the default): VMs get presigned URLs for exactly their run's keys, refilled while the run lives; no credentials leave this machine")
	case protocol.AccessSTS:
		d.add("access", StatusOK, "sts: VMs get temporary credentials from STS that reach only their run's prefix, for a short window renewed while the run lives")
	case protocol.AccessCredentials:
		d.add("access", StatusWarn, "credentials: VMs get this machine's store credentials (sealed in the bootstrap bundle), which reach the whole bucket; prefer --access presigned or sts")
	default:
		d.add("access", StatusFail, "unknown store access mode %q: use --access presigned, sts or credentials", o.Access)
	}
	boot := o.BootTimeout
	if boot <= 0 {
		boot = 5 * time.Minute
	}
	if o.Access != protocol.AccessCredentials && o.AccessTTL > 0 && o.AccessTTL <= boot {
		d.add("access ttl", StatusWarn, "access_ttl %s is not longer than the boot timeout %s: a VM that takes that long to boot finds its store access expired before its first renewal; raise access_ttl (default 15m)", o.AccessTTL, boot)
	}
}

// storeConfig is the store config Open would use for a bucket.
func (d *doctor) storeConfig() store.Config {
	s := d.o.Store
	return store.Config{
		Endpoint: s.Endpoint, Region: s.Region, Bucket: s.Bucket, Prefix: s.Prefix, PathStyle: s.PathStyle,
		AccessKeyID: s.AccessKeyID, SecretAccessKey: s.SecretAccessKey,
	}
}

// store probes the bucket with a write, a read and a delete, as VMs need
// writes; for the embedded store it checks the state directory. It returns
// the bucket's client, or nil.
func (d *doctor) store(ctx context.Context) *store.S3 {
	o := d.o
	if o.Store.Bucket == "" {
		d.stateDir()
		if o.Provider != "local" {
			d.add("store", StatusFail, "no bucket is configured, and the %s provider's VMs cannot reach the embedded store on this machine: set --bucket, --endpoint, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", o.Provider)
			return nil
		}
		d.add("store", StatusOK, "the embedded store (no bucket configured): objects live under %s and are served on 127.0.0.1 while a command runs; local only, so cloud VMs need a bucket", filepath.Join(o.StateDir, "s3"))
		return nil
	}
	if o.Store.AccessKeyID == "" || o.Store.SecretAccessKey == "" {
		d.add("store", StatusFail, "bucket %q is set but AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY is not: export both", o.Store.Bucket)
		return nil
	}
	s3, err := store.New(d.storeConfig())
	if err != nil {
		d.add("store", StatusFail, "%v", err)
		return nil
	}
	where := endpointName(o.Store.Endpoint, o.Store.Region)
	if o.Provider == "hetzner" && isLoopback(o.Store.Endpoint) {
		defer d.add("store reach", StatusWarn, "the endpoint %s is on this machine: cloud VMs cannot reach it (fine only when the VMs boot on this machine, as in tests)", where)
	}
	key := doctorPrefix(o.Store.Prefix) + randomID() + ".probe"
	body := []byte("sortie doctor probe: safe to delete\n")
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	step, err := d.probe(sctx, s3, key, body)
	if err != nil {
		d.storeProblem = store.Classify(err)
		d.add("store", StatusFail, "%s", storeProblem(err, step, key, o.Store.Bucket, where))
		return s3
	}
	d.storeOK = true
	d.add("store", StatusOK, "bucket %q at %s: wrote, read back and deleted %s with these credentials", o.Store.Bucket, where, key)
	return s3
}

// probe writes body at key, reads it back and deletes it, and says which
// step failed.
func (d *doctor) probe(ctx context.Context, s3 *store.S3, key string, body []byte) (step string, err error) {
	if err := s3.Put(ctx, key, bytes.NewReader(body)); err != nil {
		return "write", err
	}
	defer func() {
		if err != nil { // leave nothing behind, whatever failed
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stepTimeout)
			defer cancel()
			_ = s3.Delete(cctx, key)
		}
	}()
	got, err := s3.Get(ctx, key)
	if err != nil {
		return "read", err
	}
	if !bytes.Equal(got, body) {
		return "read", fmt.Errorf("read back %d bytes that differ from the %d written", len(got), len(body))
	}
	if err := s3.Delete(ctx, key); err != nil {
		return "delete", err
	}
	return "", nil
}

// stateDir checks that the state directory (the embedded store's data and
// the local VMs) can be written.
func (d *doctor) stateDir() {
	dir := d.o.StateDir
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		var f *os.File
		if f, err = os.CreateTemp(dir, ".doctor-*"); err == nil {
			f.Close()
			err = os.Remove(f.Name())
		}
	}
	if err != nil {
		d.add("state dir", StatusFail, "cannot write the state directory %s: %v: set --state-dir (SORTIE_STATE_DIR) to a directory you can write", dir, err)
		return
	}
	d.add("state dir", StatusOK, "%s can be written", dir)
}

// storeProblem says in plain words why step of the probe failed.
func storeProblem(err error, step, key, bucket, where string) string {
	switch store.Classify(err) {
	case store.ProblemUnreachable:
		return fmt.Sprintf("cannot reach the store at %s (%v): check --endpoint (SORTIE_S3_ENDPOINT) and the network", where, rootCause(err))
	case store.ProblemUnknownKey:
		return "the store does not know the access key: check AWS_ACCESS_KEY_ID"
	case store.ProblemBadSecret:
		return "the store refused the secret key (the signature does not match): check AWS_SECRET_ACCESS_KEY"
	case store.ProblemNoBucket:
		return fmt.Sprintf("bucket %q does not exist at %s: create it, or fix --bucket (SORTIE_BUCKET)", bucket, where)
	case store.ProblemDenied:
		return fmt.Sprintf("the store refused to let these credentials %s %s in bucket %q: grant them s3:PutObject, s3:GetObject and s3:DeleteObject under the prefix", step, key, bucket)
	case store.ProblemClockSkew:
		return "the store refused the request's time: this machine's clock is off (see the clock line)"
	case store.ProblemWrongRegion:
		return fmt.Sprintf("bucket %q is not in the region signed for: set --region (SORTIE_S3_REGION) to the bucket's region", bucket)
	}
	return fmt.Sprintf("%s %s failed: %v", step, key, err)
}

// clock compares this machine's clock with the store's.
func (d *doctor) clock(ctx context.Context, s3 *store.S3) {
	if d.o.Store.Bucket == "" {
		d.add("clock", StatusOK, "the embedded store runs on this machine's clock")
		return
	}
	if s3 == nil || d.storeProblem == store.ProblemUnreachable {
		return // the store line says why
	}
	cctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	skew, err := s3.ClockSkew(cctx)
	if err != nil {
		d.add("clock", StatusWarn, "could not read the store's clock: %v", rootCause(err))
		return
	}
	dir := "ahead of"
	if skew > 0 {
		dir = "behind"
	}
	off := skew.Abs().Round(time.Second)
	switch {
	case skew.Abs() > skewFail:
		d.add("clock", StatusFail, "this machine's clock is %s %s the store's: S3 refuses signatures more than 15 min off, and presigned URLs and STS windows are computed on this clock; turn on NTP (timedatectl set-ntp true)", off, dir)
	case skew.Abs() > skewWarn:
		d.add("clock", StatusWarn, "this machine's clock is %s %s the store's: presigned URLs and STS windows are computed on it and end early or late by as much; turn on NTP (timedatectl set-ntp true)", off, dir)
	default:
		d.add("clock", StatusOK, "this machine's clock is within %s of the store's", max(off, time.Second))
	}
}

// sts checks STS: in the sts mode, that it issues credentials that write
// under their prefix and cannot read outside it; otherwise only whether
// it is there, for information.
func (d *doctor) sts(ctx context.Context, s3 *store.S3) {
	o := d.o
	sts := o.Access == protocol.AccessSTS
	if o.Store.Bucket == "" {
		if sts {
			d.add("sts", StatusFail, "the embedded store has no STS: use --access presigned, or a MinIO or AWS S3 bucket for sts")
		} else {
			d.add("sts", StatusInfo, "the embedded store has no STS; the %s mode needs none", o.Access)
		}
		return
	}
	if !d.storeOK {
		st := StatusInfo
		if sts {
			st = StatusFail
		}
		d.add("sts", st, "not checked until the store line is fixed: STS is asked with the store's endpoint and credentials")
		return
	}
	cfg := d.storeConfig()
	stsCfg := store.STSConfig{Endpoint: o.STS.Endpoint, RoleARN: o.STS.RoleARN}
	where := o.STS.Endpoint
	if where == "" {
		where = endpointName(o.Store.Endpoint, o.Store.Region)
	}
	scope := store.Scope{Bucket: cfg.Bucket, Prefix: doctorPrefix(cfg.Prefix) + randomID() + "/", Until: time.Now().Add(2 * time.Minute)}
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	creds, err := store.AssumeRole(sctx, cfg, stsCfg, scope, "sortie-doctor")
	if !sts {
		if err != nil {
			d.add("sts", StatusInfo, "STS is not available at %s (%v); the %s mode does not need it", where, rootCause(err), o.Access)
		} else {
			d.add("sts", StatusInfo, "STS at %s issues scoped credentials: --access sts would work too", where)
		}
		return
	}
	if err != nil && store.Classify(err) == store.ProblemUnreachable {
		d.add("sts", StatusFail, "cannot reach STS at %s (%v): check --sts-endpoint (SORTIE_STS_ENDPOINT) and the network", where, rootCause(err))
		return
	}
	if err != nil {
		d.add("sts", StatusFail, "STS refused temporary credentials: %v: check --sts-endpoint (SORTIE_STS_ENDPOINT) and, on AWS, --sts-role-arn (a role these credentials may assume)", rootCause(err))
		return
	}
	scoped := cfg
	scoped.AccessKeyID, scoped.SecretAccessKey, scoped.SessionToken = creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken
	vm, err := store.New(scoped)
	if err != nil {
		d.add("sts", StatusFail, "%v", err)
		return
	}
	inside, outside := scope.Prefix+"probe", strings.TrimSuffix(scope.Prefix, "/")+"-outside.probe"
	defer func() {
		// The scoped credentials may not delete: the store's own do.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stepTimeout)
		defer cancel()
		_ = s3.Delete(cctx, inside)
		_ = s3.Delete(cctx, outside)
	}()
	if err := vm.Put(sctx, inside, bytes.NewReader([]byte("x"))); err != nil {
		d.add("sts", StatusFail, "STS credentials for prefix %s cannot write there (%v): the store must allow the session policy's s3:PutObject", scope.Prefix, rootCause(err))
		return
	}
	if err := s3.Put(sctx, outside, bytes.NewReader([]byte("x"))); err != nil {
		d.add("sts", StatusWarn, "STS credentials write under their prefix; could not place an object outside it to test the other way (%v)", rootCause(err))
		return
	}
	_, err = vm.Get(sctx, outside)
	switch {
	case err == nil:
		d.add("sts", StatusFail, "STS credentials for prefix %s can read %s outside it: the store ignores the session policy, so a VM could reach other runs; use --access presigned", scope.Prefix, outside)
	case store.Classify(err) == store.ProblemDenied:
		d.add("sts", StatusOK, "STS at %s issues credentials that write under their run's prefix and cannot read outside it", where)
	default:
		d.add("sts", StatusWarn, "STS credentials write under their prefix; reading outside it failed, but not as refused (%v)", rootCause(err))
	}
}

// endpointName names the store's endpoint for a reader.
func endpointName(endpoint, region string) string {
	if endpoint != "" {
		return endpoint
	}
	if region == "" {
		region = store.DefaultRegion
	}
	return "AWS S3 (" + region + ")"
}

func isLoopback(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil || u.Hostname() == "" {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

// doctorPrefix is where Doctor's probe objects go: <prefix>/doctor/.
func doctorPrefix(prefix string) string {
	if p := strings.Trim(prefix, "/"); p != "" {
		return p + "/doctor/"
	}
	return "doctor/"
}

func randomID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// rootCause drops the SDKs' wrapping ("operation error S3: PutObject,
// https response error StatusCode: 403, RequestID: ...") down to the
// innermost message, which says what is wrong.
func rootCause(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}

// redact replaces every secret in the checks' details. Doctor never puts
// one there; this makes sure of it for the error text of the libraries it
// calls. Strings shorter than 8 bytes are left alone: no real key is that
// short, and replacing them would mangle ordinary words.
func redact(checks []Check, secrets ...string) []Check {
	for i := range checks {
		for _, s := range secrets {
			if len(s) >= 8 {
				checks[i].Detail = strings.ReplaceAll(checks[i].Detail, s, "[redacted]")
			}
		}
	}
	return checks
}
