package notes

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Temporary files and who may remove them.
//
// Several processes share the directory: replicas on one ReadWriteMany volume, and an old and a new pod during
// every rollout. A process that starts must not remove another live process's upload, yet files left by a
// writer that crashed must not pile up. Process ids cannot tell live from dead across pods (each pod has its
// own pid namespace, often on another host), so liveness is a lock instead:
//
//   - a writer holds an exclusive flock(2) on its temporary file from just after creating it until the file is
//     published or removed; the kernel (or, on NFS, the server) drops the lock when the process dies, however
//     it dies;
//   - Prepare removes a temporary file only if it can take that lock itself, and only if the file is older
//     than staleAfter by the file system's own clock. The age covers the instant between a writer's create
//     and its lock, and lock services that are weaker than promised;
//   - a writer that finds its file gone once it holds the lock (a cleaner came in between) starts over.
//
// On NFS, Linux implements flock as a whole-file POSIX lock held by the server, so the locks work across
// hosts with NFSv4 (or NFSv3 with the lock manager). A volume mounted with "nolock" keeps locks local to each
// host: then only the age protects an upload, and an upload stalled for longer than staleAfter while another
// pod starts could lose its temporary file (that client gets a 500, no note is damaged). When a host dies,
// the NFS server releases its locks after the lease time (90 s by default) and the files become removable.
//
// The name carries the owner's host name (the pod name in Kubernetes) and process id, so a leftover file says
// where it came from; the name's random part alone makes it unique.

// tempPrefix marks files being written. Names cannot start with a dot, so these never collide with notes
// and never show up in a listing.
const tempPrefix = ".tmp-"

// DefaultStaleAfter is how old an unlocked temporary file must be before Prepare removes it.
const DefaultStaleAfter = time.Minute

// ownerID names this process in temporary file names: the host name reduced to a safe alphabet, and the pid.
func ownerID() string {
	host, _ := os.Hostname()
	var b strings.Builder
	for _, c := range host {
		if b.Len() == 63 {
			break
		}
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		b.WriteString("host")
	}
	return b.String() + "." + strconv.Itoa(os.Getpid())
}

// createTemp creates a new temporary file in the directory and returns it locked.
func (s *Store) createTemp() (*os.File, error) {
	for range 3 {
		path := filepath.Join(s.dir, tempPrefix+s.owner+"-"+rand.Text())
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		if err := tryLock(f); err != nil {
			// The name is ours alone (O_EXCL, random), so removing it is safe whoever holds the lock.
			_ = os.Remove(path)
			_ = f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				continue // a cleaner is looking at it this instant
			}
			return nil, fmt.Errorf("lock temporary file: %w", err)
		}
		if namedBy(f, path) {
			return f, nil
		}
		_ = f.Close() // removed by a cleaner between create and lock
	}
	return nil, errors.New("temporary files were removed as soon as they were created, three times in a row")
}

// tryLock takes an exclusive lock on f without waiting.
func tryLock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// namedBy reports whether path still names the file f.
func namedBy(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Lstat(path)
	return err == nil && os.SameFile(a, b)
}

// removeStaleTemps removes the temporary files of writers that are gone. fsNow is the file system's current
// time. Files it cannot judge (not openable, not ours) are left alone: cleaning is never a reason to fail.
func (s *Store) removeStaleTemps(fsNow time.Time) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("read data directory: %w", err)
	}
	var removed []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tempPrefix) && e.Type().IsRegular() && s.removeIfStale(e.Name(), fsNow) {
			removed = append(removed, e.Name())
		}
	}
	return removed, nil
}

func (s *Store) removeIfStale(name string, fsNow time.Time) bool {
	path := filepath.Join(s.dir, name)
	// Read-write: on NFS the emulated flock is a write lock, which needs a descriptor open for writing.
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if tryLock(f) != nil {
		return false // its writer is alive
	}
	st, err := f.Stat()
	if err != nil || fsNow.Sub(st.ModTime()) < s.staleAfter || !namedBy(f, path) {
		return false
	}
	err = os.Remove(path)
	return err == nil || errors.Is(err, fs.ErrNotExist)
}
