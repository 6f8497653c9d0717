package etcdtest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Cluster is a running etcd cluster of separate processes on loopback.
// Its methods are safe for concurrent use.
type Cluster struct {
	bin     string
	dir     string
	tls     *TLS
	token   string
	logs    string // directory of the members' logs
	initial string // --initial-cluster value

	mu      sync.Mutex
	members []*member
}

type member struct {
	name       string
	clientURL  string
	peerURL    string
	dataDir    string
	cmd        *exec.Cmd
	exited     chan struct{}
	restarting bool
}

// Config describes a cluster to start.
type Config struct {
	// Members is the number of members, 1 to 5; 1 when 0.
	Members int
	// Dir holds the members' data directories and logs; it must exist.
	Dir string
	// Binary is the etcd server to run (see Binary).
	Binary string
	// TLS, when set, makes the members serve clients over TLS only, with
	// client certificates required (peers stay on plaintext loopback).
	TLS *TLS
}

// TLS is the client-facing TLS of a cluster: the members' certificate and
// key, the CA that client certificates must chain to, and the client
// configuration the cluster's own helpers (readiness, Leader) use.
type TLS struct {
	CertFile, KeyFile, ClientCAFile string
	Client                          *tls.Config
}

// StartTimeout bounds how long Start and Restart wait for a member to serve.
const StartTimeout = 60 * time.Second

// Start starts a new cluster and waits until it has a leader and serves a
// linearizable read. On error every started member is killed again.
func Start(cfg Config) (*Cluster, error) {
	n := cfg.Members
	if n == 0 {
		n = 1
	}
	if n < 1 || n > 5 {
		return nil, fmt.Errorf("etcdtest: %d members, want 1 to 5", n)
	}
	c := &Cluster{bin: cfg.Binary, dir: cfg.Dir, tls: cfg.TLS, token: fmt.Sprintf("ron-kms-test-%d", time.Now().UnixNano()),
		logs: filepath.Join(cfg.Dir, "logs")}
	if err := os.MkdirAll(c.logs, 0o755); err != nil {
		return nil, fmt.Errorf("etcdtest: %w", err)
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	var initial []string
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	for i := range n {
		m := &member{
			name:      fmt.Sprintf("m%d", i),
			clientURL: fmt.Sprintf("%s://127.0.0.1:%d", scheme, ports[2*i]),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			dataDir:   filepath.Join(cfg.Dir, fmt.Sprintf("m%d", i)),
		}
		c.members = append(c.members, m)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	c.initial = strings.Join(initial, ",")
	for i := range c.members {
		if err := c.launch(i, "new"); err != nil {
			c.Close()
			return nil, err
		}
	}
	if err := c.WaitReady(context.Background(), StartTimeout); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Endpoints returns every member's client URL, in member order.
func (c *Cluster) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.clientURL
	}
	return eps
}

// Size is the number of members.
func (c *Cluster) Size() int { return len(c.members) }

func (c *Cluster) launch(i int, state string) error {
	m := c.members[i]
	logf, err := os.OpenFile(filepath.Join(c.logs, m.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("etcdtest: %w", err)
	}
	args := []string{
		"--name", m.name,
		"--data-dir", m.dataDir,
		"--listen-client-urls", m.clientURL,
		"--advertise-client-urls", m.clientURL,
		"--listen-peer-urls", m.peerURL,
		"--initial-advertise-peer-urls", m.peerURL,
		"--initial-cluster", c.initial,
		"--initial-cluster-state", state,
		"--initial-cluster-token", c.token,
		"--heartbeat-interval", "50",
		"--election-timeout", "500",
		"--log-level", "warn",
	}
	if c.tls != nil {
		args = append(args, "--cert-file", c.tls.CertFile, "--key-file", c.tls.KeyFile,
			"--client-cert-auth", "--trusted-ca-file", c.tls.ClientCAFile)
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so that a test's SIGKILL reaches only it, and
	// Pdeathsig, so that a crashed test leaves no member behind.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("etcdtest: starting %s: %w", m.name, err)
	}
	m.cmd = cmd
	m.exited = make(chan struct{})
	go func(exited chan struct{}) {
		cmd.Wait()
		logf.Close()
		close(exited)
	}(m.exited)
	return nil
}

// Kill sends SIGKILL to member i and waits until it has exited.
func (c *Cluster) Kill(i int) error { return c.signal(i, syscall.SIGKILL) }

// Stop sends SIGTERM to member i and waits until it has exited.
func (c *Cluster) Stop(i int) error { return c.signal(i, syscall.SIGTERM) }

func (c *Cluster) signal(i int, sig syscall.Signal) error {
	c.mu.Lock()
	m := c.members[i]
	cmd, exited := m.cmd, m.exited
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("etcdtest: signalling %s: %w", m.name, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("etcdtest: %s did not exit after %v", m.name, sig)
	}
}

// Running reports whether member i's process is running.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[i]
	if m.cmd == nil {
		return false
	}
	select {
	case <-m.exited:
		return false
	default:
		return true
	}
}

// Restart starts member i again on its data directory after Kill or Stop,
// and returns once it serves its own status. (It rejoins the cluster; a
// read through it is linearizable once it has caught up.)
func (c *Cluster) Restart(ctx context.Context, i int) error {
	if c.Running(i) {
		return fmt.Errorf("etcdtest: member %d is running", i)
	}
	c.mu.Lock()
	err := c.launch(i, "existing")
	url := c.members[i].clientURL
	c.mu.Unlock()
	if err != nil {
		return err
	}
	return c.waitMember(ctx, url, StartTimeout)
}

// WaitReady waits until a linearizable read through every running member
// succeeds, or timeout passes.
func (c *Cluster) WaitReady(ctx context.Context, timeout time.Duration) error {
	for i := range c.members {
		if !c.Running(i) {
			continue
		}
		if err := c.waitMember(ctx, c.Endpoints()[i], timeout); err != nil {
			return err
		}
	}
	return nil
}

func (c *Cluster) waitMember(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cli, err := c.client(url)
	if err != nil {
		return fmt.Errorf("etcdtest: %w", err)
	}
	defer cli.Close()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := cli.Get(clientv3.WithRequireLeader(rctx), "ron-kms-etcdtest-probe")
		rcancel()
		if err == nil {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcdtest: %s not serving after %v: %v", url, timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Close kills every member. The data stays in Config.Dir.
func (c *Cluster) Close() error {
	var errs []error
	for i := range c.members {
		errs = append(errs, c.Kill(i))
	}
	return errors.Join(errs...)
}

// Logs returns the tail of member i's log, for a failing test to print.
func (c *Cluster) Logs(i int) string {
	data, _ := os.ReadFile(filepath.Join(c.logs, c.members[i].name+".log"))
	if len(data) > 4096 {
		data = data[len(data)-4096:]
	}
	return string(data)
}

// freePorts returns n distinct loopback TCP ports that were free a moment
// ago.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: %w", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// Leader returns the index of the member that is the cluster's leader, as
// a running member reports it.
func (c *Cluster) Leader(ctx context.Context) (int, error) {
	eps := c.Endpoints()
	var last error
	for i, ep := range eps {
		if !c.Running(i) {
			continue
		}
		cli, err := c.client(ep)
		if err != nil {
			last = err
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := cli.Status(sctx, ep)
		cancel()
		if err != nil {
			cli.Close()
			last = err
			continue
		}
		for j, ep2 := range eps {
			if !c.Running(j) {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st2, err := cli.Status(sctx, ep2)
			cancel()
			if err == nil && st2.Header.MemberId == st.Leader {
				cli.Close()
				return j, nil
			}
		}
		cli.Close()
		last = fmt.Errorf("no running member is the leader %x", st.Leader)
	}
	return -1, fmt.Errorf("etcdtest: finding the leader: %v", last)
}

// client is a client of the one member at url.
func (c *Cluster) client(url string) (*clientv3.Client, error) {
	cfg := clientv3.Config{Endpoints: []string{url}, DialTimeout: 2 * time.Second, Logger: nopLogger()}
	if c.tls != nil {
		cfg.TLS = c.tls.Client
	}
	return clientv3.New(cfg)
}
