package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ron-kms/ron-kms/internal/fsutil"
)

// NodeIDFile is the file in the data directory that holds the node's id
// when --node-id is not given.
const NodeIDFile = "node.id"

// MaxNodeIDLen is the longest node id.
const MaxNodeIDLen = 64

// ErrNodeID reports a node id that is not of the accepted syntax.
var ErrNodeID = errors.New("a node id is 1 to 64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit")

// CheckNodeID reports whether id is a valid node id: 1 to MaxNodeIDLen
// ASCII letters, digits, '.', '_' and '-', the first a letter or digit.
// The error wraps ErrNodeID and does not repeat id.
func CheckNodeID(id string) error {
	if id == "" || len(id) > MaxNodeIDLen {
		return ErrNodeID
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return ErrNodeID
		}
	}
	return nil
}

// ParseNodeIDFile returns the node id held in the contents of a node.id
// file: the id, optionally followed by one "\n". Anything else is an error
// wrapping ErrNodeID.
func ParseNodeIDFile(b []byte) (string, error) {
	id := strings.TrimSuffix(string(b), "\n")
	if err := CheckNodeID(id); err != nil {
		return "", err
	}
	return id, nil
}

// newNodeID returns "node-" and 8 random hex digits.
func newNodeID() string {
	var b [4]byte
	rand.Read(b[:])
	return "node-" + hex.EncodeToString(b[:])
}

// readNodeID reads <dir>/node.id; ok is false when it does not exist.
func readNodeID(dir string) (id string, ok bool, err error) {
	path := filepath.Join(dir, NodeIDFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("server: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxNodeIDLen+2))
	if err != nil {
		return "", false, fmt.Errorf("server: %w", err)
	}
	id, err = ParseNodeIDFile(b)
	if err != nil {
		return "", false, fmt.Errorf("server: %s: %w; fix the file or give --node-id", path, err)
	}
	return id, true, nil
}

// nodeID decides this node's id: --node-id, else <data-dir>/node.id; when
// there is neither, create says whether to create node.id with a new id
// (the etcd store) or to run without one ("", the bolt store, as before
// nodes had ids). The data directory must exist.
func (s *Server) nodeID(create bool) (string, error) {
	if s.cfg.NodeID != "" {
		return s.cfg.NodeID, nil
	}
	id, ok, err := readNodeID(s.cfg.DataDir)
	if err != nil || ok || !create {
		return id, err
	}
	id = newNodeID()
	path := filepath.Join(s.cfg.DataDir, NodeIDFile)
	err = fsutil.CreateFileAtomic(path, []byte(id+"\n"))
	if errors.Is(err, fs.ErrExist) {
		id, _, err = readNodeID(s.cfg.DataDir)
		return id, err
	}
	if err != nil {
		return "", fmt.Errorf("server: writing %s: %w", path, err)
	}
	s.log.Info("this node's id is new", "node_id", id, "file", path)
	return id, nil
}
