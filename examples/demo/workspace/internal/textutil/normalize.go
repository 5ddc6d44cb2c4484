// Package textutil splits text into normalised words.
package textutil

import (
	"strings"
	"unicode"
)

// Words splits s at every rune that is not a letter, digit or apostrophe and
// returns the lower-cased pieces.
func Words(s string) []string {
	// FIXME: "don't" and "dont" count as different words.
	f := strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '\''
	})
	for i, w := range f {
		f[i] = strings.ToLower(strings.Trim(w, "'"))
	}
	return f
}
