//go:build blackbox

package blackbox

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// uploadInPieces starts a PUT whose body arrives in two pieces: it returns after the first piece was sent,
// and finish sends the second and returns the answer's status.
func uploadInPieces(t *testing.T, p *process, name string, first, second []byte) (finish func() int) {
	t.Helper()
	bodyR, bodyW := io.Pipe()
	req, err := http.NewRequest("PUT", p.base+"/notes/"+name, bodyR)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(len(first) + len(second))
	req.Header.Set("Authorization", "Bearer "+token)
	status := make(chan int, 1)
	go func() {
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("PUT %s: %v", name, err)
			status <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	if _, err := bodyW.Write(first); err != nil {
		t.Fatal(err)
	}
	return func() int {
		if _, err := bodyW.Write(second); err != nil {
			t.Fatal(err)
		}
		_ = bodyW.Close()
		return <-status
	}
}

// waitForTempFile waits until a temporary file with content, other than ignore, appears in dir: an upload in
// progress.
func waitForTempFile(t *testing.T, dir, ignore string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, name := range tempFiles(t, dir) {
			if name == ignore {
				continue
			}
			if st, err := os.Stat(filepath.Join(dir, name)); err == nil && st.Size() > 0 {
				return name
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no upload in progress appeared in the data directory")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStartSparesAnotherProcessUpload: during a rollout a new process starts on the directory while the old
// one is receiving an upload. The upload completes (201) and its note is whole; only a temporary file
// abandoned by a dead writer is cleaned.
func TestStartSparesAnotherProcessUpload(t *testing.T) {
	dir := t.TempDir()
	oldPod := start(t, "old pod", dir)
	// Left by a writer that crashed an hour ago.
	abandoned := filepath.Join(dir, ".tmp-crashed-pod.1-ABANDONED")
	if err := os.WriteFile(abandoned, []byte("half a note"), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(abandoned, old, old); err != nil {
		t.Fatal(err)
	}

	first, second := bytes.Repeat([]byte("a"), 256<<10), bytes.Repeat([]byte("b"), 256<<10)
	finish := uploadInPieces(t, oldPod, "rolled", first, second)
	inProgress := waitForTempFile(t, dir, filepath.Base(abandoned))
	// Make the live upload look as old as the abandoned file: the lock, not the age, must protect it.
	if err := os.Chtimes(filepath.Join(dir, inProgress), old, old); err != nil {
		t.Fatal(err)
	}

	newPod := start(t, "new pod", dir)
	newPod.waitStatus("/readyz", 200, 10*time.Second)
	if got := tempFiles(t, dir); !slices.Equal(got, []string{inProgress}) {
		t.Fatalf("after the new pod started, temporary files are %v; want only the live upload %s", got, inProgress)
	}
	removed := newPod.logLines("removed temporary files abandoned by dead writers")
	if len(removed) != 1 || fmt.Sprint(removed[0]["files"]) != "["+filepath.Base(abandoned)+"]" {
		t.Fatalf("the new pod logged %v; want it to name the abandoned file it removed", removed)
	}

	if status := finish(); status != 201 {
		t.Fatalf("the upload in progress during the new pod's start answered %d; want 201", status)
	}
	got := newPod.request("GET", "/notes/rolled", nil, true)
	if got.status != 200 || !bytes.Equal(got.body, append(first, second...)) {
		t.Fatalf("the new pod reads %d, %d bytes; want the whole upload", got.status, len(got.body))
	}
}

// TestConcurrentPutsOfANewNameCreateOnce: twenty clients PUT one new name at once through three processes;
// exactly one is told 201, the others 200, and the note is one of their bodies, whole.
func TestConcurrentPutsOfANewNameCreateOnce(t *testing.T) {
	dir := t.TempDir()
	pods := []*process{start(t, "pod-a", dir), start(t, "pod-b", dir), start(t, "pod-c", dir)}
	const clients = 20
	for round := range 5 {
		name := fmt.Sprintf("contended-%d", round)
		statuses := make([]int, clients)
		bodies := make([][]byte, clients)
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for i := range clients {
			bodies[i] = bytes.Repeat([]byte{byte('A' + i)}, 64<<10)
			wg.Go(func() {
				<-gate
				statuses[i] = pods[i%len(pods)].request("PUT", "/notes/"+name, bytes.NewReader(bodies[i]), true).status
			})
		}
		close(gate)
		wg.Wait()
		counts := map[int]int{}
		for _, s := range statuses {
			counts[s]++
		}
		if counts[201] != 1 || counts[200] != clients-1 {
			t.Fatalf("round %d: statuses %v; want one 201 and %d times 200", round, counts, clients-1)
		}
		got := pods[round%len(pods)].request("GET", "/notes/"+name, nil, true)
		if got.status != 200 || !slices.ContainsFunc(bodies, func(b []byte) bool { return bytes.Equal(b, got.body) }) {
			t.Fatalf("round %d: the note is %d bytes starting %q; want one client's body, whole", round, len(got.body),
				got.body[:min(8, len(got.body))])
		}
	}
	if left := tempFiles(t, dir); len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

// peakRSS is the process's high-water mark of resident memory (VmHWM), in bytes.
func peakRSS(t *testing.T, p *process) int64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/<pid>/status")
	return 0
}

// TestReadsStreamWithBoundedMemory is the case: sixteen concurrent reads of a 48 MiB note. Read into
// memory they took the process to about 800 MiB; streamed, its peak stays below the size of the note itself.
func TestReadsStreamWithBoundedMemory(t *testing.T) {
	const size = 48 << 20
	p := start(t, "pod", t.TempDir(), "MAX_BODY_BYTES="+strconv.Itoa(64<<20),
		"READ_TIMEOUT=60s", "WRITE_TIMEOUT=60s", "SHUTDOWN_TIMEOUT=70s")
	content := make([]byte, size)
	if _, err := rand.Read(content); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(content)
	if put := p.request("PUT", "/notes/large", bytes.NewReader(content), true); put.status != 201 {
		t.Fatalf("PUT of %d bytes = %d %s", size, put.status, put.body)
	}
	content = nil

	const readers = 16
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", p.base+"/notes/large", nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			n, err := io.Copy(h, resp.Body)
			switch {
			case err != nil:
				errs <- err
			case resp.StatusCode != 200 || n != size || [32]byte(h.Sum(nil)) != want:
				errs <- fmt.Errorf("GET = %d, %d bytes, digest match %v", resp.StatusCode, n, [32]byte(h.Sum(nil)) == want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	peak := peakRSS(t, p)
	t.Logf("peak resident memory after uploading one and streaming sixteen %d MiB reads: %.1f MiB", size>>20, float64(peak)/(1<<20))
	if peak >= size {
		t.Fatalf("peak resident memory %d bytes; want below the %d-byte note (reads must stream)", peak, size)
	}
}

// TestPagingAcrossProcesses: notes written through one process are paged through another.
func TestPagingAcrossProcesses(t *testing.T) {
	dir := t.TempDir()
	writer, reader := start(t, "writer", dir), start(t, "reader", dir)
	var want []string
	for i := range 25 {
		name := fmt.Sprintf("page-%02d", i)
		want = append(want, name)
		if put := writer.request("PUT", "/notes/"+name, bytes.NewReader([]byte(name)), true); put.status != 201 {
			t.Fatalf("PUT %s = %d", name, put.status)
		}
	}
	var got []string
	pages := 0
	for query := "?limit=10"; ; pages++ {
		page := reader.request("GET", "/notes"+query, nil, true)
		if page.status != 200 {
			t.Fatalf("GET /notes%s = %d %s", query, page.status, page.body)
		}
		body := page.json(t)
		for _, n := range body["notes"].([]any) {
			got = append(got, n.(map[string]any)["name"].(string))
		}
		next, ok := body["next"].(string)
		if !ok {
			break
		}
		query = "?limit=10&after=" + url.QueryEscape(next)
	}
	if pages != 2 || !slices.Equal(got, want) {
		t.Fatalf("%d pages gave %v; want 3 pages of %v", pages+1, got, want)
	}
	for query, param := range map[string]string{"?limit=0": "limit", "?limit=abc": "limit", "?after=%2B%2B%2B%2B": "after"} {
		bad := reader.request("GET", "/notes"+query, nil, true)
		if msg, _ := bad.json(t)["error"].(string); bad.status != 400 || !strings.HasPrefix(msg, "invalid "+param+"=") {
			t.Errorf("GET /notes%s = %d %q; want 400 naming %s", query, bad.status, msg, param)
		}
	}
}

// TestReadOnlyVolume: the volume turns read-only under a running process. Readiness turns 503 within about
// 10 s with the default check interval, reads go on, writes answer 503 and change nothing; after the volume
// recovers, readiness is back within about 10 s and writes work.
func TestReadOnlyVolume(t *testing.T) {
	dir := tmpfs(t, 8<<20)
	p := start(t, "pod", dir) // DATA_CHECK_INTERVAL: the default
	p.waitStatus("/readyz", 200, 10*time.Second)
	if put := p.request("PUT", "/notes/before", bytes.NewReader([]byte("written before")), true); put.status != 201 {
		t.Fatalf("PUT = %d", put.status)
	}

	remount(t, dir, true)
	took := p.waitStatus("/readyz", 503, 12*time.Second)
	t.Logf("readiness turned 503 %s after the volume turned read-only", took.Round(time.Millisecond))
	if ready := p.request("GET", "/readyz", nil, false).json(t); ready["status"] != "data directory not writable" {
		t.Fatalf("/readyz says %v", ready)
	}
	if got := p.request("GET", "/notes/before", nil, true); got.status != 200 || string(got.body) != "written before" {
		t.Fatalf("read from the read-only volume = %d %q; want the note", got.status, got.body)
	}
	put := p.request("PUT", "/notes/during", bytes.NewReader([]byte("x")), true)
	if put.status != 503 || put.header.Get("Retry-After") == "" || !strings.Contains(string(put.body), "read-only") {
		t.Fatalf("PUT on a read-only volume = %d %s (Retry-After %q); want 503 saying read-only", put.status, put.body,
			put.header.Get("Retry-After"))
	}
	if del := p.request("DELETE", "/notes/before", nil, true); del.status != 503 {
		t.Fatalf("DELETE on a read-only volume = %d; want 503", del.status)
	}
	if live := p.request("GET", "/healthz", nil, false); live.status != 200 {
		t.Fatalf("/healthz = %d; the process is alive", live.status)
	}

	remount(t, dir, false)
	took = p.waitStatus("/readyz", 200, 12*time.Second)
	t.Logf("readiness came back %s after the volume recovered", took.Round(time.Millisecond))
	if put := p.request("PUT", "/notes/after", bytes.NewReader([]byte("x")), true); put.status != 201 {
		t.Fatalf("PUT after the recovery = %d %s", put.status, put.body)
	}
	if got := p.request("GET", "/notes/before", nil, true); got.status != 200 {
		t.Fatalf("the note written before is gone: %d", got.status)
	}
}

// fillUp writes a ballast file (not a note: its name starts with a dot) until the volume is full.
func fillUp(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, ".ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte("B"), 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the volume: %v", err)
			}
			return path
		}
	}
}

// TestFullVolume: uploads that do not fit answer 507 with a JSON error and leave nothing behind, reads go on
// through every process, the pod stays ready (saying the volume is full), and writes work again once there
// is space.
func TestFullVolume(t *testing.T) {
	dir := tmpfs(t, 4<<20)
	a := start(t, "pod-a", dir, "MAX_BODY_BYTES="+strconv.Itoa(16<<20))
	b := start(t, "pod-b", dir, "DATA_CHECK_INTERVAL=200ms")
	kept := bytes.Repeat([]byte("k"), 100<<10)
	if put := a.request("PUT", "/notes/kept", bytes.NewReader(kept), true); put.status != 201 {
		t.Fatalf("PUT kept = %d", put.status)
	}

	insufficient := func(what string, got answer) {
		t.Helper()
		if msg, _ := got.json(t)["error"].(string); got.status != 507 || !strings.Contains(msg, "insufficient storage") {
			t.Fatalf("%s = %d %q; want 507 insufficient storage", what, got.status, msg)
		}
	}
	big := bytes.Repeat([]byte("x"), 8<<20)
	insufficient("PUT of 8 MiB with Content-Length on a 4 MiB volume", a.request("PUT", "/notes/big", bytes.NewReader(big), true))
	// Without Content-Length the space cannot be reserved first: the write itself runs out.
	insufficient("chunked PUT of 8 MiB", a.request("PUT", "/notes/big", io.MultiReader(bytes.NewReader(big)), true))
	if got := a.request("GET", "/notes/big", nil, true); got.status != 404 {
		t.Fatalf("GET big after the refused uploads = %d; want 404 (nothing half-written)", got.status)
	}
	if left := tempFiles(t, dir); len(left) != 0 {
		t.Fatalf("refused uploads left %v", left)
	}

	ballast := fillUp(t, dir)
	insufficient("PUT of 10 bytes on a full volume", b.request("PUT", "/notes/small", bytes.NewReader([]byte("0123456789")), true))
	for _, p := range []*process{a, b} {
		if got := p.request("GET", "/notes/kept", nil, true); got.status != 200 || !bytes.Equal(got.body, kept) {
			t.Fatalf("%s reads kept = %d, %d bytes; want the note", p.name, got.status, len(got.body))
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ready := b.request("GET", "/readyz", nil, false)
		if ready.status != 200 {
			t.Fatalf("/readyz on a full volume = %d %s; want 200 (reads go on)", ready.status, ready.body)
		}
		if strings.Contains(fmt.Sprint(ready.json(t)["reason"]), "full") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never said the volume is full: %s", ready.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if lines := b.logLines("data directory is full: writes answer 507, reads go on"); len(lines) != 1 {
		t.Fatalf("pod-b logged the full volume %d times; want once", len(lines))
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if put := b.request("PUT", "/notes/small", bytes.NewReader([]byte("0123456789")), true); put.status != 201 {
		t.Fatalf("PUT after space was freed = %d %s", put.status, put.body)
	}
	if left := tempFiles(t, dir); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestTokenGuardsTheNotes: with NOTES_TOKEN the notes need it; without, the notes API is closed and the start
// log says why; the rest is open either way.
func TestTokenGuardsTheNotes(t *testing.T) {
	dir := t.TempDir()
	guarded := start(t, "with token", dir)
	closed := start(t, "without token", dir, "NOTES_TOKEN=")

	denied := guarded.request("PUT", "/notes/x", bytes.NewReader([]byte("x")), false)
	if denied.status != 401 || !strings.HasPrefix(denied.header.Get("WWW-Authenticate"), "Bearer ") {
		t.Fatalf("PUT without the token = %d, WWW-Authenticate %q; want 401 with a Bearer challenge", denied.status,
			denied.header.Get("WWW-Authenticate"))
	}
	if put := guarded.request("PUT", "/notes/x", bytes.NewReader([]byte("x")), true); put.status != 201 {
		t.Fatalf("PUT with the token = %d", put.status)
	}
	for _, path := range []string{"/notes", "/notes/x"} {
		if got := closed.request("GET", path, nil, true); got.status != 401 || !strings.Contains(string(got.body), "NOTES_TOKEN is not set") {
			t.Fatalf("GET %s without NOTES_TOKEN on the server = %d %s; want 401 saying why", path, got.status, got.body)
		}
	}
	if len(closed.logLines("notes API disabled: NOTES_TOKEN is not set, so every /notes request answers 401")) != 1 {
		t.Fatal("the process without a token did not say at start why its notes API is closed")
	}
	for _, p := range []*process{guarded, closed} {
		for _, path := range []string{"/hello", "/version", "/healthz", "/readyz", "/metrics", "/openapi.yaml"} {
			if got := p.request("GET", path, nil, false); got.status != 200 {
				t.Errorf("%s GET %s without a token = %d; want 200", p.name, path, got.status)
			}
		}
	}
}

// TestShutdownKeepsItsPromises, with the default timeouts: during the drain every answer says Connection:
// close, and an upload accepted during the drain and still arriving after it completes before the process
// exits 0.
func TestShutdownKeepsItsPromises(t *testing.T) {
	dir := t.TempDir()
	p := start(t, "pod", dir, "SHUTDOWN_DRAIN=1s")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitStatus("/readyz", 503, 5*time.Second)
	resp, err := client.Get(p.base + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !resp.Close {
		t.Fatalf("during the drain /hello = %d, Connection: close %v; want 200 and close", resp.StatusCode, resp.Close)
	}

	first, second := []byte("accepted during the drain, "), []byte("finished after it")
	finish := uploadInPieces(t, p, "late", first, second)
	waitForTempFile(t, dir, "")
	time.Sleep(1500 * time.Millisecond) // past the drain: the listener is closed now
	if status := finish(); status != 201 {
		t.Fatalf("the upload accepted during the drain answered %d; want 201", status)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Fatalf("exit: %v; want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after the upload finished")
	}
	if got, err := os.ReadFile(filepath.Join(dir, "late")); err != nil || string(got) != string(first)+string(second) {
		t.Fatalf("stored %q, %v; want the whole upload", got, err)
	}
}

// kubeletSwap updates a ConfigMap-style volume the way the kubelet does: a new version directory, then the
// ..data symbolic link swapped to it by a rename.
func kubeletSwap(t *testing.T, dir string, version int, content string) {
	t.Helper()
	versionDir := fmt.Sprintf("..2026_12_04_12_00_%02d.%d", version, version)
	if err := os.Mkdir(filepath.Join(dir, versionDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, versionDir, "live.env"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(versionDir, filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "live.env")); err != nil {
		if err := os.Symlink(filepath.Join("..data", "live.env"), filepath.Join(dir, "live.env")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLiveConfigFollowsAConfigMapVolume: APP_MESSAGE and LOG_LEVEL change without a restart when the mounted
// file changes; an invalid version keeps the last good settings and is logged naming the key.
func TestLiveConfigFollowsAConfigMapVolume(t *testing.T) {
	volume := t.TempDir()
	kubeletSwap(t, volume, 1, "APP_MESSAGE=version one\n")
	p := start(t, "pod", t.TempDir(), "CONFIG_FILE="+filepath.Join(volume, "live.env"), "APP_MESSAGE=from the environment")
	hello := func() string { return string(p.request("GET", "/hello", nil, false).body) }
	if got := hello(); got != `{"message":"version one"}` {
		t.Fatalf("/hello = %s; want the file's message", got)
	}

	waitHello := func(want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for hello() != want {
			if time.Now().After(deadline) {
				t.Fatalf("/hello never became %s (now %s)", want, hello())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	kubeletSwap(t, volume, 2, "APP_MESSAGE=version two\nLOG_LEVEL=debug\n")
	waitHello(`{"message":"version two"}`)
	// At debug level the probes' access lines appear.
	p.request("GET", "/healthz", nil, false)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.ContainsFunc(p.logLines("request"), func(l map[string]any) bool { return l["route"] == "/healthz" }) {
		if time.Now().After(deadline) {
			t.Fatal("LOG_LEVEL=debug from the file did not take effect")
		}
		time.Sleep(50 * time.Millisecond)
	}

	kubeletSwap(t, volume, 3, "APP_MESSAGE=version three\nLOG_LEVEL=noisy\n")
	deadline = time.Now().Add(10 * time.Second)
	for len(p.logLines("config file rejected; keeping the last good settings")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the invalid version was not reported")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if msg := fmt.Sprint(p.logLines("config file rejected; keeping the last good settings")[0]["error"]); !strings.Contains(msg, `invalid LOG_LEVEL="noisy"`) {
		t.Fatalf("the rejection says %q; want it to name LOG_LEVEL", msg)
	}
	if got := hello(); got != `{"message":"version two"}` {
		t.Fatalf("/hello after an invalid version = %s; want the last good one", got)
	}
	metrics := string(p.request("GET", "/metrics", nil, false).body)
	for _, want := range []string{`goapp_config_reloads_total{result="success"} 1`, `goapp_config_reloads_total{result="failure"} 1`,
		"goapp_config_last_reload_successful 0", "goapp_config_last_reload_success_timestamp_seconds "} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}

	kubeletSwap(t, volume, 4, "LOG_LEVEL=info\n")
	waitHello(`{"message":"from the environment"}`)
}
