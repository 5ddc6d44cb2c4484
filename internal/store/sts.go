package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/sortie/sortie/pkg/protocol"
)

// MinSTSDuration is the shortest lifetime STS AssumeRole grants (AWS and
// MinIO alike). Shorter access is enforced by the session policy's time
// condition instead (see RunPolicy).
const MinSTSDuration = 15 * time.Minute

// STSConfig says how to ask for temporary credentials.
type STSConfig struct {
	// Endpoint is the STS API's base URL. Default: the store's endpoint
	// (MinIO serves STS there); for AWS, "https://sts.amazonaws.com" or a
	// regional one.
	Endpoint string
	// RoleARN is the role to assume. AWS requires it; MinIO ignores it
	// (the session inherits the calling user's policy, narrowed by the
	// session policy).
	RoleARN string
}

// Scope is what a set of temporary credentials may reach: reads and writes
// of the objects under Prefix in Bucket, until Until.
type Scope struct {
	Bucket string
	Prefix string
	Until  time.Time
}

// RunPolicy returns the IAM session policy of scope: GetObject and PutObject
// on Bucket/Prefix* only, and only while aws:CurrentTime is before Until. The
// time condition makes access end at Until even though STS never issues
// credentials for less than 15 minutes.
func RunPolicy(s Scope) (string, error) {
	if s.Bucket == "" || s.Prefix == "" {
		return "", errors.New("a run policy needs a bucket and a non-empty prefix")
	}
	if strings.ContainsAny(s.Prefix, "*?$") {
		return "", fmt.Errorf("prefix %q holds a policy wildcard or variable", s.Prefix)
	}
	type statement struct {
		Effect    string
		Action    []string
		Resource  []string
		Condition map[string]map[string]string
	}
	p := struct {
		Version   string
		Statement []statement
	}{
		Version: "2012-10-17",
		Statement: []statement{{
			Effect:   "Allow",
			Action:   []string{"s3:GetObject", "s3:PutObject"},
			Resource: []string{"arn:aws:s3:::" + s.Bucket + "/" + s.Prefix + "*"},
			Condition: map[string]map[string]string{
				"DateLessThan": {"aws:CurrentTime": s.Until.UTC().Format(time.RFC3339)},
			},
		}},
	}
	b, err := json.Marshal(p)
	return string(b), err
}

// AssumeRole asks STS, with the credentials of cfg, for temporary
// credentials narrowed to scope. They are valid until scope.Until by the
// session policy, and for at least MinSTSDuration by STS.
func AssumeRole(ctx context.Context, cfg Config, sc STSConfig, scope Scope, session string) (*protocol.SessionCredentials, error) {
	cfg = cfg.withDefaults()
	policy, err := RunPolicy(scope)
	if err != nil {
		return nil, err
	}
	endpoint := sc.Endpoint
	if endpoint == "" {
		endpoint = cfg.Endpoint
	}
	o := sts.Options{
		Region: cfg.Region,
		Credentials: credentials.NewStaticCredentialsProvider(
			cfg.AccessKeyID, cfg.SecretAccessKey.Reveal(), cfg.SessionToken.Reveal()),
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	}
	if endpoint != "" {
		o.BaseEndpoint = aws.String(endpoint)
	}
	dur := max(time.Until(scope.Until).Round(time.Second)+time.Minute, MinSTSDuration)
	in := &sts.AssumeRoleInput{
		RoleArn:         aws.String(sc.RoleARN),
		RoleSessionName: aws.String(session),
		Policy:          aws.String(policy),
		DurationSeconds: aws.Int32(int32(dur / time.Second)),
	}
	if sc.RoleARN == "" {
		// MinIO wants none; the SDK wants the field set.
		in.RoleArn = aws.String("arn:aws:iam::000000000000:role/sortie")
	}
	out, err := sts.New(o).AssumeRole(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("STS AssumeRole at %s: %w", endpointName(endpoint), stsError(err))
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil {
		return nil, fmt.Errorf("STS AssumeRole at %s: the answer holds no credentials", endpointName(endpoint))
	}
	exp := scope.Until.UTC()
	if c.Expiration != nil && c.Expiration.Before(exp) {
		exp = c.Expiration.UTC()
	}
	return &protocol.SessionCredentials{
		AccessKeyID:     *c.AccessKeyId,
		SecretAccessKey: protocol.Secret(*c.SecretAccessKey),
		SessionToken:    protocol.Secret(*c.SessionToken),
		Expires:         exp,
	}, nil
}

func endpointName(e string) string {
	if e == "" {
		return "AWS STS"
	}
	return e
}

// stsError keeps an STS API error's code and message, which say what to
// fix, and drops the request's details.
func stsError(err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Errorf("%s: %s", ae.ErrorCode(), ae.ErrorMessage())
	}
	return err
}

// STSIssuer mints temporary credentials for prefixes of one bucket with
// the credentials of Store (coordinator.CredentialIssuer).
type STSIssuer struct {
	Store Config
	STS   STSConfig
}

// Issue returns credentials that reach only the objects under prefix in
// the issuer's bucket, and only until until.
func (i *STSIssuer) Issue(ctx context.Context, prefix string, until time.Time, session string) (*protocol.SessionCredentials, error) {
	return AssumeRole(ctx, i.Store, i.STS, Scope{Bucket: i.Store.Bucket, Prefix: prefix, Until: until}, session)
}
