// Package main is the coordinator command. It starts Sortie runs on disposable VMs and follows them:
// see `coordinator --help` and internal/cli.
package main

import (
	"context"
	"os"

	"github.com/sortie/sortie/internal/cli"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr, version))
}
