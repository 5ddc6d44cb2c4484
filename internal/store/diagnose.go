package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Problem is the kind of trouble a store error shows, so that a caller can
// tell a user what to fix without matching message text.
type Problem int

// The kinds of Problem.
const (
	ProblemOther       Problem = iota // none of the below
	ProblemUnreachable                // no answer: DNS, connection refused, TLS, timeout
	ProblemUnknownKey                 // the store does not know the access key ID
	ProblemBadSecret                  // the signature does not match: a wrong secret key
	ProblemNoBucket                   // the bucket does not exist
	ProblemDenied                     // the credentials may not do this
	ProblemClockSkew                  // the request's time is too far from the store's
	ProblemWrongRegion                // the bucket is in another region than the one signed for
)

// Classify says what kind of Problem err, from a call of this package,
// shows. HEAD answers carry no error code, so a refused HEAD is only
// ProblemDenied or ProblemOther.
func Classify(err error) Problem {
	if err == nil {
		return ProblemOther
	}
	switch errorCode(err) {
	case "InvalidAccessKeyId":
		return ProblemUnknownKey
	case "SignatureDoesNotMatch":
		return ProblemBadSecret
	case "NoSuchBucket":
		return ProblemNoBucket
	case "AccessDenied", "AllAccessDisabled", "InvalidToken", "ExpiredToken":
		return ProblemDenied
	case "RequestTimeTooSkewed":
		return ProblemClockSkew
	case "AuthorizationHeaderMalformed", "PermanentRedirect", "IllegalLocationConstraintException":
		return ProblemWrongRegion
	}
	var se *smithyhttp.RequestSendError
	var ne net.Error
	if errors.As(err, &se) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) {
		return ProblemUnreachable
	}
	switch statusCode(err) {
	case http.StatusForbidden:
		return ProblemDenied
	case http.StatusMovedPermanently:
		return ProblemWrongRegion
	}
	return ProblemOther
}

// ClockSkew returns how far the store's clock is ahead of this machine's
// (negative: behind), from the Date header of the answer to one HEAD of the
// bucket. Any answer will do, a refusal too, so it works with wrong
// credentials. The Date header has a resolution of one second, so the
// result is good to about a second.
func (s *S3) ClockSkew(ctx context.Context) (time.Duration, error) {
	var c dateCapture
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}, func(o *s3.Options) {
		o.RetryMaxAttempts = 1
		o.APIOptions = append(o.APIOptions, c.register)
	})
	if c.date == "" {
		if err == nil {
			err = errors.New("the answer has no Date header")
		}
		return 0, fmt.Errorf("read the store's clock: %w", err)
	}
	server, perr := http.ParseTime(c.date)
	if perr != nil {
		return 0, fmt.Errorf("read the store's clock: Date header %q: %w", c.date, perr)
	}
	// The header truncates to the second: the server's time was within
	// the second after it, and ours is taken halfway through the request.
	server = server.Add(500 * time.Millisecond)
	local := c.sent.Add(c.received.Sub(c.sent) / 2)
	return server.Sub(local), nil
}

// dateCapture records the Date header of the raw answer and when the
// request went out and its answer came back.
type dateCapture struct {
	date           string
	sent, received time.Time
}

func (c *dateCapture) register(st *middleware.Stack) error {
	return st.Deserialize.Add(middleware.DeserializeMiddlewareFunc("sortieDate",
		func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			c.sent = time.Now()
			out, md, err := next.HandleDeserialize(ctx, in)
			c.received = time.Now()
			if resp, ok := out.RawResponse.(*smithyhttp.Response); ok {
				c.date = resp.Header.Get("Date")
			}
			return out, md, err
		}), middleware.After)
}
