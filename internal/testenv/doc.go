// Package testenv gives tests the real components they run against: a Docker
// engine, a MinIO server, a private registry, locally built images. A component that is absent
// makes the test skip with a message saying how to get it, except under CI
// (CI=true), where an absent component fails the test: in CI nothing skips.
package testenv
