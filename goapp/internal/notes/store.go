// Package notes stores named documents as files in one directory, which several processes (pods on one
// ReadWriteMany volume, or an old and a new pod during a rollout) may share.
//
// Every write is atomic and durable: content goes to a hidden temporary file in the same directory, which is
// fsynced, published under the note's name and followed by an fsync of the directory. A crash at any point
// leaves either the old note or the new one, never a torn or empty file; at worst a hidden temporary file is
// left behind, and a later Prepare removes it once it is provably abandoned (see temp.go).
//
// Publishing decides between "created" and "replaced" atomically across processes: link(2) of the temporary
// file to the name succeeds for exactly one writer of a new name; every other writer then renames over it.
package notes

import (
	"container/heap"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// MaxNameLength bounds a note name; together with the alphabet it keeps every name a single, portable file
// name.
const MaxNameLength = 64

var (
	// ErrInvalidName is returned for a name outside the accepted alphabet or length.
	ErrInvalidName = errors.New("invalid note name")
	// ErrNotFound is returned when no note has the name.
	ErrNotFound = errors.New("note not found")
	// ErrNoSpace is returned when the volume is full (or the quota exhausted); nothing was changed.
	ErrNoSpace = errors.New("no space left in the data directory")
	// ErrReadOnly is returned when the data directory cannot be written because its file system is read-only.
	ErrReadOnly = errors.New("data directory is read-only")
	// ErrBodyRead is returned when the content could not be read (the client's upload broke off); nothing was
	// changed.
	ErrBodyRead = errors.New("reading the content failed")
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

// Store keeps notes as files in one directory. It is safe for concurrent use by goroutines and by processes
// sharing the directory: concurrent writes of one name each land whole, exactly one of the writers of a new
// name is told it created the note, and the last publish wins.
type Store struct {
	dir string
	// owner identifies this process in the names of its temporary files (see temp.go).
	owner string
	// staleAfter is how old an unlocked temporary file must be before Prepare removes it.
	staleAfter time.Duration
}

// New returns a store rooted at dir. It touches nothing on disk; call Prepare before serving.
func New(dir string) *Store {
	return &Store{dir: dir, owner: ownerID(), staleAfter: DefaultStaleAfter}
}

// Dir is the directory holding the notes.
func (s *Store) Dir() string { return s.dir }

// Prepare creates the directory if needed, proves it writable, and removes the temporary files that crashed
// writers left behind, never those of live writers in this or another process. It returns the names it removed.
func (s *Store) Prepare() (removed []string, err error) {
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return nil, fmt.Errorf("create data directory: %w", classify(err))
	}
	fsNow, err := s.checkWritable()
	if err != nil {
		return nil, err
	}
	return s.removeStaleTemps(fsNow)
}

// CheckWritable proves the directory is writable now: it writes, syncs and removes a probe file. A full volume
// gives an error matching ErrNoSpace, a read-only one ErrReadOnly.
func (s *Store) CheckWritable() error {
	_, err := s.checkWritable()
	return err
}

// checkWritable returns the probe file's modification time: the file system's own clock, which Prepare
// compares other files' ages with, so clock skew between hosts sharing the volume does not matter.
func (s *Store) checkWritable() (time.Time, error) {
	f, err := s.createTemp()
	if err != nil {
		return time.Time{}, fmt.Errorf("data directory is not writable: %w", classify(err))
	}
	_, werr := f.Write([]byte("ok"))
	serr := f.Sync()
	st, sterr := f.Stat()
	// Removed while still locked, so no other process can mistake it for abandoned.
	rerr := os.Remove(f.Name())
	cerr := f.Close()
	if err := errors.Join(werr, serr, sterr, rerr, cerr); err != nil {
		return time.Time{}, fmt.Errorf("data directory is not writable: %w", classify(err))
	}
	return st.ModTime(), nil
}

// Put stores the content read from r under name, replacing any previous note atomically. size is the
// expected length when the caller knows it (-1 otherwise): the space is then reserved before anything is read,
// so a full volume is refused at once instead of after receiving the whole upload. created reports whether
// this call created the note. If reading r fails (for instance because the body is too large) nothing is
// changed and the reader's error is returned wrapped; a full volume gives ErrNoSpace and changes nothing.
func (s *Store) Put(name string, r io.Reader, size int64) (info Info, created bool, err error) {
	if err := ValidateName(name); err != nil {
		return Info{}, false, err
	}
	tmp, err := s.createTemp()
	if err != nil {
		return Info{}, false, fmt.Errorf("create temporary file for note %q: %w", name, classify(err))
	}
	published := false
	defer func() {
		if !published {
			// Removed while still locked: nothing half-written is ever visible under any name.
			_ = os.Remove(tmp.Name())
		}
		if cerr := tmp.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close note %q: %w", name, classify(cerr))
		}
	}()
	if size > 0 {
		if err := reserve(tmp, size); err != nil {
			return Info{}, false, fmt.Errorf("reserve %d bytes for note %q: %w", size, name, classify(err))
		}
	}
	body := &readRecorder{r: r}
	n, err := io.Copy(tmp, body)
	if err != nil {
		if body.err != nil {
			return Info{}, false, fmt.Errorf("read note %q: %w: %w", name, ErrBodyRead, err)
		}
		return Info{}, false, fmt.Errorf("write note %q: %w", name, classify(err))
	}
	if err := tmp.Sync(); err != nil {
		return Info{}, false, fmt.Errorf("sync note %q: %w", name, classify(err))
	}
	created, err = publish(tmp, filepath.Join(s.dir, name))
	if err != nil {
		return Info{}, false, fmt.Errorf("publish note %q: %w", name, classify(err))
	}
	published = true
	if err := s.syncDir(); err != nil {
		return Info{}, false, fmt.Errorf("sync data directory after writing %q: %w", name, classify(err))
	}
	// The temporary file's inode is the note's now: its time is the note's, whoever writes next.
	st, err := tmp.Stat()
	if err != nil {
		return Info{}, false, fmt.Errorf("stat note %q: %w", name, err)
	}
	return Info{Name: name, Size: n, Modified: st.ModTime().UTC()}, created, nil
}

// readRecorder remembers the reader's error, so that Put can tell a failed upload (the client's doing) from a
// failed write (the volume's).
type readRecorder struct {
	r   io.Reader
	err error
}

func (r *readRecorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}

// reserve allocates size bytes for f without changing its length, so that ENOSPC comes before the upload is
// read rather than after. File systems without fallocate (some NFS servers) simply skip the reservation.
func reserve(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		return nil
	}
	return err
}

// publish gives the synced temporary file the note's name and reports whether that created the note.
//
// link(2) fails with EEXIST if the name exists, atomically on every POSIX file system and on NFS (the server
// decides), so of several processes creating one name exactly one succeeds; the others replace the note with
// rename(2), which is atomic too. A file system without hard links falls back to renameat2(RENAME_NOREPLACE).
func publish(tmp *os.File, final string) (created bool, err error) {
	err = os.Link(tmp.Name(), final)
	switch {
	case err == nil:
		created = true
	case errors.Is(err, fs.ErrExist):
		// Over NFS a retransmitted LINK whose first reply was lost answers EEXIST although it worked; the link
		// count of our own file tells (the open(2) manual's advice for O_EXCL on NFS).
		if !linkedTwice(tmp) {
			return false, os.Rename(tmp.Name(), final)
		}
		created = true
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EMLINK):
		return publishByRename(tmp.Name(), final)
	default:
		return false, err
	}
	// The note has its own name now; the temporary name goes. Should this fail, the file stays locked until
	// Put returns and a later Prepare removes it as stale: a leftover link, never a lost note.
	_ = os.Remove(tmp.Name())
	return created, nil
}

func linkedTwice(f *os.File) bool {
	st, err := f.Stat()
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && sys.Nlink >= 2
}

// publishByRename is for file systems without hard links: a rename that refuses to replace decides creation
// just as atomically. Where even that is missing, the decision is a check then a rename, and two processes
// creating one name at the same instant may both be told they created it.
func publishByRename(tmpPath, final string) (bool, error) {
	err := unix.Renameat2(unix.AT_FDCWD, tmpPath, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.EEXIST):
		return false, os.Rename(tmpPath, final)
	case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS):
		_, statErr := os.Lstat(final)
		return errors.Is(statErr, fs.ErrNotExist), os.Rename(tmpPath, final)
	default:
		return false, err
	}
}

// Open opens the note for reading; the caller streams it and closes it. The file stays what it was when
// opened: a later Put publishes a different file and a Delete only removes the name, so a reader never sees a
// mix of two versions.
func (s *Store) Open(name string) (*os.File, Info, error) {
	if err := ValidateName(name); err != nil {
		return nil, Info{}, err
	}
	// O_NOFOLLOW: a symbolic link planted in the directory is not a note and must not lead elsewhere.
	f, err := os.OpenFile(filepath.Join(s.dir, name), os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ELOOP) {
		return nil, Info{}, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("open note %q: %w", name, err)
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	if err != nil {
		_ = f.Close()
		return nil, Info{}, fmt.Errorf("read note %q: %w", name, err)
	}
	return f, Info{Name: name, Size: st.Size(), Modified: st.ModTime().UTC()}, nil
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
		return fmt.Errorf("delete note %q: %w", name, classify(err))
	}
	if err := s.syncDir(); err != nil {
		return fmt.Errorf("sync data directory after deleting %q: %w", name, classify(err))
	}
	return nil
}

// List returns up to limit notes whose names sort after the name after ("" for the first page), in name
// order, and next: the position to continue from, empty when nothing follows. Files that are not notes
// (temporary files, foreign files such as lost+found on a fresh volume) are left out.
//
// Memory is O(limit) however many notes there are: the directory is read in batches, and only the limit+1
// smallest names after the position are kept. Positions are names, not offsets, so notes created or deleted
// between two pages never shift a page.
func (s *Store) List(after string, limit int) (notes []Info, next string, err error) {
	if limit < 1 {
		return nil, "", fmt.Errorf("list notes: limit %d is not positive", limit)
	}
	d, err := os.Open(s.dir)
	if err != nil {
		return nil, "", fmt.Errorf("list notes: %w", err)
	}
	defer d.Close()
	smallest := &maxHeap{}
	for {
		entries, err := d.ReadDir(1024)
		for _, e := range entries {
			name := e.Name()
			if name <= after || !e.Type().IsRegular() || ValidateName(name) != nil {
				continue
			}
			if smallest.Len() <= limit {
				heap.Push(smallest, name)
			} else if name < (*smallest)[0] {
				(*smallest)[0] = name
				heap.Fix(smallest, 0)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, "", fmt.Errorf("list notes: %w", err)
		}
	}
	names := []string(*smallest)
	slices.Sort(names)
	if len(names) > limit {
		names = names[:limit]
		next = names[limit-1]
	}
	notes = make([]Info, 0, len(names))
	for _, name := range names {
		st, err := os.Lstat(filepath.Join(s.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since the directory was read
		}
		if err != nil {
			return nil, "", fmt.Errorf("list notes: %w", err)
		}
		notes = append(notes, Info{Name: name, Size: st.Size(), Modified: st.ModTime().UTC()})
	}
	return notes, next, nil
}

// maxHeap keeps the largest name on top, so the largest of the smallest names seen so far is replaced first.
type maxHeap []string

func (h maxHeap) Len() int           { return len(h) }
func (h maxHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h maxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *maxHeap) Push(x any)        { *h = append(*h, x.(string)) }
func (h *maxHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// classify marks the errors a client may be told about: a full volume and a read-only one.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", ErrNoSpace, err)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return err
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
