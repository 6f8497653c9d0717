package server

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ron-kms/ron-kms/internal/fsutil"
	"github.com/ron-kms/ron-kms/internal/logtest"
)

// TestDataDirMode: an existing data directory that group or others can
// write to is refused, untouched, with a one-line error naming the fix; one
// they can only read or search is tightened to 0700 with a warning in the
// log; a 0700 one is used without a word. A data directory that is a file
// is refused.
func TestDataDirMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("mode bits mean nothing on Windows")
	}
	open := func(t *testing.T, mode os.FileMode) (Config, string, error) {
		t.Helper()
		cfg := testConfig(t)
		if err := os.Mkdir(cfg.DataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(cfg.DataDir, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		logs := &logtest.Buffer{}
		srv, err := Open(context.Background(), cfg, slog.New(slog.NewTextHandler(logs, nil)))
		if err == nil {
			if cerr := srv.Close(); cerr != nil {
				t.Errorf("close: %v", cerr)
			}
		}
		return cfg, logs.String(), err
	}
	perm := func(t *testing.T, dir string) os.FileMode {
		t.Helper()
		st, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}

	for _, mode := range []os.FileMode{0o777, 0o770, 0o720, 0o702, os.ModeSticky | 0o777} {
		t.Run("refused "+mode.String(), func(t *testing.T) {
			cfg, _, err := open(t, mode)
			if !errors.Is(err, fsutil.ErrLooseDirMode) {
				t.Fatalf("Open = %v, want ErrLooseDirMode", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, "chmod 700 "+cfg.DataDir) || strings.Contains(msg, "\n") {
				t.Errorf("error %q: want one line naming chmod 700 %s", msg, cfg.DataDir)
			}
			if got := perm(t, cfg.DataDir); got != mode.Perm() {
				t.Errorf("mode changed to %04o", got)
			}
			if entries, _ := os.ReadDir(cfg.DataDir); len(entries) != 0 {
				t.Errorf("a refused data directory was written: %v", entries)
			}
		})
	}
	for _, mode := range []os.FileMode{0o755, 0o750, 0o705, 0o711} {
		t.Run("tightened "+mode.String(), func(t *testing.T) {
			cfg, logs, err := open(t, mode)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if got := perm(t, cfg.DataDir); got != 0o700 {
				t.Errorf("mode %04o, want 0700", got)
			}
			if !strings.Contains(logs, `level=WARN msg="the data directory was readable by group or others; its mode is now 0700"`) {
				t.Errorf("no warning in the log:\n%s", logs)
			}
		})
	}
	t.Run("0700 kept", func(t *testing.T) {
		cfg, logs, err := open(t, 0o700)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if got := perm(t, cfg.DataDir); got != 0o700 {
			t.Errorf("mode %04o, want 0700", got)
		}
		if strings.Contains(logs, "data directory") {
			t.Errorf("a warning for a 0700 data directory:\n%s", logs)
		}
	})
	t.Run("not a directory", func(t *testing.T) {
		cfg := testConfig(t)
		if err := os.WriteFile(cfg.DataDir, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("Open of a file as data directory: %v", err)
		}
	})
	t.Run("created 0700", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.DataDir = filepath.Join(cfg.DataDir, "nested", "data")
		srv, err := Open(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if got := perm(t, cfg.DataDir); got != 0o700 {
			t.Errorf("new data directory mode %04o, want 0700", got)
		}
	})
}
