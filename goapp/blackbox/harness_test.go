//go:build blackbox

package blackbox

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// token is the NOTES_TOKEN of every process the tests start.
const token = "blackbox-token-0123456789"

// binary is goapp, built once by TestMain exactly as a release is (no race detector: memory is measured).
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "goapp-blackbox-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "goapp")
	build := exec.Command("go", "build", "-trimpath", "-o", binary, ".")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building goapp: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// process is one running goapp.
type process struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	base   string
	stdout *lockedBuffer
	exited chan error
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs goapp on dataDir with the token and quick stops, plus env (NAME=value, later ones win), and waits
// until its data directory passed the first check.
func start(t *testing.T, name, dataDir string, env ...string) *process {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(binary)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOST=127.0.0.1", "PORT=" + strconv.Itoa(port), "DATA_DIR=" + dataDir,
		"NOTES_TOKEN=" + token, "SHUTDOWN_DRAIN=0s", "LOG_LEVEL=info",
	}, env...)
	p := &process{t: t, name: name, cmd: cmd, base: fmt.Sprintf("http://127.0.0.1:%d", port), stdout: &lockedBuffer{},
		exited: make(chan error, 1)}
	cmd.Stdout = p.stdout
	cmd.Stderr = p.stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("log of %s:\n%s", p.name, p.stdout.String())
		}
	})
	p.waitStatus("/startupz", 200, 15*time.Second)
	return p
}

// stop sends SIGTERM and returns the exit error.
func (p *process) stop() error {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		return err
	case <-time.After(60 * time.Second):
		p.t.Fatalf("%s did not stop within 60 s of SIGTERM", p.name)
		return nil
	}
}

// client talks to goapp directly, never through a proxy.
var client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}, Timeout: 2 * time.Minute}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body as one JSON object.
func (a answer) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d %q is not a JSON object: %v", a.status, a.body, err)
	}
	return m
}

// request sends one request with the token (withToken false: without) and reads the whole answer.
func (p *process) request(method, path string, body io.Reader, withToken bool) answer {
	p.t.Helper()
	req, err := http.NewRequest(method, p.base+path, body)
	if err != nil {
		p.t.Fatal(err)
	}
	if withToken {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if b, ok := body.(*bytes.Reader); ok {
		req.ContentLength = int64(b.Len())
	}
	resp, err := client.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s%s: %v", method, p.name, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("%s %s%s: reading the answer: %v", method, p.name, path, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// waitStatus polls path until it answers want; it returns how long that took.
func (p *process) waitStatus(path string, want int, limit time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	for {
		resp, err := client.Get(p.base + path)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == want {
				return time.Since(start)
			}
		}
		if time.Since(start) > limit {
			p.t.Fatalf("%s %s did not answer %d within %s (last: %v)", p.name, path, want, limit, err)
		}
		select {
		case err := <-p.exited:
			p.t.Fatalf("%s exited (%v) while waiting for %s", p.name, err, path)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logLines returns the process's JSON log lines whose msg is msg.
func (p *process) logLines(msg string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(p.stdout.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// tmpfs mounts a tmpfs of size bytes for this test; the full and read-only cases need a volume of their own.
func tmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the volume tests mount a tmpfs and need root (run them through goapp/scripts/test.sh as root)")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// remount switches a tmpfs between read-only and read-write, as a volume whose mount fails over does.
func remount(t *testing.T, dir string, readOnly bool) {
	t.Helper()
	flags := uintptr(unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", flags, ""); err != nil {
		t.Fatalf("remount %s (read-only %v): %v", dir, readOnly, err)
	}
}

// tempFiles lists the temporary files in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			out = append(out, e.Name())
		}
	}
	return out
}
