// Package hcloudfake is a stateful HTTP fake of the Hetzner Cloud API for tests
// of code built on the real hcloud-go client: point the client at the fake with
// hcloud.WithEndpoint(fake.URL()) and it speaks the same wire format (hcloud-go's
// own schema types), validates input like the real API (RFC 1123 server names,
// unique names, label syntax, the 32 KiB user-data limit), enforces the
// RateLimit-* budget, runs servers through their status transitions with
// asynchronous actions, and lets a test inject faults (capacity errors, 5xx,
// 429, locked servers, failed actions, dropped connections) while it runs. A
// boot hook lets a test turn each created server into a local VM booted from
// its user-data, and WithSpecValidation checks every request and response
// against the official OpenAPI description of the API.
package hcloudfake
