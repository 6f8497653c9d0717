package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ron-kms/ron-kms/internal/seal"
)

func testSealer(t testing.TB, b byte) *seal.AESGCM {
	t.Helper()
	s, err := seal.NewAESGCM(bytes.Repeat([]byte{b}, seal.KEKSize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDeploymentMarker(t *testing.T) {
	s := testSealer(t, 1)
	now := time.Date(2026, 5, 1, 12, 0, 0, 5, time.UTC)
	b, err := NewDeployment(s, KEKSourceFile, "node-0a1b2c3d", now)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseDeployment(b)
	if err != nil {
		t.Fatalf("ParseDeployment(%s): %v", b, err)
	}
	if d.Format != DeploymentFormat || d.KEKSource != KEKSourceFile || d.CreatedBy != "node-0a1b2c3d" || d.CreatedAt != "2026-05-01T12:00:00Z" {
		t.Fatalf("parsed %+v", d)
	}
	if err := d.OpensWith(s); err != nil {
		t.Fatalf("the deployment's own key: %v", err)
	}
	if err := d.OpensWith(testSealer(t, 2)); !errors.Is(err, seal.ErrOpen) {
		t.Fatalf("another key: %v", err)
	}
	str := string(b)
	for name, bad := range map[string]string{
		"unknown member": strings.Replace(str, `{"format"`, `{"x":1,"format"`, 1),
		"other format":   strings.Replace(str, DeploymentFormat, "ron-kms-deployment/2", 1),
		"other source":   strings.Replace(str, KEKSourceFile, "hsm", 1),
		"bad node":       strings.Replace(str, "node-0a1b2c3d", "node/x", 1),
		"bad time":       strings.Replace(str, "2026-05-01T12:00:00Z", "2026-05-01T12:00:00+01:00", 1),
		"space":          strings.Replace(str, `,"kek_source"`, `, "kek_source"`, 1),
		"trailing":       str + "\n",
		"not a record":   strings.Replace(str, d.KEKCheck, "AAAA", 1),
		"empty":          "",
	} {
		if bad == str {
			t.Fatalf("%s: mutation did nothing", name)
		}
		if _, err := ParseDeployment([]byte(bad)); !errors.Is(err, ErrDeployment) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzParseDeployment(f *testing.F) {
	s := testSealer(f, 1)
	for _, src := range []string{KEKSourceFile, KEKSourcePassphrase} {
		for _, by := range []string{"", "node-0a1b2c3d"} {
			b, err := NewDeployment(s, src, by, time.Now())
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDeployment(b)
		if err != nil {
			if !errors.Is(err, ErrDeployment) {
				t.Fatalf("error %v does not wrap ErrDeployment", err)
			}
			return
		}
		// A marker that parses re-encodes to the same bytes.
		if enc, err := json.Marshal(d); err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("%q re-encodes to %q (%v)", b, enc, err)
		}
	})
}

func TestNodeIDSyntax(t *testing.T) {
	for _, ok := range []string{"node-0a1b2c3d", "a", "A.b_c-d", strings.Repeat("x", MaxNodeIDLen)} {
		if err := CheckNodeID(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-a", ".a", "a/b", "a b", "é", strings.Repeat("x", MaxNodeIDLen+1), "a\n"} {
		if err := CheckNodeID(bad); !errors.Is(err, ErrNodeID) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzParseNodeIDFile(f *testing.F) {
	f.Add([]byte(newNodeID() + "\n"))
	f.Add([]byte("node-b"))
	f.Add([]byte("node-b\n\n"))
	f.Add([]byte("\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParseNodeIDFile(b)
		if err != nil {
			if !errors.Is(err, ErrNodeID) {
				t.Fatalf("error %v does not wrap ErrNodeID", err)
			}
			return
		}
		// The file is the id, with or without its newline.
		if string(b) != id && string(b) != id+"\n" {
			t.Fatalf("%q parsed as %q", b, id)
		}
	})
}
