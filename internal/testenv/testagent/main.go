// Package main is the testagent command, a tiny agent for end-to-end tests. It is built as a
// static binary and put into a FROM scratch image (see testenv.TestAgentImage);
// flags say what it does, in this order:
//
//	-log-bytes N          write N bytes of numbered lines to stdout: line i
//	                      (from 0) is fmt.Sprintf("%08d ", i), 90 'x' and a
//	                      newline (100 bytes); the last line may be short
//	-stderr TEXT          write TEXT to stderr
//	-outbox a=TEXT        write outbox file a with TEXT (repeatable)
//	-outbox-size a=N      write outbox file a with N pseudo-random bytes
//	                      seeded by its name (repeatable)
//	-symlink name=target  create the symlink name -> target in the outbox
//	                      (repeatable)
//	-wait-message D       wait up to D for a message file in the inbox, then
//	                      write reply-<seq>.txt with "got: <text>" into the
//	                      outbox; exit 4 on timeout
//	-sleep D              sleep for D, or "forever"
//	-exit N               exit with N
//
// -ignore-term makes it ignore SIGTERM for its whole life; otherwise SIGTERM
// makes it exit with 143 (128+15) at any point. Outbox files appear whole:
// each is written to a dot-temp file and renamed. The inbox is $SORTIE_INBOX
// (default /sortie/inbox) and the outbox $SORTIE_OUTBOX (default
// /sortie/outbox). Any failure exits with 1 after a message on stderr.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sortie/sortie/internal/testenv/agentdata"
	"github.com/sortie/sortie/pkg/protocol"
)

// exitTimeout is the exit code when -wait-message times out.
const exitTimeout = 4

type pairs []string

func (p *pairs) String() string { return strings.Join(*p, ",") }
func (p *pairs) Set(v string) error {
	if !strings.Contains(v, "=") {
		return fmt.Errorf("%q: want name=value", v)
	}
	*p = append(*p, v)
	return nil
}

func main() {
	var (
		logBytes    = flag.Int64("log-bytes", 0, "bytes of numbered lines to write to stdout")
		stderrText  = flag.String("stderr", "", "text to write to stderr")
		waitMessage = flag.Duration("wait-message", 0, "how long to wait for an inbox message (0: do not wait)")
		sleep       = flag.String("sleep", "", `how long to sleep: a duration or "forever"`)
		ignoreTerm  = flag.Bool("ignore-term", false, "ignore SIGTERM")
		exitCode    = flag.Int("exit", 0, "exit code")
		outbox      pairs
		outboxSize  pairs
		symlinks    pairs
		copies      pairs
		envOut      pairs
		timed       = flag.String("outbox-timed", "", "N:INTERVAL: write N outbox files t-000.txt... INTERVAL apart, each holding the Unix nanoseconds at its close")
	)
	flag.Var(&outbox, "outbox", "name=TEXT: write an outbox file (repeatable)")
	flag.Var(&outboxSize, "outbox-size", "name=N: write an outbox file of N pseudo-random bytes (repeatable)")
	flag.Var(&envOut, "env-to-outbox", "NAME=file: write environment variable NAME into outbox file (repeatable)")
	flag.Var(&copies, "copy", "src=name: copy file src (such as /workspace/x) into the outbox as name (repeatable)")
	flag.Var(&symlinks, "symlink", "name=target: create a symlink in the outbox (repeatable)")
	flag.Parse()

	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	} else {
		// As PID 1 of a container, a signal without a handler is ignored;
		// say explicitly that SIGTERM ends the agent.
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			os.Exit(128 + int(syscall.SIGTERM))
		}()
	}

	inboxDir := envOr("SORTIE_INBOX", "/sortie/inbox")
	outboxDir := envOr("SORTIE_OUTBOX", "/sortie/outbox")

	if *logBytes > 0 {
		check(writeLines(os.Stdout, *logBytes))
	}
	if *stderrText != "" {
		_, err := io.WriteString(os.Stderr, *stderrText)
		check(err)
	}
	for _, p := range outbox {
		name, text, _ := strings.Cut(p, "=")
		check(writeOutbox(outboxDir, name, []byte(text)))
	}
	for _, p := range outboxSize {
		name, size, _ := strings.Cut(p, "=")
		n, err := strconv.ParseInt(size, 10, 64)
		check(err)
		check(writeOutbox(outboxDir, name, agentdata.PseudoRandom(name, n)))
	}
	if *timed != "" {
		ns, iv, _ := strings.Cut(*timed, ":")
		n, err := strconv.Atoi(ns)
		check(err)
		d, err := time.ParseDuration(iv)
		check(err)
		for i := 0; i < n; i++ {
			check(writeOutbox(outboxDir, fmt.Sprintf("t-%03d.txt", i), []byte(strconv.FormatInt(time.Now().UnixNano(), 10))))
			time.Sleep(d)
		}
	}
	for _, p := range envOut {
		name, file, _ := strings.Cut(p, "=")
		check(writeOutbox(outboxDir, file, []byte(os.Getenv(name))))
	}
	for _, p := range copies {
		src, name, _ := strings.Cut(p, "=")
		b, err := os.ReadFile(src)
		check(err)
		check(writeOutbox(outboxDir, name, b))
	}
	for _, p := range symlinks {
		name, target, _ := strings.Cut(p, "=")
		check(os.Symlink(target, filepath.Join(outboxDir, name)))
	}
	if *waitMessage > 0 {
		m, err := awaitMessage(inboxDir, *waitMessage)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			fmt.Fprintf(os.Stderr, "testagent: no inbox message within %s\n", *waitMessage)
			os.Exit(exitTimeout)
		}
		check(err)
		check(writeOutbox(outboxDir, fmt.Sprintf("reply-%d.txt", m.Seq), []byte("got: "+m.Text)))
	}
	switch *sleep {
	case "":
	case "forever":
		// Not select{}: with nothing else to wake it, the runtime would
		// call that a deadlock and exit.
		for {
			time.Sleep(time.Hour)
		}
	default:
		d, err := time.ParseDuration(*sleep)
		check(err)
		time.Sleep(d)
	}
	os.Exit(*exitCode)
}

// writeLines writes n bytes of numbered lines to w.
func writeLines(w io.Writer, n int64) error {
	_, err := w.Write(agentdata.Lines(n))
	return err
}

// writeOutbox writes dir/name whole: a dot-temp file renamed into place.
func writeOutbox(dir, name string, data []byte) error {
	tmp := filepath.Join(dir, ".tmp-"+name)
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, name))
}

// awaitMessage waits up to d for a file not starting with '.' in dir (the
// first in name order) and decodes it. It returns os.ErrDeadlineExceeded on
// timeout.
func awaitMessage(dir string, d time.Duration) (*protocol.Message, error) {
	deadline := time.Now().Add(d)
	for {
		entries, err := os.ReadDir(dir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		var names []string
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") && e.Type().IsRegular() {
				names = append(names, e.Name())
			}
		}
		if len(names) > 0 {
			sort.Strings(names)
			b, err := os.ReadFile(filepath.Join(dir, names[0]))
			if err != nil {
				return nil, err
			}
			var m protocol.Message
			if err := json.Unmarshal(b, &m); err != nil {
				return nil, fmt.Errorf("inbox file %s: %w", names[0], err)
			}
			return &m, nil
		}
		if time.Now().After(deadline) {
			return nil, os.ErrDeadlineExceeded
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func check(err error) {
	if err != nil {
		fmt.Fprintf(os.Stderr, "testagent: %v\n", err)
		os.Exit(1)
	}
}
