package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/client"
)

// Slow clients are the HTTP server's timeouts' business, not the in-flight
// limiter's: a client dribbling its header never reaches a handler (so it
// holds no in-flight slot) and is cut off at ReadHeaderTimeout; one
// dribbling its body holds a slot only until ReadTimeout. Nothing here
// asserts on timing beyond "within 10 s".

// slowConfig is a memory-store server with one in-flight slot and short
// read timeouts.
func slowConfig(t *testing.T) Config {
	cfg := testConfig(t)
	cfg.Store = "memory"
	cfg.MaxInflight = 1
	cfg.ReadHeaderTimeout = 300 * time.Millisecond
	cfg.ReadTimeout = time.Second
	return cfg
}

// dribble writes msg to conn one byte at a time, every 20 ms, until it is
// all sent or a write fails.
func dribble(conn net.Conn, msg string) {
	for i := range len(msg) {
		if _, err := conn.Write([]byte{msg[i]}); err != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// closedWithin reads conn until the server closes it, and fails the test
// if that takes more than 10 s.
func closedWithin(t *testing.T, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the slow connection open for 10s")
	}
}

// inflight scrapes kms_inflight_requests.
func inflight(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "kms_inflight_requests "); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int(n)
		}
	}
	t.Fatal("/metrics lacks kms_inflight_requests")
	return 0
}

func TestServerTimeoutsSet(t *testing.T) {
	d := Defaults()
	if d.ReadHeaderTimeout <= 0 || d.ReadTimeout <= 0 || d.WriteTimeout <= 0 || d.IdleTimeout <= 0 {
		t.Fatalf("a default HTTP timeout is not set: %+v", d)
	}
	if d.MaxInflight != 0 {
		t.Fatalf("MaxInflight default %d, want 0 (sized to the machine)", d.MaxInflight)
	}
	cfg := testConfig(t)
	cfg.MaxInflight = -1
	if err := cfg.Check(); err == nil {
		t.Fatal("a negative --max-inflight passed Check")
	}
}

// TestSlowLorisHeader: a client sending its header a byte at a time holds
// no in-flight slot (with a limit of one, other requests are served
// meanwhile) and is cut off after the read-header timeout.
func TestSlowLorisHeader(t *testing.T) {
	cfg := slowConfig(t)
	cfg.ReadTimeout = time.Minute // only the read-header timeout can cut it within 10s
	r := start(t, cfg)
	tok := r.srv.AmnesiaAdminToken()
	c, err := client.New(r.url, tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "loris", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A header that would take minutes to send.
	go dribble(conn, "POST /v1/kms/sign HTTP/1.1\r\nHost: kms\r\nAuthorization: Bearer "+tok+"\r\nX-Pad: "+strings.Repeat("a", 10000))
	time.Sleep(100 * time.Millisecond) // a few bytes in
	for i := range 3 {
		if _, err := c.Sign(ctx, api.SignRequest{KID: k.KID, PayloadB3: fmt.Sprintf("%064x", i)}); err != nil {
			t.Fatalf("sign while a slow client sends its header: %v", err)
		}
		if n := inflight(t, r.url); n != 0 {
			t.Fatalf("kms_inflight_requests = %d while only the slow client is connected", n)
		}
	}
	closedWithin(t, conn)
	if _, err := c.Sign(ctx, api.SignRequest{KID: k.KID, PayloadB3: strings.Repeat("00", 32)}); err != nil {
		t.Fatalf("sign after the slow client: %v", err)
	}
}

// TestSlowBody: a client that sends its header and then dribbles its body
// holds its in-flight slot (the body is read after admission) only until
// the read timeout; then the slot is free again.
func TestSlowBody(t *testing.T) {
	r := start(t, slowConfig(t))
	tok := r.srv.AmnesiaAdminToken()
	c, err := client.New(r.url, tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k, err := c.CreateKey(ctx, api.CreateKeyRequest{Tenant: "acme", Purpose: "loris", Alg: "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"kid":%q,"payload_b3":"%064x"}`, k.KID, 0)
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	head := fmt.Sprintf("POST /v1/kms/sign HTTP/1.1\r\nHost: kms\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", tok, len(body))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	go dribble(conn, body)
	deadline := time.Now().Add(10 * time.Second)
	for inflight(t, r.url) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the slow body's request never took its slot")
		}
		time.Sleep(5 * time.Millisecond)
	}
	closedWithin(t, conn)
	for inflight(t, r.url) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slow body's slot was not given back within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := c.Sign(ctx, api.SignRequest{KID: k.KID, PayloadB3: strings.Repeat("00", 32)}); err != nil {
		t.Fatalf("sign after the slow body: %v", err)
	}
}
