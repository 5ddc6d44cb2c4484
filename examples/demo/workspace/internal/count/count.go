// Package count counts words and ranks them by frequency.
package count

import (
	"bufio"
	"io"
	"sort"

	"example.com/wordcount/internal/textutil"
)

// Entry is one word and how often it occurred.
type Entry struct {
	Word string
	N    int
}

// Counter accumulates word counts over any number of inputs.
type Counter struct {
	minLen int
	counts map[string]int
}

// New returns a Counter that ignores words shorter than minLen runes.
func New(minLen int) *Counter {
	return &Counter{minLen: minLen, counts: make(map[string]int)}
}

// Add counts the words of r.
func (c *Counter) Add(r io.Reader) error {
	sc := bufio.NewScanner(r)
	// FIXME: lines longer than 64 KiB make Scan fail with ErrTooLong.
	for sc.Scan() {
		for _, w := range textutil.Words(sc.Text()) {
			if len([]rune(w)) >= c.minLen {
				c.counts[w]++
			}
		}
	}
	return sc.Err()
}

// Top returns the n most frequent words, most frequent first; ties are
// broken alphabetically.
func (c *Counter) Top(n int) []Entry {
	all := make([]Entry, 0, len(c.counts))
	for w, k := range c.counts {
		all = append(all, Entry{Word: w, N: k})
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].N != all[j].N {
			return all[i].N > all[j].N
		}
		return all[i].Word < all[j].Word
	})
	if n >= 0 && n < len(all) {
		all = all[:n]
	}
	return all
}
