package clustertest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/client"
	"github.com/ron-kms/ron-kms/internal/etcdtest"
)

// binPath is the ron-kms binary under test, built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "ron-kms-clustertest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "ron-kms")
	root, err := etcdtest.RepoRoot()
	if err == nil {
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/ron-kms")
		cmd.Dir = root
		var out []byte
		if out, err = cmd.CombinedOutput(); err != nil {
			err = fmt.Errorf("building ron-kms: %v\n%s", err, out)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is three etcd members and n ron-kms nodes sharing one prefix and
// one KEK file.
type cluster struct {
	t      *testing.T
	etcd   *etcdtest.Cluster
	dir    string
	kek    string
	prefix string
	token  string
	nodes  []*node
}

// node is one ron-kms process.
type node struct {
	i       int
	addr    string // http://127.0.0.1:PORT
	dataDir string
	log     string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// newCluster starts a three-member etcd cluster and n nodes on it. Node 0
// starts first, alone: it initialises the prefix; the others join it.
func newCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := prepareCluster(t, n)
	for i := range c.nodes {
		c.start(i)
	}
	c.readToken(0)
	return c
}

// readToken takes the cluster's admin token from node i's data directory.
func (c *cluster) readToken(i int) {
	c.t.Helper()
	tok, err := os.ReadFile(filepath.Join(c.nodes[i].dataDir, "admin.token"))
	if err != nil {
		c.t.Fatal(err)
	}
	c.token = strings.TrimSpace(string(tok))
}

// prepareCluster starts the etcd members and names n nodes without
// starting them.
func prepareCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{t: t, etcd: etcdtest.New(t, 3), dir: t.TempDir(), prefix: "ron-kms-test/"}
	c.kek = filepath.Join(c.dir, "kek")
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.WriteFile(c.kek, key, 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		port := freePort(t)
		nd := &node{i: i, addr: fmt.Sprintf("http://127.0.0.1:%d", port),
			dataDir: filepath.Join(c.dir, fmt.Sprintf("n%d", i)), log: filepath.Join(c.dir, fmt.Sprintf("n%d.log", i))}
		c.nodes = append(c.nodes, nd)
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			nd.kill()
		}
		if t.Failed() {
			for _, nd := range c.nodes {
				data, _ := os.ReadFile(nd.log)
				if len(data) > 3000 {
					data = data[len(data)-3000:]
				}
				t.Logf("node %d log tail:\n%s", nd.i, data)
			}
		}
	})
	return c
}

// args are the serve flags of node i.
func (c *cluster) args(i int) []string {
	nd := c.nodes[i]
	return []string{"serve", "--store", "etcd",
		"--etcd-endpoints", strings.Join(c.etcd.Endpoints(), ","),
		"--etcd-prefix", c.prefix,
		"--kek-file", c.kek,
		"--data-dir", nd.dataDir,
		"--listen", strings.TrimPrefix(nd.addr, "http://"),
	}
}

// start starts node i (again) and waits until it answers /healthz.
func (c *cluster) start(i int) {
	c.t.Helper()
	startProcess(c.t, c.nodes[i], c.args(i))
}

// startProcess starts `ron-kms args...` as node nd and waits until it
// answers /healthz.
func startProcess(t *testing.T, nd *node, args []string) {
	t.Helper()
	i := nd.i
	logf, err := os.OpenFile(nd.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binPath, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	nd.mu.Lock()
	nd.cmd, nd.exited = cmd, exited
	nd.mu.Unlock()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(nd.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("node %d exited at start (see its log)", i)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d did not answer /healthz: %v", i, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL to the node and waits for it to exit.
func (nd *node) kill() { nd.signal(syscall.SIGKILL) }

// stop sends SIGTERM and waits: the node closes its audit log cleanly.
func (nd *node) stop() { nd.signal(syscall.SIGTERM) }

func (nd *node) signal(sig syscall.Signal) {
	nd.mu.Lock()
	cmd, exited := nd.cmd, nd.exited
	nd.mu.Unlock()
	if cmd == nil {
		return
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// client returns a client of node i with the admin token.
func (c *cluster) client(i int) *client.Client {
	c.t.Helper()
	return mustClient(c.t, c.nodes[i].addr, c.token)
}

// auditVerify runs `ron-kms audit verify` over the data directories.
func auditVerify(t *testing.T, dataDirs ...string) (string, error) {
	t.Helper()
	args := []string{"audit", "verify"}
	for _, d := range dataDirs {
		args = append(args, "--data-dir", d)
	}
	out, err := exec.Command(binPath, args...).CombinedOutput()
	return string(out), err
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ctxT is a context for one request of a test.
func ctxT(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), 15*time.Second)
}

// mustClient returns a client of addr with token.
func mustClient(t *testing.T, addr, token string) *client.Client {
	t.Helper()
	cl, err := client.New(addr, token, &http.Client{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// startBoltNode starts a single node on the bolt store, its data directory
// <cluster dir>/name, and returns it with its admin token.
func startBoltNode(t *testing.T, c *cluster, i int, name string) (*node, string) {
	t.Helper()
	nd := &node{i: i, addr: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
		dataDir: filepath.Join(c.dir, name), log: filepath.Join(c.dir, name+".log")}
	t.Cleanup(nd.kill)
	startProcess(t, nd, []string{"serve", "--data-dir", nd.dataDir, "--listen", strings.TrimPrefix(nd.addr, "http://")})
	tok, err := os.ReadFile(filepath.Join(nd.dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	return nd, strings.TrimSpace(string(tok))
}
