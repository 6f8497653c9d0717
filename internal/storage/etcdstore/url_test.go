package etcdstore_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/internal/storage/etcdstore"
)

// urlSeeds are URLs as users write them: the member ports of etcd's own
// Procfile, a Kubernetes StatefulSet's members, loopback IPv6, and the
// form SPEC §10 shows (which lacks ports, so is refused).
var urlSeeds = []string{
	"etcd://127.0.0.1:2379",
	"etcd://127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379",
	"etcds://etcd-0.etcd.kms.svc:2379,etcd-1.etcd.kms.svc:2379,etcd-2.etcd.kms.svc:2379",
	"etcd://[::1]:2379,[::1]:22379",
	"etcd://localhost:2379",
	"etcd://A,B,C",
	"etcd://a:1,",
	"https://127.0.0.1:2379",
	"etcd://u:p@127.0.0.1:2379",
	"etcd://127.0.0.1:2379/ron-kms/",
}

func TestParseURL(t *testing.T) {
	good := []struct {
		in        string
		tls       bool
		endpoints []string
	}{
		{"etcd://127.0.0.1:2379", false, []string{"http://127.0.0.1:2379"}},
		{"etcd://127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379", false,
			[]string{"http://127.0.0.1:2379", "http://127.0.0.1:22379", "http://127.0.0.1:32379"}},
		{"etcds://etcd-0.etcd:2379,etcd-1.etcd:2379", true, []string{"https://etcd-0.etcd:2379", "https://etcd-1.etcd:2379"}},
		{"etcd://[::1]:2379", false, []string{"http://[::1]:2379"}},
		{"etcd://Node_1.example:65535", false, []string{"http://Node_1.example:65535"}},
	}
	for _, tt := range good {
		u, err := etcdstore.ParseURL(tt.in)
		if err != nil {
			t.Errorf("ParseURL(%q) = %v", tt.in, err)
			continue
		}
		if u.TLS != tt.tls || !slices.Equal(u.Endpoints(), tt.endpoints) || u.String() != tt.in {
			t.Errorf("ParseURL(%q) = TLS %v, endpoints %q, String %q", tt.in, u.TLS, u.Endpoints(), u.String())
		}
	}

	bad := []struct{ in, want string }{
		{"", "does not start with etcd://"},
		{"127.0.0.1:2379", "does not start with etcd://"},
		{"http://127.0.0.1:2379", "want etcd:// (plaintext) or etcds:// (TLS)"},
		{"ETCD://127.0.0.1:2379", "want etcd://"},
		{"etcd://", "names no member"},
		{"etcd://A,B,C", "member 1: \"A\" has no port"},
		{"etcd://a:2379,", "member 2: empty"},
		{"etcd://a:2379,,b:2379", "member 2: empty"},
		{"etcd://a:0", "not a number from 1 to 65535"},
		{"etcd://a:65536", "not a number from 1 to 65535"},
		{"etcd://a:02379", "not a number from 1 to 65535"},
		{"etcd://a:+2379", "not a number from 1 to 65535"},
		{"etcd://:2379", "no host"},
		{"etcd://::1:2379", "IPv6 address goes in brackets"},
		{"etcd://[::1:2379", "IPv6 address goes in brackets"},
		{"etcd://[fe80::1%eth0]:2379", "without a zone"},
		{"etcd://[127.0.0.1]:2379", "not an IPv6 address"},
		{"etcd://1.2.3:2379", "not an IPv4 address"},
		{"etcd://a..b:2379", "empty or over-long label"},
		{"etcd://-a:2379", "starts or ends with '-'"},
		{"etcd://a b:2379", "not a letter, digit"},
		{"etcd://a:2379,A:2379", "member 2 (\"A:2379\") repeats member 1"},
		{"etcd://[::1]:2379,[0::1]:2379", "repeats member 1"},
		{"etcd://a:2379/", "give the key prefix with --etcd-prefix"},
		{"etcd://a:2379/ron-kms/", "no path, query or fragment"},
		{"etcd://a:2379?x=1", "no path, query or fragment"},
		{"etcd://a:2379#x", "no path, query or fragment"},
		{"etcd://" + strings.Repeat("a:1,", 40) + "a:1", "at most 32"},
	}
	for _, tt := range bad {
		_, err := etcdstore.ParseURL(tt.in)
		if !errors.Is(err, etcdstore.ErrURL) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseURL(%q) = %v, want ErrURL saying %q", tt.in, err, tt.want)
		}
	}
}

// TestParseURLCredentials: a URL with a user or password is refused
// without being echoed.
func TestParseURLCredentials(t *testing.T) {
	_, err := etcdstore.ParseURL("etcds://root:hunter2@10.0.0.1:2379")
	if !errors.Is(err, etcdstore.ErrURL) || !strings.Contains(err.Error(), "user or password") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "10.0.0.1") {
		t.Fatalf("the error repeats the URL: %v", err)
	}
}

// FuzzParseURL: a URL that parses gives back exactly its text, endpoints
// with the scheme its TLS says, and parses again to the same; one that
// does not wraps ErrURL, and one with an "@" gets the one fixed message
// that repeats none of it.
func FuzzParseURL(f *testing.F) {
	_, credentialsErr := etcdstore.ParseURL("etcd://user:secret@h:1")
	if credentialsErr == nil {
		f.Fatal("a URL with credentials parsed")
	}
	f.Add("@tcd ") // found by the fuzzer: its text after "@" is a word of the message
	for _, s := range urlSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := etcdstore.ParseURL(s)
		if err != nil {
			if !errors.Is(err, etcdstore.ErrURL) {
				t.Fatalf("ParseURL(%q) = %v, not ErrURL", s, err)
			}
			// A URL with credentials gets one fixed message, so nothing
			// of the input (a password) can be in it.
			if strings.Contains(s, "@") && err.Error() != credentialsErr.Error() {
				t.Fatalf("ParseURL(%q): error %q is not the fixed credentials message", s, err)
			}
			return
		}
		if u.String() != s {
			t.Fatalf("ParseURL(%q).String() = %q", s, u.String())
		}
		if len(u.Hosts) == 0 || len(u.Hosts) > etcdstore.MaxURLEndpoints {
			t.Fatalf("ParseURL(%q) gave %d hosts", s, len(u.Hosts))
		}
		want := "http://"
		if u.TLS {
			want = "https://"
		}
		for i, e := range u.Endpoints() {
			if e != want+u.Hosts[i] {
				t.Fatalf("endpoint %q for host %q", e, u.Hosts[i])
			}
		}
		again, err := etcdstore.ParseURL(u.String())
		if err != nil || again.TLS != u.TLS || !slices.Equal(again.Hosts, u.Hosts) {
			t.Fatalf("ParseURL(String()) = %v, %v", again, err)
		}
	})
}
