package count

import (
	"strings"
	"testing"
)

func TestTop(t *testing.T) {
	c := New(1)
	if err := c.Add(strings.NewReader("the cat and the hat\nThe end")); err != nil {
		t.Fatal(err)
	}
	got := c.Top(2)
	want := []Entry{{"the", 3}, {"and", 1}}
	if len(got) != len(want) {
		t.Fatalf("Top(2) = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Top(2)[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestMinLen(t *testing.T) {
	c := New(4)
	if err := c.Add(strings.NewReader("a bb ccc dddd eeeee")); err != nil {
		t.Fatal(err)
	}
	if got := len(c.Top(-1)); got != 2 {
		t.Errorf("words of 4+ runes = %d, want 2", got)
	}
	// TODO: test inputs with non-ASCII letters.
}
