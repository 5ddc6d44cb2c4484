package store

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/sortie/sortie/pkg/protocol"
)

// DefaultRegion is the signing region used when Config.Region is empty. It is
// also what MinIO and most S3-compatible stores expect unless configured
// otherwise.
const DefaultRegion = "us-east-1"

// Config says how to reach one bucket of an S3-compatible store.
type Config struct {
	// Endpoint is the base URL of the S3 API, such as
	// "https://fsn1.your-objectstorage.com" or "http://127.0.0.1:9000".
	// Default: empty, meaning AWS S3 in Region.
	Endpoint string
	// Region is the signing region. Default: DefaultRegion ("us-east-1").
	Region string
	// Bucket is the bucket's name. Required.
	Bucket string
	// Prefix is the key prefix everything of Sortie lives under (for
	// example "sortie"). The S3 client does not add it to keys: callers
	// pass it to protocol.NewRunKeys. Default: empty, the bucket's root.
	Prefix string
	// PathStyle addresses the bucket as https://endpoint/bucket/key instead
	// of https://bucket.endpoint/key. MinIO and the embedded server need it.
	// Default: false (virtual-hosted style).
	PathStyle bool
	// AccessKeyID and SecretAccessKey are the S3 credentials. Required.
	AccessKeyID     string
	SecretAccessKey protocol.Secret
	// SessionToken goes with temporary (STS) credentials. Default: empty.
	SessionToken protocol.Secret
}

// FromAccess returns the Config for the store access handed to a VM.
func FromAccess(a protocol.StoreAccess) Config {
	return Config{
		Endpoint:        a.Endpoint,
		Region:          a.Region,
		Bucket:          a.Bucket,
		Prefix:          a.Prefix,
		PathStyle:       a.PathStyle,
		AccessKeyID:     a.AccessKeyID,
		SecretAccessKey: a.SecretAccessKey,
		SessionToken:    a.SessionToken,
	}
}

// withDefaults returns c with every empty field that has a default filled in.
func (c Config) withDefaults() Config {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	return c
}

// bucketName follows the S3 rules for new buckets (underscores are allowed for
// the stores that still accept them).
var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$`)

// Validate reports every problem of c at once. Empty fields that have a
// default are not problems.
func (c Config) Validate() error {
	var errs []error
	if c.Endpoint != "" {
		if err := validateEndpoint(c.Endpoint); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Region != "" && strings.ContainsFunc(c.Region, func(r rune) bool {
		return r == '/' || unicode.IsSpace(r) || unicode.IsControl(r)
	}) {
		errs = append(errs, fmt.Errorf("store region %q contains a slash, space or control character: set a region name such as %q", c.Region, DefaultRegion))
	}
	switch {
	case c.Bucket == "":
		errs = append(errs, errors.New("store bucket is empty: set the name of the bucket to use"))
	case !bucketName.MatchString(c.Bucket):
		errs = append(errs, fmt.Errorf("store bucket %q is not a valid bucket name: use 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit", c.Bucket))
	}
	if err := validatePrefix(c.Prefix); err != nil {
		errs = append(errs, err)
	}
	if c.AccessKeyID == "" {
		errs = append(errs, errors.New("store access key ID is empty: set the S3 access key ID"))
	}
	if c.SecretAccessKey == "" {
		errs = append(errs, errors.New("store secret access key is empty: set the S3 secret access key"))
	}
	return errors.Join(errs...)
}

func validateEndpoint(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error would repeat the input, which may carry a password.
		return errors.New("store endpoint is not a valid URL: set it to a base URL such as https://s3.example.com")
	}
	if u.User != nil {
		return fmt.Errorf("store endpoint %q carries credentials: remove them from the URL and set the access key fields instead", u.Redacted())
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("store endpoint %q has no http or https scheme: set it to a base URL such as https://s3.example.com", s)
	}
	if u.Host == "" {
		return fmt.Errorf("store endpoint %q has no host: set it to a base URL such as https://s3.example.com", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("store endpoint %q has a query or fragment: remove it", u.Redacted())
	}
	return nil
}

func validatePrefix(p string) error {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	if !utf8.ValidString(p) {
		return fmt.Errorf("store prefix %q is not valid UTF-8: use a plain path such as \"sortie\"", p)
	}
	if strings.ContainsFunc(p, func(r rune) bool { return r == '\\' || unicode.IsControl(r) }) {
		return fmt.Errorf("store prefix %q contains a backslash or control character: use a plain path such as \"sortie\"", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("store prefix %q has an empty, \".\" or \"..\" element: use a plain path such as \"sortie\"", p)
		}
	}
	return nil
}
