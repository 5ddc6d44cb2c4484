package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sortie/sortie/pkg/protocol"
)

// MaxPresignTTL is the longest validity of a presigned URL that Signature
// Version 4 allows.
const MaxPresignTTL = 7 * 24 * time.Hour

// S3 is a client of one bucket of an S3-compatible store. It implements
// protocol.Store; keys are used as given (Config.Prefix is not added). It is
// safe for concurrent use.
type S3 struct {
	client  *s3.Client
	presign *s3.PresignClient
	bucket  string
	region  string
}

var _ protocol.Store = (*S3)(nil)

// Option changes how New builds an S3.
type Option func(*s3.Options)

// WithHTTPClient makes the S3 client send its requests through c.
func WithHTTPClient(c *http.Client) Option {
	return func(o *s3.Options) { o.HTTPClient = c }
}

// New returns a client of the bucket cfg names, after applying the defaults
// and validating cfg. It reads no AWS shared config file or environment
// variable: cfg is all there is. It sends no request.
func New(cfg Config, opts ...Option) (*S3, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("store config: %w", err)
	}
	o := s3.Options{
		Region:       cfg.Region,
		UsePathStyle: cfg.PathStyle,
		Credentials: credentials.NewStaticCredentialsProvider(
			cfg.AccessKeyID, cfg.SecretAccessKey.Reveal(), cfg.SessionToken.Reveal()),
		// Only checksums the API requires: the newer default (CRC
		// trailers on every upload, checksum query parameters on
		// presigned PUTs) is not understood by every S3-compatible store
		// and would make a presigned PUT demand headers that a plain HTTP
		// client does not send.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if cfg.Endpoint != "" {
		o.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	for _, opt := range opts {
		opt(&o)
	}
	c := s3.New(o)
	return &S3{
		client:  c,
		presign: s3.NewPresignClient(c),
		bucket:  cfg.Bucket,
		region:  cfg.Region,
	}, nil
}

// Bucket returns the name of the client's bucket.
func (s *S3) Bucket() string { return s.bucket }

// Get returns the object's bytes, or an error wrapping protocol.ErrNotFound
// if key does not exist.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("get %q: %w", key, protocol.ErrNotFound)
		}
		return nil, fmt.Errorf("get %q: %w", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("get %q: read body: %w", key, err)
	}
	return b, nil
}

// Put writes body, from its start to its end, at key.
func (s *S3) Put(ctx context.Context, key string, body io.ReadSeeker) error {
	_, err := s.put(ctx, key, body, nil)
	if err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	return nil
}

// PutIfAbsent writes body at key only if key does not exist yet, atomically
// (If-None-Match: *). It returns created=false and no error if the key
// already existed; the stored object is then left as it was.
func (s *S3) PutIfAbsent(ctx context.Context, key string, body io.ReadSeeker) (created bool, err error) {
	_, err = s.put(ctx, key, body, aws.String("*"))
	if err != nil {
		if statusCode(err) == http.StatusPreconditionFailed {
			return false, nil
		}
		return false, fmt.Errorf("put %q if absent: %w", key, err)
	}
	return true, nil
}

func (s *S3) put(ctx context.Context, key string, body io.ReadSeeker, ifNoneMatch *string) (*s3.PutObjectOutput, error) {
	n, err := body.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("size body: %w", err)
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind body: %w", err)
	}
	return s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &key,
		Body:          body,
		ContentLength: aws.Int64(n),
		IfNoneMatch:   ifNoneMatch,
	})
}

// Delete removes key; deleting a missing key succeeds.
func (s *S3) Delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %q: %w", key, err)
	}
	return nil
}

// Exists reports whether key exists, with one HEAD request. A missing
// bucket also answers false: HEAD responses carry no error code to tell
// the two apart.
func (s *S3) Exists(ctx context.Context, key string) (bool, error) {
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		if isNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("head %q: %w", key, err)
	}
	return true, nil
}

// PresignGet returns a URL that lets anyone holding it GET key, with no
// other credential, for ttl (at most MaxPresignTTL). It sends no request.
func (s *S3) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := checkTTL(ttl); err != nil {
		return "", fmt.Errorf("presign get %q: %w", key, err)
	}
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key},
		s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presign get %q: %w", key, err)
	}
	return req.URL, nil
}

// PresignPut returns a URL that lets anyone holding it PUT key, with no
// other credential and no header beyond Content-Length, for ttl (at most
// MaxPresignTTL). It sends no request.
func (s *S3) PresignPut(ctx context.Context, key string, ttl time.Duration) (string, error) {
	if err := checkTTL(ttl); err != nil {
		return "", fmt.Errorf("presign put %q: %w", key, err)
	}
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: &s.bucket, Key: &key},
		s3.WithPresignExpires(ttl))
	if err != nil {
		return "", fmt.Errorf("presign put %q: %w", key, err)
	}
	return req.URL, nil
}

func checkTTL(ttl time.Duration) error {
	if ttl <= 0 || ttl > MaxPresignTTL {
		return fmt.Errorf("validity %s is out of range: use more than 0 and at most %s", ttl, MaxPresignTTL)
	}
	return nil
}

// EnsureBucket creates the bucket unless it exists already and can be
// reached with these credentials.
func (s *S3) EnsureBucket(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err == nil {
		return nil
	} else if !isNotFound(err) {
		return fmt.Errorf("head bucket %q: %w", s.bucket, err)
	}
	in := &s3.CreateBucketInput{Bucket: &s.bucket}
	if s.region != DefaultRegion {
		// us-east-1 is the one region that must not be named here.
		in.CreateBucketConfiguration = &types.CreateBucketConfiguration{
			LocationConstraint: types.BucketLocationConstraint(s.region),
		}
	}
	_, err := s.client.CreateBucket(ctx, in)
	if err == nil || errorCode(err) == "BucketAlreadyOwnedByYou" {
		return nil
	}
	if errorCode(err) == "BucketAlreadyExists" {
		// Created concurrently, by us or by someone else (some stores,
		// the embedded one included, say this for our own buckets):
		// good enough if we can reach it.
		if _, herr := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); herr == nil {
			return nil
		}
	}
	return fmt.Errorf("create bucket %q: %w", s.bucket, err)
}

// isNotFound reports whether err says the object does not exist: NoSuchKey,
// or a 404 that does not name the bucket as the missing thing.
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	if errors.As(err, &nsk) {
		return true
	}
	if errorCode(err) == "NoSuchBucket" {
		return false
	}
	return statusCode(err) == http.StatusNotFound
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func statusCode(err error) int {
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}
