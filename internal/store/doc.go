// Package store is the S3 plumbing that the coordinator and the supervisor
// share: a Config for any S3-compatible endpoint (AWS S3, MinIO, Backblaze
// B2, Cloudflare R2, Hetzner Object Storage), an S3 client that implements
// protocol.Store and adds presigning, conditional writes and bucket creation,
// plain-HTTP helpers for presigned URLs, and Embedded, the loopback S3 server
// behind the zero-config default. It imports neither side.
package store
