package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/api"
)

func parse(t *testing.T, raw string) (response, error) {
	t.Helper()
	return readResponse(bufio.NewReader(strings.NewReader(raw)), nil)
}

func TestReadResponseContentLength(t *testing.T) {
	resp, err := parse(t, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 12\r\n\r\n{\"ok\":true}\n")
	if err != nil {
		t.Fatal(err)
	}
	if resp.status != 200 || string(resp.body) != "{\"ok\":true}\n" || resp.close {
		t.Errorf("got %d %q close=%v", resp.status, resp.body, resp.close)
	}
}

// TestReadResponseChunked: several chunks, upper- and lower-case hex, a
// chunk extension and trailers, then a second response on the same reader.
func TestReadResponseChunked(t *testing.T) {
	raw := "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"5\r\nhello\r\n" +
		"1;name=value\r\n,\r\n" +
		"A\r\n0123456789\r\n" +
		"b \r\n world,done\r\n" +
		"0\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
	r := bufio.NewReader(strings.NewReader(raw))
	resp, err := readResponse(r, make([]byte, 3))
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello,0123456789 world,done"; resp.status != 404 || string(resp.body) != want {
		t.Errorf("got %d %q, want 404 %q", resp.status, resp.body, want)
	}
	resp, err = readResponse(r, resp.body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.status != 200 || string(resp.body) != "ok" || !resp.close {
		t.Errorf("second: got %d %q close=%v", resp.status, resp.body, resp.close)
	}
	if _, err := readResponse(r, nil); !errors.Is(err, errNoResponse) {
		t.Errorf("after the last response: %v, want errNoResponse", err)
	}
}

// TestReadResponseFraming covers the rarer framings: an informational 100
// before the answer, a 204 without a body, a body delimited by the end of
// the connection, HTTP/1.0 without keep-alive.
func TestReadResponseFraming(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		status    int
		body      string
		close     bool
	}{
		{"100 continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx", 201, "x", false},
		{"204", "HTTP/1.1 204 No Content\r\n\r\n", 204, "", false},
		{"to eof", "HTTP/1.1 200 OK\r\n\r\nuntil the end", 200, "until the end", true},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, "", true},
		{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", 200, "", false},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 1\n\nx", 200, "x", false},
		{"no reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", 200, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := parse(t, tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			if resp.status != tc.status || string(resp.body) != tc.body || resp.close != tc.close {
				t.Errorf("got %d %q close=%v", resp.status, resp.body, resp.close)
			}
		})
	}
}

func TestReadResponseMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      error
	}{
		{"empty", "", errNoResponse},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", errMalformed},
		{"http/2", "HTTP/2 200\r\n\r\n", errMalformed},
		{"short status", "HTTP/1.1 20\r\n\r\n", errMalformed},
		{"status letters", "HTTP/1.1 2x0 OK\r\n\r\n", errMalformed},
		{"status 099", "HTTP/1.1 099 Low\r\n\r\n", errMalformed},
		{"status glued", "HTTP/1.1 2000 OK\r\n\r\n", errMalformed},
		{"101", "HTTP/1.1 101 Switching Protocols\r\n\r\n", errMalformed},
		{"header without colon", "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", errMalformed},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", errMalformed},
		{"length letters", "HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", errMalformed},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", errMalformed},
		{"huge length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n", errMalformed},
		{"gzip coding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", errMalformed},
		{"length and chunked", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", errMalformed},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", errMalformed},
		{"empty chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", errMalformed},
		{"huge chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n", errMalformed},
		{"chunk overrun", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", errMalformed},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", io.ErrUnexpectedEOF},
		{"short chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", io.ErrUnexpectedEOF},
		{"no last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n", io.ErrUnexpectedEOF},
		{"no trailer end", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n", io.ErrUnexpectedEOF},
		{"cut headers", "HTTP/1.1 200 OK\r\nContent-Len", io.ErrUnexpectedEOF},
		{"cut status", "HTTP/1.1 2", io.ErrUnexpectedEOF},
		{"long line", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", errMalformed},
		{"many headers", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", maxHeaderLines+1) + "\r\n", errMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := parse(t, tc.raw)
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v (status %d, body %q), want %v", err, resp.status, resp.body, tc.want)
			}
		})
	}
}

// TestReadResponseAllocs: with a buffer large enough, parsing a response
// allocates nothing, chunked or not.
func TestReadResponseAllocs(t *testing.T) {
	for _, raw := range []string{
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nDate: x\r\n\r\n{\"ok\":true}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
	} {
		sr := strings.NewReader(raw)
		br := bufio.NewReader(sr)
		buf := make([]byte, 0, 64)
		allocs := testing.AllocsPerRun(100, func() {
			sr.Reset(raw)
			br.Reset(sr)
			resp, err := readResponse(br, buf)
			if err != nil || resp.status != 200 {
				t.Fatalf("%d %v", resp.status, err)
			}
			buf = resp.body
		})
		if allocs != 0 {
			t.Errorf("%q: %v allocations per response", raw[:40], allocs)
		}
	}
}

// FuzzReadResponse: no input panics; whatever parses, re-encoded with a
// Content-Length, parses to the same status and body.
func FuzzReadResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nok\r\n0\r\nT: v\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 100 Continue\r\n\r\nHTTP/1.1 503 Unavailable\r\n\r\nbody"))
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := readResponse(bufio.NewReader(bytes.NewReader(b)), nil)
		if err != nil {
			return
		}
		again := fmt.Sprintf("HTTP/1.1 %03d X\r\nContent-Length: %d\r\n\r\n%s", resp.status, len(resp.body), resp.body)
		resp2, err := readResponse(bufio.NewReader(strings.NewReader(again)), nil)
		if err != nil || resp2.status != resp.status || !bytes.Equal(resp2.body, resp.body) {
			t.Fatalf("re-encoded %q: %d %q %v", again, resp2.status, resp2.body, err)
		}
	})
}

// TestWireRequests: a prebuilt request and a filled template are HTTP/1.1
// requests net/http's server reads, with the headers and the body the
// client package would send.
func TestWireRequests(t *testing.T) {
	h := &wireHead{host: "127.0.0.1:9446", prefix: "/kms", token: "AgEsecret"}
	kid := "bench/load/ed25519/00000000-0000-4000-8000-000000000000#v1"
	want := marshal(api.SignRequest{KID: kid, PayloadB3: strings.Repeat("ab", 32)})
	check := func(name string, req wireRequest) {
		t.Helper()
		hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(req.msg)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(hr.Body)
		if hr.Method != "POST" || hr.URL.Path != "/kms/v1/kms/sign" || hr.Host != h.host ||
			hr.Header.Get("Authorization") != "Bearer AgEsecret" || hr.Header.Get("Content-Type") != "application/json" ||
			hr.ContentLength != int64(len(want)) || !bytes.Equal(body, want) || !bytes.Equal(req.msg[req.body:], want) {
			t.Errorf("%s: %s %s host %q headers %v body %q", name, hr.Method, hr.URL, hr.Host, hr.Header, body)
		}
	}
	check("prebuilt", h.request("/v1/kms/sign", want))

	tmpl := newTemplate(h, "/v1/kms/sign", marshal(api.SignRequest{KID: kidSlot, PayloadB3: strings.Repeat("ab", 32)}), 1)
	req, _ := tmpl.fill(make([]byte, 5), []string{"other", kid}, []int{1})
	check("template", req)

	// A batch template fills each slot with its own kid.
	pool := []string{"a/b/ed25519/k1", "a/b/ed25519/k2", "a/b/ed25519/k3"}
	items := []api.SignRequest{{KID: kidSlot, PayloadB3: "00"}, {KID: kidSlot, PayloadB3: "00"}, {KID: kidSlot, PayloadB3: "00"}}
	bt := newTemplate(h, "/v1/kms/sign/batch", marshal(api.SignBatchRequest{Items: items}), 3)
	req, _ = bt.fill(nil, pool, []int{2, 0, 2})
	var got api.SignBatchRequest
	if err := json.Unmarshal(req.msg[req.body:], &got); err != nil {
		t.Fatal(err)
	}
	if got.Items[0].KID != pool[2] || got.Items[1].KID != pool[0] || got.Items[2].KID != pool[2] {
		t.Errorf("batch template: %+v", got.Items)
	}
}

// TestWireConnRedial: a server that closes each connection after one answer
// (Connection: close, silently, or with a reset) costs the worker a redial,
// not an error.
func TestWireConnRedial(t *testing.T) {
	for _, mode := range []string{"announced", "silent", "reset"} {
		announce := mode == "announced"
		t.Run(mode, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var conns int
			done := make(chan struct{})
			go func() {
				defer close(done)
				for range 3 {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					conns++
					hr, err := http.ReadRequest(bufio.NewReader(c))
					if err == nil {
						io.Copy(io.Discard, hr.Body)
						hdr := ""
						if announce {
							hdr = "Connection: close\r\n"
						}
						io.WriteString(c, "HTTP/1.1 200 OK\r\n"+hdr+"Content-Length: 2\r\n\r\nok")
					}
					if mode == "reset" {
						// Take the next request on this connection, then
						// close with an RST instead of answering it: the
						// client sees "connection reset" where it waits for
						// an answer. (The last connection gets no next
						// request; the deadline ends the wait.)
						c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
						br := bufio.NewReader(c)
						_, _ = br.Peek(1)
						c.(*net.TCPConn).SetLinger(0)
					}
					c.Close()
				}
			}()
			wc := newWireConn(ln.Addr().String())
			defer wc.close()
			req := (&wireHead{host: "x"}).request("/v1/kms/sign", []byte("{}"))
			for i := range 3 {
				status, body, err := wc.roundTrip(context.Background(), req)
				if err != nil || status != 200 || string(body) != "ok" {
					t.Fatalf("request %d: %d %q %v", i, status, body, err)
				}
			}
			<-done
			if conns != 3 {
				t.Errorf("%d connections for 3 requests", conns)
			}
		})
	}
}

// cannedServer answers every request on 127.0.0.1 with the same response,
// reading requests by their Content-Length: a server that costs next to
// nothing, so that a benchmark measures the driver.
func cannedServer(tb testing.TB, answer string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					n := -1
					for {
						line, err := readLine(br)
						if err != nil {
							return
						}
						if len(line) == 0 {
							break
						}
						if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
							n, _ = parseDecimal(v)
						}
					}
					if _, err := br.Discard(n); err != nil {
						return
					}
					if _, err := io.WriteString(c, answer); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkLeanSign is the lean driver's cost per sign request and answer
// (the canned server's included).
func BenchmarkLeanSign(b *testing.B) {
	body := `{"kid":"bench/load/ed25519/00000000-0000-4000-8000-000000000000#v1","sigs":[{"alg":"ed25519","signature_b64":"` +
		strings.Repeat("A", 86) + `=="}]}` + "\n"
	addr := cannedServer(b, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Wed, 26 Nov 2025 03:00:00 GMT\r\nContent-Length: %d\r\n\r\n%s", len(body), body))
	o := &planOp{opRun: opRun{cfg: Config{Op: "sign", Batch: 1}, spec: opTable["sign"]},
		kids: []string{"bench/load/ed25519/00000000-0000-4000-8000-000000000000#v1"}, digest: strings.Repeat("ab", 32)}
	p := &Plan{head: wireHead{host: addr, token: strings.Repeat("t", 86)}}
	fn := p.call(o)
	w := newWorker(0, false)
	w.tr = newWireConn(addr)
	defer w.tr.close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if o := fn(ctx, w); !o.ok {
			b.Fatal(o.codes)
		}
	}
}
