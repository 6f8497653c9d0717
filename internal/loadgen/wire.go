package loadgen

// The lean HTTP/1.1 driver of service runs against http:// addresses: one
// TCP connection per worker, every request prebuilt as bytes and written
// with one Write, every response parsed from a bufio.Reader into a buffer
// the worker reuses. It speaks only what a ron-kms server answers: HTTP/1.x
// with a Content-Length or chunked body, keep-alive. The net/http driver
// (httpdriver.go) serves https:// addresses with the same requests.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"
)

// wireRequest is one HTTP/1.1 POST ready to send: the whole message, and
// the route and body the net/http driver sends instead.
type wireRequest struct {
	path string // route, without the address's path prefix
	msg  []byte // request line, headers and body
	body int    // offset of the body in msg
}

// wireHead holds what every request of a plan shares. The token is a
// secret: it is in every request's bytes and nowhere else.
type wireHead struct {
	host   string // Host header
	prefix string // path prefix of the base address ("" or "/x")
	token  string
}

// appendHead appends the request line and headers of a POST to path with a
// body of n bytes.
func (h *wireHead) appendHead(buf []byte, path string, n int) []byte {
	buf = append(buf, "POST "...)
	buf = append(buf, h.prefix...)
	buf = append(buf, path...)
	buf = append(buf, " HTTP/1.1\r\nHost: "...)
	buf = append(buf, h.host...)
	if h.token != "" {
		buf = append(buf, "\r\nAuthorization: Bearer "...)
		buf = append(buf, h.token...)
	}
	buf = append(buf, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	buf = strconv.AppendInt(buf, int64(n), 10)
	return append(buf, "\r\n\r\n"...)
}

// request returns the complete POST of body to path.
func (h *wireHead) request(path string, body []byte) wireRequest {
	msg := h.appendHead(make([]byte, 0, 256+len(body)), path, len(body))
	off := len(msg)
	return wireRequest{path: path, msg: append(msg, body...), body: off}
}

// kidSlot stands for a kid in a template body. '@' is in no kid, no base64
// and no hex, so the placeholder marks exactly the slots.
const kidSlot = "@@kid@@"

// wireTemplate is a request whose body has kid slots, filled anew for each
// request from a key pool: how a run spreads over a kids file too large to
// prebuild one request per key. Kids are spliced in unescaped: the caller
// passes only kids checked by checkKID, which need no JSON escaping.
type wireTemplate struct {
	head  *wireHead
	path  string
	parts [][]byte // len(parts) = slots + 1
	fixed int      // bytes of parts together
}

// newTemplate splits body, marshaled with kidSlot for each of slots kids.
func newTemplate(h *wireHead, path string, body []byte, slots int) *wireTemplate {
	parts := bytes.Split(body, []byte(kidSlot))
	if len(parts) != slots+1 {
		panic(fmt.Sprintf("loadgen: template of %s has %d kid slots, want %d", path, len(parts)-1, slots))
	}
	t := &wireTemplate{head: h, path: path, parts: parts}
	for _, p := range parts {
		t.fixed += len(p)
	}
	return t
}

// fill writes into buf (reusing it) the request whose slot j holds
// pool[picks[j]], and returns it with the grown buffer.
func (t *wireTemplate) fill(buf []byte, pool []string, picks []int) (wireRequest, []byte) {
	n := t.fixed
	for _, i := range picks {
		n += len(pool[i])
	}
	buf = t.head.appendHead(buf[:0], t.path, n)
	off := len(buf)
	for j, i := range picks {
		buf = append(buf, t.parts[j]...)
		buf = append(buf, pool[i]...)
	}
	buf = append(buf, t.parts[len(picks)]...)
	return wireRequest{path: t.path, msg: buf, body: off}, buf
}

// transport sends requests for one worker and returns the status and body
// of each answer; the body is valid until the next call. An error means no
// HTTP answer came (counted as "transport"). Not safe for concurrent use.
type transport interface {
	roundTrip(ctx context.Context, req wireRequest) (status int, body []byte, err error)
	close()
}

// Timeouts of the lean driver.
const (
	dialTimeout    = 10 * time.Second
	requestTimeout = 30 * time.Second // the net/http client's, NewHTTPClient
)

// wireConn is the lean driver of one worker: one keep-alive TCP
// connection, dialed on first use and again after any error.
type wireConn struct {
	addr   string // host:port
	c      net.Conn
	br     *bufio.Reader
	body   []byte
	used   bool      // c has carried a complete exchange
	until  time.Time // c's deadline less a second of slack
	unwake func() bool
}

var _ transport = (*wireConn)(nil)

func newWireConn(addr string) *wireConn { return &wireConn{addr: addr} }

// roundTrip writes req and reads its answer. When a reused connection
// turns out to have been closed by the server (the write fails, or the
// connection ends before the first byte of an answer), roundTrip redials
// and sends req once more: a bench request may be replayed.
func (wc *wireConn) roundTrip(ctx context.Context, req wireRequest) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		if wc.c == nil {
			if err := wc.dial(ctx); err != nil {
				return 0, nil, err
			}
		}
		reused := wc.used
		resp, err := wc.exchange(ctx, req)
		if err == nil {
			wc.used = true
			if resp.close {
				wc.close()
			}
			return resp.status, resp.body, nil
		}
		wc.close()
		if !reused || attempt > 0 || !errors.Is(err, errNoResponse) {
			return 0, nil, err
		}
	}
}

func (wc *wireConn) dial(ctx context.Context) error {
	d := net.Dialer{Timeout: dialTimeout}
	c, err := d.DialContext(ctx, "tcp", wc.addr)
	if err != nil {
		return err
	}
	wc.c, wc.used, wc.until = c, false, time.Time{}
	if wc.br == nil {
		wc.br = bufio.NewReaderSize(c, 16<<10)
	} else {
		wc.br.Reset(c)
	}
	// A cancelled run unblocks a worker waiting on its connection.
	wc.unwake = context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	return nil
}

// exchange writes req on the open connection and reads the answer.
func (wc *wireConn) exchange(ctx context.Context, req wireRequest) (response, error) {
	// Every request gets at least requestTimeout less a second; moving the
	// deadline once a second rather than per request saves a timer update.
	if now := time.Now(); now.After(wc.until) {
		wc.c.SetDeadline(now.Add(requestTimeout))
		wc.until = now.Add(time.Second)
		if err := ctx.Err(); err != nil {
			return response{}, err
		}
	}
	if _, err := wc.c.Write(req.msg); err != nil {
		return response{}, fmt.Errorf("%w: %w", errNoResponse, err)
	}
	resp, err := readResponse(wc.br, wc.body)
	if cap(resp.body) > cap(wc.body) {
		wc.body = resp.body[:0]
	}
	return resp, err
}

// close drops the connection, if any.
func (wc *wireConn) close() {
	if wc.c == nil {
		return
	}
	wc.unwake()
	wc.c.Close()
	wc.c = nil
}

// Errors of readResponse.
var (
	// errNoResponse: the connection ended (or could not be written, or was
	// reset) before the first byte of an answer.
	errNoResponse = errors.New("loadgen: connection closed before a response")
	// errMalformed wraps every way a response can break HTTP/1.1 framing.
	errMalformed = errors.New("loadgen: malformed HTTP response")
)

// Limits of readResponse.
const (
	maxResponseBody = 64 << 20 // as the client package reads at most
	maxHeaderLines  = 128
)

// response is one parsed HTTP response. body aliases the buffer passed to
// readResponse (grown as needed).
type response struct {
	status int
	body   []byte
	close  bool // the server closes the connection after this answer
}

// readResponse reads one HTTP/1.x response to a POST from r, its body into
// buf[:0]. It understands Content-Length, chunked transfer coding (with
// extensions and trailers, which it discards), a body delimited by the end
// of the connection, informational 1xx answers (skipped) and Connection:
// close. The returned body is buf grown when needed, even on error. Errors
// wrap errMalformed for framing the parser refuses, errNoResponse for a
// connection that ended before the first byte, io.ErrUnexpectedEOF for one
// that ended in the middle.
func readResponse(r *bufio.Reader, buf []byte) (response, error) {
	resp := response{body: buf[:0]}
	for first := true; ; first = false {
		line, err := readLine(r)
		if err != nil {
			// A server that closed the connection shows as EOF, or, when
			// the request reached its closed socket, as a reset.
			if first && len(line) == 0 && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)) {
				return resp, fmt.Errorf("%w: %w", errNoResponse, err)
			}
			return resp, eofIsUnexpected(err)
		}
		status, http10, err := parseStatusLine(line)
		if err != nil {
			return resp, err
		}
		h, err := readHeaders(r)
		if err != nil {
			return resp, err
		}
		if status == 101 {
			return resp, fmt.Errorf("%w: unexpected 101 Switching Protocols", errMalformed)
		}
		if status < 200 {
			continue // 100 Continue, 103 Early Hints: the answer follows
		}
		resp.status = status
		resp.close = h.close || (http10 && !h.keepAlive)
		switch {
		case status == 204 || status == 304:
		case h.chunked:
			resp.body, err = readChunked(r, resp.body)
		case h.length >= 0:
			resp.body, err = readN(r, resp.body, h.length)
		default:
			resp.close = true
			resp.body, err = readToEOF(r, resp.body)
		}
		return resp, err
	}
}

// header is what readResponse needs of a header block.
type header struct {
	length           int // -1: no Content-Length
	chunked          bool
	close, keepAlive bool
}

// readLine returns the next line without its CRLF (or bare LF); the slice
// is valid until the next read from r.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		return nil, fmt.Errorf("%w: line longer than %d bytes", errMalformed, r.Size())
	}
	if err != nil {
		return line, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseStatusLine parses "HTTP/1.x NNN reason".
func parseStatusLine(line []byte) (status int, http10 bool, err error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || (line[7] != '0' && line[7] != '1') ||
		line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, false, fmt.Errorf("%w: status line %q", errMalformed, truncateBytes(line))
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, false, fmt.Errorf("%w: status line %q", errMalformed, truncateBytes(line))
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, false, fmt.Errorf("%w: status %d", errMalformed, status)
	}
	return status, line[7] == '0', nil
}

// readHeaders reads header lines up to the empty line.
func readHeaders(r *bufio.Reader) (header, error) {
	h := header{length: -1}
	for range maxHeaderLines {
		line, err := readLine(r)
		if err != nil {
			return h, eofIsUnexpected(err)
		}
		if len(line) == 0 {
			if h.chunked && h.length >= 0 {
				return h, fmt.Errorf("%w: both Content-Length and chunked", errMalformed)
			}
			return h, nil
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return h, fmt.Errorf("%w: header line %q", errMalformed, truncateBytes(line))
		}
		name, value := line[:i], bytes.Trim(line[i+1:], " \t")
		switch {
		case equalFold(name, "content-length"):
			n, ok := parseDecimal(value)
			if !ok || (h.length >= 0 && h.length != n) {
				return h, fmt.Errorf("%w: Content-Length %q", errMalformed, truncateBytes(value))
			}
			h.length = n
		case equalFold(name, "transfer-encoding"):
			if !equalFold(value, "chunked") {
				return h, fmt.Errorf("%w: Transfer-Encoding %q", errMalformed, truncateBytes(value))
			}
			h.chunked = true
		case equalFold(name, "connection"):
			h.close = h.close || equalFold(value, "close")
			h.keepAlive = h.keepAlive || equalFold(value, "keep-alive")
		}
	}
	return h, fmt.Errorf("%w: more than %d header lines", errMalformed, maxHeaderLines)
}

// readChunked appends a chunked body to buf and discards the trailers.
func readChunked(r *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		line, err := readLine(r)
		if err != nil {
			return buf, eofIsUnexpected(err)
		}
		size, ok := parseChunkSize(line)
		if !ok || len(buf)+size > maxResponseBody {
			return buf, fmt.Errorf("%w: chunk size line %q", errMalformed, truncateBytes(line))
		}
		if size == 0 {
			for range maxHeaderLines {
				line, err := readLine(r)
				if err != nil {
					return buf, eofIsUnexpected(err)
				}
				if len(line) == 0 {
					return buf, nil
				}
			}
			return buf, fmt.Errorf("%w: more than %d trailer lines", errMalformed, maxHeaderLines)
		}
		if buf, err = readN(r, buf, size); err != nil {
			return buf, err
		}
		if line, err = readLine(r); err != nil {
			return buf, eofIsUnexpected(err)
		}
		if len(line) != 0 {
			return buf, fmt.Errorf("%w: chunk data longer than its size", errMalformed)
		}
	}
}

// readN appends exactly n bytes of r to buf.
func readN(r *bufio.Reader, buf []byte, n int) ([]byte, error) {
	if n > maxResponseBody-len(buf) {
		return buf, fmt.Errorf("%w: body over %d bytes", errMalformed, maxResponseBody)
	}
	off := len(buf)
	if cap(buf)-off < n {
		nb := make([]byte, off, off+n+off/4)
		copy(nb, buf)
		buf = nb
	}
	buf = buf[:off+n]
	if _, err := io.ReadFull(r, buf[off:]); err != nil {
		return buf[:off], eofIsUnexpected(err)
	}
	return buf, nil
}

// readToEOF appends the rest of the connection to buf.
func readToEOF(r *bufio.Reader, buf []byte) ([]byte, error) {
	buf, err := readAllInto(buf, io.LimitReader(r, int64(maxResponseBody-len(buf)+1)))
	if err == nil && len(buf) > maxResponseBody {
		err = fmt.Errorf("%w: body over %d bytes", errMalformed, maxResponseBody)
	}
	return buf, err
}

// parseDecimal parses a Content-Length: digits only, at most
// maxResponseBody.
func parseDecimal(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= maxResponseBody
}

// parseChunkSize parses a chunk size line: hex digits, then optional
// whitespace and ";extensions", which are ignored.
func parseChunkSize(line []byte) (int, bool) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = bytes.TrimRight(line, " \t")
	if len(line) == 0 || len(line) > 8 {
		return 0, false
	}
	n := 0
	for _, c := range line {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | int(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | int(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | int(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// equalFold reports whether b is s in any ASCII case; s is lower case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func truncateBytes(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
