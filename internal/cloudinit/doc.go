// Package cloudinit renders the minimal cloud-init user-data that turns a
// fresh VM into a Sortie run: it writes the boot file, arms a dead-man's
// switch that powers the VM off at its hard deadline whatever happens to the
// supervisor, downloads the vm-supervisor over a presigned URL, checks its
// SHA-256 and starts it as a system service. Parse reads the same user-data
// back, for the local provider (which boots a "VM" from it) and for tests.
package cloudinit
