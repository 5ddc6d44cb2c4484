// Package e2e holds the end-to-end tests: a whole run through the
// coordinator, the cloud-init user-data, the local provider, the
// vm-supervisor process, a real Docker engine and a real S3 server
// (MinIO, or the embedded default), with nothing faked.
package e2e
