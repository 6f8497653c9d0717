package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Backup streams a backup of the whole store (GET /v1/kms/backup) into w and
// returns the number of bytes written. It needs an unrestricted admin token.
// The file is a ron-kms-backup/v1 stream whose last line holds a SHA-256 of
// the rest; this method does not parse it, so a caller that keeps the file
// should check it (ron-kms backup does) before trusting it. Sealed records
// stay sealed; the key-encryption key is never sent.
//
// The Client's http.Client timeout covers the whole download; for a large
// store, build the Client with an http.Client without a timeout and bound
// the call with ctx.
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/kms/backup", nil)
	if err != nil {
		return 0, fmt.Errorf("client: %w", err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("client: GET /v1/kms/backup: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return 0, fmt.Errorf("client: reading response: %w", err)
		}
		return 0, responseError(resp.StatusCode, b)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("client: backup cut after %d bytes: %w", n, err)
	}
	return n, nil
}
