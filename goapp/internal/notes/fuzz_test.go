package notes

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

// FuzzStore checks, for any name and content, that a valid name stores exactly that content under exactly that
// file name, and that an invalid name is refused without touching the disk.
func FuzzStore(f *testing.F) {
	f.Add("note", []byte("hello"))
	f.Add("..", []byte("x"))
	f.Add("../../etc/passwd", []byte("root"))
	f.Add("a/b", []byte{})
	f.Add(".tmp-x", []byte{0})
	f.Fuzz(func(t *testing.T, name string, content []byte) {
		parent := t.TempDir()
		s := New(filepath.Join(parent, "data"))
		if _, err := s.Prepare(); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.Put(name, bytes.NewReader(content), int64(len(content)))
		if verr := ValidateName(name); verr != nil {
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("Put(%q) = %v; want ErrInvalidName", name, err)
			}
			if names := dirNames(t, s.Dir()); len(names) != 0 {
				t.Fatalf("invalid name %q left %v in the data directory", name, names)
			}
		} else {
			if err != nil {
				t.Fatalf("Put(%q) = %v", name, err)
			}
			got, err := readNote(t, s, name)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("Get(%q) = %q, %v; want %q", name, got, err, content)
			}
			if names := dirNames(t, s.Dir()); len(names) != 1 || names[0] != name {
				t.Fatalf("valid name %q stored as %v", name, names)
			}
		}
		if names := dirNames(t, parent); len(names) != 1 || names[0] != "data" {
			t.Fatalf("name %q wrote outside the data directory: %v", name, names)
		}
	})
}
