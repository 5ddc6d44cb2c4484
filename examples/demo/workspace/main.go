// Package main is the wordcount command. It prints the most frequent words of its input files, or of
// standard input when no file is named.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"example.com/wordcount/internal/count"
)

func main() {
	n := flag.Int("n", 10, "number of words to print")
	minLen := flag.Int("min", 1, "ignore words shorter than this")
	flag.Parse()

	c := count.New(*minLen)
	if flag.NArg() == 0 {
		if err := c.Add(os.Stdin); err != nil {
			fail(err)
		}
	}
	for _, name := range flag.Args() {
		// TODO: accept directories and walk them.
		f, err := os.Open(name)
		if err != nil {
			fail(err)
		}
		err = c.Add(f)
		f.Close()
		if err != nil {
			fail(fmt.Errorf("%s: %w", name, err))
		}
	}
	printTop(os.Stdout, c.Top(*n))
}

func printTop(w io.Writer, top []count.Entry) {
	// TODO: align the columns when counts have different widths.
	for _, e := range top {
		fmt.Fprintf(w, "%d\t%s\n", e.N, e.Word)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "wordcount:", err)
	os.Exit(1)
}
