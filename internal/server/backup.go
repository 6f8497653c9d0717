package server

import (
	"encoding/hex"

	"github.com/ron-kms/ron-kms/internal/backup"
	"github.com/ron-kms/ron-kms/internal/httpapi"
)

// backupKEK describes the server's key-encryption key for backup headers:
// its source and public id, and the passphrase parameters (not secret) that
// a restore needs to derive it again. Amnesia mode has nothing to describe:
// its KEK dies with the process, so its backups could never be restored.
func (s *Server) backupKEK() httpapi.BackupKEK {
	if s.cfg.Store == "memory" || s.sealer == nil {
		return httpapi.BackupKEK{}
	}
	id := s.sealer.KEKID()
	k := httpapi.BackupKEK{Source: backup.KEKRootKey, ID: hex.EncodeToString(id[:])}
	if s.cfg.PassphraseEnv != "" {
		k.Source, k.Params = backup.KEKPassphrase, s.kekParams
	}
	return k
}
