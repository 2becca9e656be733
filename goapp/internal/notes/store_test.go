package notes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func newStore(t testing.TB) *Store {
	t.Helper()
	s := New(filepath.Join(t.TempDir(), "data"))
	if _, err := s.Prepare(); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	return s
}

// readNote reads a whole note through Open, as a test's convenience; the store itself only streams.
func readNote(t testing.TB, s *Store, name string) ([]byte, error) {
	t.Helper()
	f, _, err := s.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// listAll reads every page of the listing.
func listAll(t testing.TB, s *Store, limit int) []Info {
	t.Helper()
	var all []Info
	after := ""
	for {
		page, next, err := s.List(after, limit)
		if err != nil {
			t.Fatalf("List(%q, %d): %v", after, limit, err)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		after = next
	}
}

// age makes a file look as old as d, as a file abandoned that long ago would be.
func age(t testing.TB, path string, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

// dirNames lists every entry of dir, hidden ones included.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"Note-1_final.txt", true},
		{"9", true},
		{strings.Repeat("x", MaxNameLength), true},
		{"", false},
		{strings.Repeat("x", MaxNameLength+1), false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"-flag", false},
		{"_x", false},
		{"a/b", false},
		{"../etc/passwd", false},
		{`a\b`, false},
		{"a b", false},
		{"a\x00b", false},
		{"%2e%2e", false},
		{"caf\u00e9", false},
		{"a:b", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			err := ValidateName(tt.name)
			if tt.ok && err != nil {
				t.Fatalf("ValidateName(%q) = %v, want nil", tt.name, err)
			}
			if !tt.ok && !errors.Is(err, ErrInvalidName) {
				t.Fatalf("ValidateName(%q) = %v, want ErrInvalidName", tt.name, err)
			}
		})
	}
}

func TestPutGetListDelete(t *testing.T) {
	s := newStore(t)

	info, created, err := s.Put("b", strings.NewReader("second"), -1)
	if err != nil || !created || info.Name != "b" || info.Size != 6 {
		t.Fatalf("Put new = %+v, %v, %v; want created b of size 6", info, created, err)
	}
	if _, created, err = s.Put("a", strings.NewReader(""), -1); err != nil || !created {
		t.Fatalf("Put empty = %v, %v; want created", created, err)
	}
	if _, created, err = s.Put("b", strings.NewReader("replaced"), -1); err != nil || created {
		t.Fatalf("Put replace = %v, %v; want not created", created, err)
	}
	got, err := readNote(t, s, "b")
	if err != nil || string(got) != "replaced" {
		t.Fatalf("Get = %q, %v; want replaced", got, err)
	}

	list := listAll(t, s, 1)
	if len(list) != 2 || list[0].Name != "a" || list[0].Size != 0 || list[1].Name != "b" || list[1].Size != 8 {
		t.Fatalf("List = %+v; want a (0 bytes), b (8 bytes)", list)
	}

	if err := s.Delete("b"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := readNote(t, s, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete = %v; want ErrNotFound", err)
	}
	if err := s.Delete("b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v; want ErrNotFound", err)
	}
}

func TestInvalidNamesNeverTouchTheDisk(t *testing.T) {
	s := newStore(t)
	for _, name := range []string{"../escape", "..", "", "/abs", ".tmp-x"} {
		if _, _, err := s.Put(name, strings.NewReader("x"), -1); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Put(%q) = %v; want ErrInvalidName", name, err)
		}
		if _, err := readNote(t, s, name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Get(%q) = %v; want ErrInvalidName", name, err)
		}
		if err := s.Delete(name); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Delete(%q) = %v; want ErrInvalidName", name, err)
		}
	}
	if names := dirNames(t, filepath.Dir(s.Dir())); len(names) != 1 {
		t.Fatalf("parent of the data directory holds %v; want only the data directory", names)
	}
	if names := dirNames(t, s.Dir()); len(names) != 0 {
		t.Fatalf("data directory holds %v; want nothing", names)
	}
}

func TestListSkipsForeignEntries(t *testing.T) {
	s := newStore(t)
	if _, _, err := s.Put("note", strings.NewReader("x"), -1); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".tmp-note-123", "has space"} {
		if err := os.WriteFile(filepath.Join(s.Dir(), p), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(s.Dir(), "lostfound"), 0o700); err != nil {
		t.Fatal(err)
	}
	list := listAll(t, s, 10)
	if len(list) != 1 || list[0].Name != "note" {
		t.Fatalf("List = %+v; want only note", list)
	}
}

// failingReader yields some bytes and then an error, like a client that disconnects mid-upload.
type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestFailedWriteKeepsPreviousNote(t *testing.T) {
	s := newStore(t)
	if _, _, err := s.Put("n", strings.NewReader("old content"), -1); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("client went away")
	_, _, err := s.Put("n", &failingReader{data: []byte("new half"), err: cause}, -1)
	if !errors.Is(err, cause) || !errors.Is(err, ErrBodyRead) {
		t.Fatalf("Put with failing reader = %v; want ErrBodyRead and the reader's error", err)
	}
	got, err := readNote(t, s, "n")
	if err != nil || string(got) != "old content" {
		t.Fatalf("after failed Put, Get = %q, %v; want old content", got, err)
	}
	if _, _, err := s.Put("fresh", &failingReader{data: []byte("x"), err: cause}, -1); !errors.Is(err, cause) {
		t.Fatalf("Put = %v; want the reader's error", err)
	}
	if names := dirNames(t, s.Dir()); len(names) != 1 || names[0] != "n" {
		t.Fatalf("data directory holds %v; want only n (no temporary file, no partial note)", names)
	}
}

// crashEnv makes the test binary act as a writer process that dies by SIGKILL in the middle of a note write.
const crashEnv = "GOAPP_NOTES_CRASH_DIR"

// crashingReader hands out half of the content, then kills its own process without any cleanup.
type crashingReader struct{ half []byte }

func (r *crashingReader) Read(p []byte) (int, error) {
	if len(r.half) == 0 {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL cannot be caught; never return
	}
	n := copy(p, r.half)
	r.half = r.half[n:]
	return n, nil
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(stallEnv); dir != "" {
		runStalledWriter(dir)
	}
	if dir := os.Getenv(crashEnv); dir != "" {
		_, _, err := New(dir).Put("victim", &crashingReader{half: bytes.Repeat([]byte("N"), 1<<16)}, -1)
		fmt.Fprintln(os.Stderr, "writer survived its own SIGKILL:", err)
		os.Exit(3)
	}
	os.Exit(m.Run())
}

func TestCrashMidWriteLeavesOldNoteIntact(t *testing.T) {
	s := newStore(t)
	old := bytes.Repeat([]byte("O"), 1<<15)
	if _, _, err := s.Put("victim", bytes.NewReader(old), -1); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashEnv+"="+s.Dir())
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("writer process ended with %v (output %q); want death by SIGKILL", err, out)
	}

	got, err := readNote(t, s, "victim")
	if err != nil || !bytes.Equal(got, old) {
		t.Fatalf("after a crash mid-write the note is %d bytes (err %v); want the old %d bytes intact", len(got), err, len(old))
	}
	// The crash leaves its temporary file, unlocked now that its writer is dead. A start removes it once it is
	// older than the grace period, and not before.
	names := dirNames(t, s.Dir())
	if len(names) != 2 || !strings.HasPrefix(names[0], tempPrefix) {
		t.Fatalf("after the crash the directory holds %v; want the note and one temporary file", names)
	}
	if removed, err := s.Prepare(); err != nil || len(removed) != 0 {
		t.Fatalf("Prepare right after the crash = %v, %v; want the fresh file kept", removed, err)
	}
	age(t, filepath.Join(s.Dir(), names[0]), DefaultStaleAfter+time.Second)
	if removed, err := s.Prepare(); err != nil || !slices.Equal(removed, names[:1]) {
		t.Fatalf("Prepare = %v, %v; want %v removed", removed, err, names[:1])
	}
	if names := dirNames(t, s.Dir()); len(names) != 1 || names[0] != "victim" {
		t.Fatalf("after Prepare the directory holds %v; want only victim", names)
	}
}

func TestConcurrentWritersNeverTear(t *testing.T) {
	s := newStore(t)
	const writers, rounds, size = 4, 20, 8 << 10
	contents := make([][]byte, writers)
	for i := range contents {
		contents[i] = bytes.Repeat([]byte{byte('a' + i)}, size)
	}
	if _, _, err := s.Put("shared", bytes.NewReader(contents[0]), -1); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds*2)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				if _, _, err := s.Put("shared", bytes.NewReader(contents[i]), -1); err != nil {
					errs <- err
				}
				got, err := readNote(t, s, "shared")
				if err != nil {
					errs <- err
					continue
				}
				if len(got) != size || !bytes.Equal(got, bytes.Repeat(got[:1], size)) {
					errs <- fmt.Errorf("read a torn note: %d bytes starting %q", len(got), got[:min(len(got), 8)])
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPrepareReportsUnusableDirectory(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(file).Prepare(); err == nil || !strings.Contains(err.Error(), "data directory") {
		t.Fatalf("Prepare on a regular file = %v; want a data directory error", err)
	}
	if _, err := New(filepath.Join(file, "sub")).Prepare(); err == nil {
		t.Fatal("Prepare below a regular file succeeded; want an error")
	}
}

func TestGetReportsReadErrors(t *testing.T) {
	s := newStore(t)
	// A directory with a valid note name cannot be read as a note.
	if err := os.Mkdir(filepath.Join(s.Dir(), "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := readNote(t, s, "dir"); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a directory = %v; want a read error", err)
	}
}
