package audit

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

// TestNodeID: a log opened with a node id puts it in every record and
// checkpoint it writes, whatever the caller set; a log written before, without
// one, still verifies when continued with one, and Verify names the nodes.
func TestNodeID(t *testing.T) {
	dir := t.TempDir()
	l := mustOpen(t, dir, testOptions())
	appendN(t, l, 0, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if r := mustVerify(t, dir); len(r.Nodes) != 0 {
		t.Fatalf("a log without node ids reports nodes %v", r.Nodes)
	}
	for _, ll := range readLog(t, dir) {
		if bytes.Contains(ll.text, []byte(`"node"`)) {
			t.Fatalf("line without a node id has a node member: %s", ll.text)
		}
	}

	opts := testOptions()
	opts.Node = "node-0a1b2c3d"
	opts.CheckpointEvery = 2
	l = mustOpen(t, dir, opts)
	rec := testRecord(3)
	rec.Node = "forged"
	if err := l.Append(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 4, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r := mustVerify(t, dir)
	if !slices.Equal(r.Nodes, []string{"node-0a1b2c3d"}) || r.Records != 7 || !r.Closed {
		t.Fatalf("report %+v", r)
	}
	var recs, cps int
	for _, ll := range readLog(t, dir) {
		switch {
		case ll.rec != nil && ll.rec.Seq > 3:
			recs++
			if ll.rec.Node != opts.Node {
				t.Errorf("seq %d: node %q", ll.rec.Seq, ll.rec.Node)
			}
		case ll.cp != nil && ll.cp.N > 2:
			cps++
			if ll.cp.Node != opts.Node {
				t.Errorf("checkpoint %d: node %q", ll.cp.N, ll.cp.Node)
			}
		}
	}
	if recs != 4 || cps < 3 {
		t.Fatalf("%d records and %d checkpoints written with the node id", recs, cps)
	}

	// The node id is signed: changing it in a checkpoint breaks the log.
	lines := readLog(t, dir)
	for i, ll := range lines {
		if ll.cp != nil && ll.cp.Node != "" {
			lines[i].text = bytes.Replace(ll.text, []byte("node-0a1b2c3d"), []byte("node-ffffffff"), 1)
			break
		}
	}
	writeLog(t, dir, lines)
	if _, err := Verify(dir, testPub); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("a checkpoint with another node id: %v", err)
	}
}

func TestNodeIDRefused(t *testing.T) {
	for _, node := range []string{strings.Repeat("n", MaxNodeLen+1), "node-\xff"} {
		opts := testOptions()
		opts.Node = node
		if _, err := Open(t.TempDir(), opts); err == nil {
			t.Errorf("Open accepted node id %q", node)
		}
	}
}
