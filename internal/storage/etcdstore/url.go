package etcdstore

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ErrURL reports a store URL that ParseURL refuses. The message names what
// is wrong; it never repeats credentials (a URL holding any is refused
// without being echoed).
var ErrURL = errors.New("etcdstore: invalid etcd URL")

// URL schemes: etcd:// connects in plaintext, etcds:// over TLS (the
// --etcd-cacert, --etcd-cert and --etcd-key files, else the system CA pool).
const (
	SchemePlain = "etcd"
	SchemeTLS   = "etcds"
)

// MaxURLEndpoints bounds the members one URL may name (an etcd cluster has
// 3, 5 or 7; the bound only keeps a mistaken input small).
const MaxURLEndpoints = 32

// URL is a parsed etcd store URL, the --to of `ron-kms migrate` and
// `ron-kms restore`:
//
//	etcd://HOST:PORT[,HOST:PORT...]     plaintext
//	etcds://HOST:PORT[,HOST:PORT...]    TLS
//
// HOST is a DNS name, a dotted IPv4 address or a bracketed IPv6 address
// without a zone ("[::1]"); PORT is decimal, 1 to 65535, without leading
// zeros, and always given (etcd's client port is usually 2379). The list
// has no empty element, no member twice, and nothing else: no user or
// password (etcd users are not supported; use client certificates), no
// path (the key prefix is --etcd-prefix), no query and no fragment. The
// scheme is lower case. String gives back exactly the parsed text.
type URL struct {
	// TLS is true for etcds://.
	TLS bool
	// Hosts are the members' HOST:PORT as written, in order.
	Hosts []string
}

// ParseURL parses an etcd store URL (see URL). Every error wraps ErrURL.
func ParseURL(s string) (*URL, error) {
	if strings.ContainsAny(s, "@") {
		return nil, fmt.Errorf("%w: it holds a user or password (\"@\"); etcd users are not supported, authenticate with --etcd-cert and --etcd-key over etcds://", ErrURL)
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil, fmt.Errorf("%w: %.80q does not start with etcd:// or etcds://", ErrURL, s)
	}
	u := &URL{}
	switch scheme {
	case SchemePlain:
	case SchemeTLS:
		u.TLS = true
	default:
		return nil, fmt.Errorf("%w: scheme %.20q: want etcd:// (plaintext) or etcds:// (TLS)", ErrURL, scheme)
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		return nil, fmt.Errorf("%w: %.80q: nothing may follow the members (no path, query or fragment); give the key prefix with --etcd-prefix", ErrURL, s)
	}
	if rest == "" {
		return nil, fmt.Errorf("%w: %.80q names no member; want %s://HOST:PORT[,HOST:PORT...]", ErrURL, s, scheme)
	}
	parts := strings.Split(rest, ",")
	if len(parts) > MaxURLEndpoints {
		return nil, fmt.Errorf("%w: %d members, at most %d", ErrURL, len(parts), MaxURLEndpoints)
	}
	seen := make(map[string]int, len(parts))
	for i, p := range parts {
		id, err := checkHostPort(p)
		if err != nil {
			return nil, fmt.Errorf("%w: member %d: %v", ErrURL, i+1, err)
		}
		if j, dup := seen[id]; dup {
			return nil, fmt.Errorf("%w: member %d (%.80q) repeats member %d", ErrURL, i+1, p, j+1)
		}
		seen[id] = i
		u.Hosts = append(u.Hosts, p)
	}
	return u, nil
}

// checkHostPort checks one HOST:PORT and returns a form that is equal for
// two spellings of the same member (host case, IPv6 spelling).
func checkHostPort(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty (a comma too many?)")
	}
	i := strings.LastIndexByte(p, ':')
	if i < 0 {
		return "", fmt.Errorf("%.80q has no port; write HOST:PORT (etcd's client port is usually 2379)", p)
	}
	host, port := p[:i], p[i+1:]
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return "", fmt.Errorf("%.80q: port %.10q is not a number from 1 to 65535", p, port)
	}
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") {
			return "", fmt.Errorf("%.80q: an IPv6 address goes in brackets, [::1]:2379", p)
		}
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", fmt.Errorf("%.80q: %.60q is not an IPv6 address without a zone", p, host)
		}
		return "[" + a.String() + "]:" + port, nil
	}
	if err := checkHost(host); err != nil {
		return "", fmt.Errorf("%.80q: %v", p, err)
	}
	return strings.ToLower(host) + ":" + port, nil
}

// checkHost accepts a DNS name or a dotted IPv4 address.
func checkHost(h string) error {
	switch {
	case h == "":
		return errors.New("no host")
	case len(h) > 253:
		return errors.New("host name longer than 253 bytes")
	case strings.Contains(h, ":"):
		return errors.New("an IPv6 address goes in brackets, [::1]:2379")
	}
	if strings.Trim(h, "0123456789.") == "" {
		if a, err := netip.ParseAddr(h); err != nil || !a.Is4() {
			return fmt.Errorf("%.60q is not an IPv4 address", h)
		}
		return nil
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host %.60q has an empty or over-long label", h)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %.60q has a label that starts or ends with '-'", h)
		}
		for j := 0; j < len(label); j++ {
			c := label[j]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host %.60q holds %q, not a letter, digit, '-' or '_'", h, c)
			}
		}
	}
	return nil
}

// String returns the URL as it was parsed.
func (u *URL) String() string {
	scheme := SchemePlain
	if u.TLS {
		scheme = SchemeTLS
	}
	return scheme + "://" + strings.Join(u.Hosts, ",")
}

// Endpoints returns the client URLs for Options.Endpoints: http://HOST:PORT
// for etcd://, https://HOST:PORT for etcds://.
func (u *URL) Endpoints() []string {
	scheme := "http://"
	if u.TLS {
		scheme = "https://"
	}
	out := make([]string, len(u.Hosts))
	for i, h := range u.Hosts {
		out[i] = scheme + h
	}
	return out
}
