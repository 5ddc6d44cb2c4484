package agent

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"report.md", true},
		{"artifacts/manifest.txt", true},
		{"a/b/c/d.tar.gz", true},
		{"name with spaces.txt", true},
		{"v1..2.txt", true}, // ".." inside an element is fine
		{"", false},
		{"/etc/passwd", false},
		{"../escape", false},
		{"a/../../escape", false},
		{"a/..", false},
		{"..", false},
		{".", false},
		{"./report.md", false},
		{".hidden", false},
		{"dir/.partial", false},
		{"a//b", false},
		{"dir/", false},
		{"nul\x00byte", false},
	}
	for _, tt := range tests {
		err := CheckName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("CheckName(%q) = %v, want an ErrBadName", tt.name, err)
		}
	}
}

// listTree returns every path under dir, relative, with a trailing slash
// for directories.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var got []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			rel += "/"
		}
		got = append(got, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	return got
}

func TestOutboxPut(t *testing.T) {
	o := Outbox{Dir: t.TempDir()}
	files := map[string]string{
		"report.md":                        "# Report\n",
		"artifacts/workspace-manifest.txt": "abc  main.go\n",
		"artifacts/deep/er/x.bin":          "\x00\x01\x02",
	}
	for name, body := range files {
		n, err := o.Put(name, strings.NewReader(body))
		if err != nil {
			t.Fatalf("Put(%q): %v", name, err)
		}
		if n != int64(len(body)) {
			t.Errorf("Put(%q) wrote %d bytes, want %d", name, n, len(body))
		}
	}
	// Replacing a file is allowed.
	if _, err := o.Put("report.md", strings.NewReader("# Report v2\n")); err != nil {
		t.Fatal(err)
	}
	files["report.md"] = "# Report v2\n"

	want := []string{"artifacts/", "artifacts/deep/", "artifacts/deep/er/", "artifacts/deep/er/x.bin", "artifacts/workspace-manifest.txt", "report.md"}
	if got := listTree(t, o.Dir); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("outbox tree = %v, want %v (no temp files left)", got, want)
	}
	for name, body := range files {
		p := filepath.Join(o.Dir, filepath.FromSlash(name))
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != body {
			t.Errorf("%s = %q, want %q", name, b, body)
		}
		fi, _ := os.Stat(p)
		if fi.Mode().Perm() != 0o644 {
			t.Errorf("%s mode = %v, want 0644", name, fi.Mode().Perm())
		}
	}
}

type failingReader struct{ after int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after == 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), f.after)
	f.after -= n
	return n, nil
}

func TestOutboxPutFailureLeavesNothing(t *testing.T) {
	o := Outbox{Dir: t.TempDir()}
	if _, err := o.Put("sub/report.md", &failingReader{after: 10}); err == nil {
		t.Fatal("Put from a failing reader: err = nil")
	}
	if got := listTree(t, o.Dir); len(got) != 1 || got[0] != "sub/" {
		t.Errorf("outbox tree after a failed Put = %v, want only [sub/]", got)
	}
}

func TestOutboxPutRefuses(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	o := Outbox{Dir: root}
	if err := os.Symlink(outside, filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		badName bool
	}{
		{"../escape.txt", true},
		{"/abs.txt", true},
		{".hidden", true},
		{"link/through-symlink.txt", false},
		{"file/under-a-file.txt", false},
	}
	for _, tt := range tests {
		_, err := o.Put(tt.name, strings.NewReader("data"))
		if err == nil {
			t.Errorf("Put(%q): err = nil, want a refusal", tt.name)
			continue
		}
		if got := errors.Is(err, ErrBadName); got != tt.badName {
			t.Errorf("Put(%q) = %v; ErrBadName %v, want %v", tt.name, err, got, tt.badName)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("Put wrote through a symlink: %v", entries)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(root), "escape.txt")); err == nil {
		t.Error("Put wrote outside the outbox")
	}
}

func TestOutboxMissingDir(t *testing.T) {
	o := Outbox{Dir: filepath.Join(t.TempDir(), "missing")}
	if _, err := o.Put("x.txt", io.LimitReader(strings.NewReader("x"), 1)); err == nil {
		t.Error("Put into a missing outbox: err = nil")
	}
}

func TestOutboxDefaultsToEnv(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(EnvOutbox, dir)
	if _, err := (Outbox{}).Put("env.txt", strings.NewReader("ok")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "env.txt")); err != nil {
		t.Errorf("file not in $%s: %v", EnvOutbox, err)
	}
}
