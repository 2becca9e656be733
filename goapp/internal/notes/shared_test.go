package notes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// stallEnv makes the test binary act as a writer process whose upload stalls half way and never finishes:
// another pod's upload in progress.
const stallEnv = "GOAPP_NOTES_STALL_DIR"

// stallingReader hands out half of the content, then blocks for ever.
type stallingReader struct{ half []byte }

func (r *stallingReader) Read(p []byte) (int, error) {
	if len(r.half) == 0 {
		time.Sleep(time.Hour) // not select{}: the runtime would end a process with nothing else to run
	}
	n := copy(p, r.half)
	r.half = r.half[n:]
	return n, nil
}

func runStalledWriter(dir string) {
	_, _, err := New(dir).Put("in-progress", &stallingReader{half: bytes.Repeat([]byte("S"), 1<<12)}, -1)
	fmt.Fprintln(os.Stderr, "stalled writer returned:", err)
	os.Exit(3)
}

// tempFiles lists the temporary files in dir.
func tempFiles(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	for _, name := range dirNames(t, dir) {
		if strings.HasPrefix(name, tempPrefix) {
			out = append(out, name)
		}
	}
	return out
}

// TestPrepareSparesAnotherProcessUpload is the rollout case: a second process starts (Prepare) while the first
// is writing a note. The writer's temporary file survives even when it looks old, because its writer holds the
// lock; once the writer is dead, the next start removes it.
func TestPrepareSparesAnotherProcessUpload(t *testing.T) {
	s := newStore(t)
	writer := exec.Command(os.Args[0], "-test.run=^$")
	writer.Env = append(os.Environ(), stallEnv+"="+s.Dir())
	writer.Stderr = os.Stderr
	if err := writer.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = writer.Process.Kill(); _ = writer.Wait() })

	var temp string
	for deadline := time.Now().Add(10 * time.Second); ; {
		if names := tempFiles(t, s.Dir()); len(names) == 1 {
			if st, err := os.Stat(filepath.Join(s.Dir(), names[0])); err == nil && st.Size() > 0 {
				temp = names[0]
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writer process never started its upload; directory: %v", dirNames(t, s.Dir()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.HasPrefix(temp, tempPrefix+ownerHost()) {
		t.Errorf("temporary file %q does not name its owner's host %q", temp, ownerHost())
	}
	age(t, filepath.Join(s.Dir(), temp), time.Hour)

	if removed, err := New(s.Dir()).Prepare(); err != nil || len(removed) != 0 {
		t.Fatalf("a starting process's Prepare = %v, %v; want the live upload left alone", removed, err)
	}
	if names := tempFiles(t, s.Dir()); !slices.Equal(names, []string{temp}) {
		t.Fatalf("after another process started, temporary files are %v; want %v", names, []string{temp})
	}

	if err := writer.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = writer.Wait()
	if removed, err := New(s.Dir()).Prepare(); err != nil || !slices.Equal(removed, []string{temp}) {
		t.Fatalf("Prepare after the writer died = %v, %v; want %v removed", removed, err, temp)
	}
	if names := dirNames(t, s.Dir()); len(names) != 0 {
		t.Fatalf("directory holds %v; want nothing (the stalled upload never became a note)", names)
	}
}

func ownerHost() string {
	owner := ownerID()
	return owner[:strings.LastIndexByte(owner, '.')]
}

// TestPrepareJudgesTemporaryFilesByLockAndAge covers each case in one process: flock(2) locks of two open
// files conflict even within a process, as they do between processes.
func TestPrepareJudgesTemporaryFilesByLockAndAge(t *testing.T) {
	s := newStore(t)
	live, err := New(s.Dir()).createTemp()
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	age(t, live.Name(), time.Hour)

	plant := func(name string, old bool) string {
		path := filepath.Join(s.Dir(), name)
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if old {
			age(t, path, DefaultStaleAfter+time.Second)
		}
		return name
	}
	abandoned := plant(tempPrefix+"gone-pod.7-ABC", true)
	fresh := plant(tempPrefix+"other-pod.9-DEF", false)
	note := plant("note", true)
	if err := os.Symlink("/etc/passwd", filepath.Join(s.Dir(), tempPrefix+"link")); err != nil {
		t.Fatal(err)
	}

	removed, err := s.Prepare()
	if err != nil || !slices.Equal(removed, []string{abandoned}) {
		t.Fatalf("Prepare = %v, %v; want only %s removed", removed, err, abandoned)
	}
	want := []string{filepath.Base(live.Name()), tempPrefix + "link", fresh, note}
	slices.Sort(want)
	if got := dirNames(t, s.Dir()); !slices.Equal(got, want) {
		t.Fatalf("directory holds %v; want %v (locked, symlink, fresh and the note kept)", got, want)
	}
}

// TestCreateTempStartsOverWhenRemovedBeforeLocked covers the instant between a writer's create and its lock.
func TestCreateTempStartsOverWhenRemovedBeforeLocked(t *testing.T) {
	s := newStore(t)
	f, err := s.createTemp()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !namedBy(f, f.Name()) {
		t.Fatal("a fresh temporary file is not named by its path")
	}
	if err := os.Remove(f.Name()); err != nil {
		t.Fatal(err)
	}
	if namedBy(f, f.Name()) {
		t.Fatal("namedBy holds for a removed file; createTemp would keep writing into a file no one can publish")
	}
}

// TestConcurrentCreateIsDecidedOnce: of many writers of one new name, exactly one is told it created the note
// and the note is one writer's content, whole.
func TestConcurrentCreateIsDecidedOnce(t *testing.T) {
	s := newStore(t)
	const writers, rounds = 20, 5
	for round := range rounds {
		name := fmt.Sprintf("contended-%d", round)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var creates int
		var errs []error
		start := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				body := bytes.Repeat([]byte{byte('A' + i)}, 4096)
				// Each writer its own Store, as each process has.
				_, created, err := New(s.Dir()).Put(name, bytes.NewReader(body), int64(len(body)))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
				}
				if created {
					creates++
				}
			}()
		}
		close(start)
		wg.Wait()
		if len(errs) != 0 || creates != 1 {
			t.Fatalf("round %d: %d writers were told they created %q (errors %v); want exactly 1", round, creates, name, errs)
		}
		got, err := readNote(t, s, name)
		if err != nil || len(got) != 4096 || !bytes.Equal(got, bytes.Repeat(got[:1], 4096)) {
			t.Fatalf("round %d: note = %d bytes, %v; want one writer's 4096 bytes", round, len(got), err)
		}
	}
	if names := tempFiles(t, s.Dir()); len(names) != 0 {
		t.Fatalf("temporary files left behind: %v", names)
	}
}

func TestPublishByRename(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	final := filepath.Join(dir, "note")
	if created, err := publishByRename(write(".tmp-1", "one"), final); err != nil || !created {
		t.Fatalf("first publish = %v, %v; want created", created, err)
	}
	if created, err := publishByRename(write(".tmp-2", "two"), final); err != nil || created {
		t.Fatalf("second publish = %v, %v; want replaced", created, err)
	}
	if got, _ := os.ReadFile(final); string(got) != "two" {
		t.Fatalf("note = %q; want the second content", got)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"note"}) {
		t.Fatalf("directory holds %v; want only the note", names)
	}
}

// TestOpenIsASnapshot: a reader streams the version it opened, whatever happens to the name meanwhile.
func TestOpenIsASnapshot(t *testing.T) {
	s := newStore(t)
	first := bytes.Repeat([]byte("1"), 1<<16)
	if _, _, err := s.Put("doc", bytes.NewReader(first), -1); err != nil {
		t.Fatal(err)
	}
	f, info, err := s.Open("doc")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if info.Size != int64(len(first)) || info.Name != "doc" {
		t.Fatalf("Open info = %+v; want doc of %d bytes", info, len(first))
	}
	head := make([]byte, 10)
	if _, err := io.ReadFull(f, head); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put("doc", strings.NewReader("second version"), -1); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("doc"); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(append(head, rest...), first) {
		t.Fatalf("the open reader got %d bytes, %v; want the whole first version", len(head)+len(rest), err)
	}
}

func TestOpenRefusesWhatIsNotANote(t *testing.T) {
	s := newStore(t)
	if err := os.Symlink("/etc/hostname", filepath.Join(s.Dir(), "link")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open("link"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of a symbolic link = %v; want ErrNotFound", err)
	}
	if _, _, err := s.Open("absent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of a missing note = %v; want ErrNotFound", err)
	}
}

func TestListPages(t *testing.T) {
	s := newStore(t)
	var want []string
	for i := 24; i >= 0; i-- { // written in reverse: the order comes from the names, not from the disk
		name := fmt.Sprintf("n%02d", i)
		want = append([]string{name}, want...)
		if _, _, err := s.Put(name, strings.NewReader(name), -1); err != nil {
			t.Fatal(err)
		}
	}
	for _, foreign := range []string{tempPrefix + "x", "has space", "-dash"} {
		if err := os.WriteFile(filepath.Join(s.Dir(), foreign), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(s.Dir(), "lostfound"), 0o700); err != nil {
		t.Fatal(err)
	}

	for _, limit := range []int{1, 7, 10, 24, 25, 26, 1000} {
		var got []string
		pages := 0
		for after := ""; ; {
			page, next, err := s.List(after, limit)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(page) > limit || (next != "" && len(page) != limit) {
				t.Fatalf("limit %d: a page of %d notes with next %q", limit, len(page), next)
			}
			for _, info := range page {
				got = append(got, info.Name)
				if info.Size != int64(len(info.Name)) || info.Modified.IsZero() {
					t.Fatalf("limit %d: %+v lacks its size or time", limit, info)
				}
			}
			if next == "" {
				break
			}
			after = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("limit %d: pages gave %v; want %v", limit, got, want)
		}
		if wantPages := max(1, (len(want)+limit-1)/limit); pages != wantPages && pages != wantPages+1 {
			t.Fatalf("limit %d: %d pages; want %d", limit, pages, wantPages)
		}
	}

	// A position need not be a note: the listing continues after it in name order.
	page, next, err := s.List("n10x", 3)
	if err != nil || next != "n13" || len(page) != 3 || page[0].Name != "n11" {
		t.Fatalf("List after n10x = %v, %q, %v; want n11..n13 and more", page, next, err)
	}
	if page, next, err := s.List("zzz", 3); err != nil || len(page) != 0 || next != "" {
		t.Fatalf("List after the last note = %v, %q, %v; want an empty last page", page, next, err)
	}
	if _, _, err := s.List("", 0); err == nil {
		t.Fatal("List with limit 0 succeeded")
	}
}

func TestClassify(t *testing.T) {
	pathErr := func(errno syscall.Errno) error { return &fs.PathError{Op: "write", Path: "/data/x", Err: errno} }
	for _, tt := range []struct {
		err  error
		want error
	}{
		{pathErr(syscall.ENOSPC), ErrNoSpace},
		{pathErr(syscall.EDQUOT), ErrNoSpace},
		{pathErr(syscall.EROFS), ErrReadOnly},
	} {
		got := classify(tt.err)
		if !errors.Is(got, tt.want) || !errors.Is(got, tt.err.(*fs.PathError).Err) {
			t.Errorf("classify(%v) = %v; want %v wrapping the cause", tt.err, got, tt.want)
		}
	}
	for _, err := range []error{pathErr(syscall.EIO), pathErr(syscall.EACCES), io.ErrUnexpectedEOF} {
		if got := classify(err); errors.Is(got, ErrNoSpace) || errors.Is(got, ErrReadOnly) || got != err {
			t.Errorf("classify(%v) = %v; want it unchanged", err, got)
		}
	}
}

func TestCheckWritable(t *testing.T) {
	s := newStore(t)
	if err := s.CheckWritable(); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, s.Dir()); len(names) != 0 {
		t.Fatalf("the write check left %v behind", names)
	}
	if err := New(filepath.Join(s.Dir(), "missing")).CheckWritable(); err == nil ||
		!strings.Contains(err.Error(), "not writable") {
		t.Fatalf("CheckWritable of a missing directory = %v; want a not writable error", err)
	}
}
