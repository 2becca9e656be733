// Package notes stores small named documents as files in one directory.
//
// Every write is atomic and durable: content goes to a hidden temporary file in the same directory, which is
// fsynced, renamed over the note and followed by an fsync of the directory. A crash at any point therefore
// leaves either the old note or the new one, never a torn or empty file; at worst a hidden temporary file is
// left behind, and Prepare removes those.
package notes

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// MaxNameLength bounds a note name; together with the alphabet it keeps every name a single, portable file
// name.
const MaxNameLength = 64

// tempPrefix marks files being written. Names cannot start with a dot, so these never collide with notes
// and never show up in a listing.
const tempPrefix = ".tmp-"

var (
	// ErrInvalidName is returned for a name outside the accepted alphabet or length.
	ErrInvalidName = errors.New("invalid note name")
	// ErrNotFound is returned when no note has the name.
	ErrNotFound = errors.New("note not found")
)

// NameRule describes valid names for error messages and documentation.
const NameRule = "1 to 64 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit"

// ValidateName reports whether name is acceptable as a note name. Valid names contain no separator, are never
// "." or "..", never start with a dot and need no escaping on any file system, so a valid name can never
// address a file outside the store's directory.
func ValidateName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLength {
		return fmt.Errorf("%w %q: want %s", ErrInvalidName, name, NameRule)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum || i > 0 && (c == '.' || c == '_' || c == '-') {
			continue
		}
		return fmt.Errorf("%w %q: want %s", ErrInvalidName, name, NameRule)
	}
	return nil
}

// Info describes a stored note.
type Info struct {
	Name     string    `json:"name"`
	Size     int64     `json:"size"`
	Modified time.Time `json:"modified"`
}

// Store keeps notes as files in one directory. It is safe for concurrent use: concurrent writes of one name
// each land whole, and the last rename wins.
type Store struct {
	dir string
}

// New returns a store rooted at dir. It touches nothing on disk; call Prepare before serving.
func New(dir string) *Store {
	return &Store{dir: dir}
}

// Dir is the directory holding the notes.
func (s *Store) Dir() string { return s.dir }

// Prepare creates the directory if needed, removes temporary files left by a crash, and proves the directory
// is writable by writing, syncing and removing a probe file.
func (s *Store) Prepare() error {
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("read data directory: %w", err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) && e.Type().IsRegular() {
			if err := os.Remove(filepath.Join(s.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove stale temporary file: %w", err)
			}
		}
	}
	return s.checkWritable()
}

// checkWritable proves the directory is writable: it writes, syncs and removes a probe file.
func (s *Store) checkWritable() error {
	f, err := os.CreateTemp(s.dir, tempPrefix+"probe-*")
	if err != nil {
		return fmt.Errorf("data directory is not writable: %w", err)
	}
	_, werr := f.Write([]byte("ok"))
	serr := f.Sync()
	cerr := f.Close()
	rerr := os.Remove(f.Name())
	if err := errors.Join(werr, serr, cerr, rerr); err != nil {
		return fmt.Errorf("data directory is not writable: %w", err)
	}
	return nil
}

// Put stores the content read from r under name, replacing any previous note atomically. created reports
// whether no note of that name existed before. If reading r fails (for instance because the body is too
// large) nothing is changed and the reader's error is returned wrapped.
func (s *Store) Put(name string, r io.Reader) (info Info, created bool, err error) {
	if err := ValidateName(name); err != nil {
		return Info{}, false, err
	}
	tmp, err := os.CreateTemp(s.dir, tempPrefix+name+"-*")
	if err != nil {
		return Info{}, false, fmt.Errorf("create temporary file for note %q: %w", name, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	size, err := io.Copy(tmp, r)
	if err != nil {
		return Info{}, false, fmt.Errorf("write note %q: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		return Info{}, false, fmt.Errorf("sync note %q: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return Info{}, false, fmt.Errorf("close note %q: %w", name, err)
	}
	final := filepath.Join(s.dir, name)
	_, statErr := os.Lstat(final)
	created = errors.Is(statErr, fs.ErrNotExist)
	if err := os.Rename(tmp.Name(), final); err != nil {
		return Info{}, false, fmt.Errorf("rename note %q into place: %w", name, err)
	}
	if err := s.syncDir(); err != nil {
		return Info{}, false, fmt.Errorf("sync data directory after writing %q: %w", name, err)
	}
	st, err := os.Stat(final)
	if err != nil {
		return Info{}, false, fmt.Errorf("stat note %q: %w", name, err)
	}
	return Info{Name: name, Size: size, Modified: st.ModTime().UTC()}, created, nil
}

// Get returns the content of the note.
func (s *Store) Get(name string) ([]byte, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(s.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read note %q: %w", name, err)
	}
	return b, nil
}

// Delete removes the note durably.
func (s *Store) Delete(name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	err := os.Remove(filepath.Join(s.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return fmt.Errorf("delete note %q: %w", name, err)
	}
	if err := s.syncDir(); err != nil {
		return fmt.Errorf("sync data directory after deleting %q: %w", name, err)
	}
	return nil
}

// List returns every note sorted by name (os.ReadDir sorts). Files that are not notes (temporary files, foreign files such as
// lost+found on a fresh volume) are left out.
func (s *Store) List() ([]Info, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list notes: %w", err)
	}
	out := make([]Info, 0, len(entries))
	for _, e := range entries {
		if !e.Type().IsRegular() || ValidateName(e.Name()) != nil {
			continue
		}
		st, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return nil, fmt.Errorf("list notes: %w", err)
		}
		out = append(out, Info{Name: e.Name(), Size: st.Size(), Modified: st.ModTime().UTC()})
	}
	return out, nil
}

// syncDir makes a rename or removal in the directory durable.
func (s *Store) syncDir() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	return errors.Join(serr, d.Close())
}
