package crashtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to start serving. It is a
// generous limit for a loaded CI machine, not a performance assertion.
const startTimeout = 20 * time.Second

// buildBinary builds cmd/ron-kms once, without -race, into dir and returns
// its path. The module root comes from `go env GOMOD`.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD: not inside a module (%q)", gomod)
	}
	bin := filepath.Join(dir, "ron-kms")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/ron-kms")
	cmd.Dir = filepath.Dir(gomod)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/ron-kms: %v\n%s", err, b)
	}
	return bin
}

// proc is one run of `ron-kms serve`.
type proc struct {
	cmd    *exec.Cmd
	addr   string // http://127.0.0.1:PORT
	stderr string // file holding the server's log
	done   chan struct{}
	err    error // cmd.Wait's result, valid once done is closed
}

// startServer starts `ron-kms serve` on dataDir and a free loopback port
// (port 0: the server picks one and logs it), waits until /healthz answers
// 200, and returns the running process. Its log goes to logFile.
func startServer(t *testing.T, bin, dataDir, logFile string) *proc {
	t.Helper()
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, "serve", "--data-dir", dataDir, "--listen", "127.0.0.1:0")
	cmd.Stdout = f
	cmd.Stderr = f
	// The test owns every setting: no RON_KMS_* from the environment.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RON_KMS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting ron-kms serve: %v", err)
	}
	p := &proc{cmd: cmd, stderr: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	deadline := time.Now().Add(startTimeout)
	for p.addr == "" {
		select {
		case <-p.done:
			t.Fatalf("ron-kms serve exited before serving (%v); its log:\n%s", p.err, tail(logFile))
		default:
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("ron-kms serve did not log its address within %v; its log:\n%s", startTimeout, tail(logFile))
		}
		p.addr = servingAddr(logFile)
		if p.addr == "" {
			time.Sleep(10 * time.Millisecond)
		}
	}
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := hc.Get(p.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("ron-kms serve exited before /healthz answered (%v); its log:\n%s", p.err, tail(logFile))
		default:
		}
		if time.Now().After(deadline) {
			p.kill()
			t.Fatalf("%s/healthz did not answer 200 within %v (last error %v); the log:\n%s", p.addr, startTimeout, err, tail(logFile))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// servingAddr finds the address in the server's "serving" log line (JSON,
// from internal/cli's serve), or "".
func servingAddr(logFile string) string {
	b, err := os.ReadFile(logFile)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "serving" && strings.HasPrefix(l.Addr, "http://") {
			return l.Addr
		}
	}
	return ""
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// killedBySIGKILL reports whether the process died of our SIGKILL, and not
// before it of something else.
func (p *proc) killedBySIGKILL() bool {
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// stop sends SIGTERM (a graceful shutdown) and waits up to timeout.
func (p *proc) stop(ctx context.Context) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		p.kill()
		return fmt.Errorf("no exit after SIGTERM: %w", ctx.Err())
	}
}

// tail returns the last lines of a log file, for a failure message.
func tail(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	const max = 4000
	if len(b) > max {
		b = b[len(b)-max:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}
