package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/ron-kms/ron-kms/api"
)

// CreateKey creates a key (scope kms:create).
func (c *Client) CreateKey(ctx context.Context, req api.CreateKeyRequest) (*api.CreateKeyResponse, error) {
	var out api.CreateKeyResponse
	return &out, c.do(ctx, "POST", "/v1/kms/keys", req, &out)
}

// GetKey returns a key's metadata by key name (scope kms:read).
func (c *Client) GetKey(ctx context.Context, name string) (*api.KeyInfo, error) {
	p, err := keyPath(name)
	if err != nil {
		return nil, err
	}
	var out api.KeyInfo
	return &out, c.do(ctx, "GET", p, nil, &out)
}

// ListOptions select a page of keys; zero values mean "any" and the
// server's default page size.
type ListOptions struct {
	Tenant, Purpose string
	Limit           int
	PageToken       string
}

// ListKeys returns one page of the keys the token may see (scope kms:read).
func (c *Client) ListKeys(ctx context.Context, o ListOptions) (*api.ListKeysResponse, error) {
	q := url.Values{}
	if o.Tenant != "" {
		q.Set("tenant", o.Tenant)
	}
	if o.Purpose != "" {
		q.Set("purpose", o.Purpose)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.PageToken != "" {
		q.Set("page_token", o.PageToken)
	}
	p := "/v1/kms/keys"
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	var out api.ListKeysResponse
	return &out, c.do(ctx, "GET", p, nil, &out)
}

// RotateKey makes a new current version (scope kms:rotate). opID, if not
// empty, makes the call idempotent.
func (c *Client) RotateKey(ctx context.Context, name, opID string) (*api.RotateResponse, error) {
	p, err := keyPath(name)
	if err != nil {
		return nil, err
	}
	var out api.RotateResponse
	return &out, c.do(ctx, "POST", p+"/rotate", api.RotateRequest{OpID: opID}, &out)
}

// Sign signs a digest or message (scope kms:sign).
//
// With batching (the default), concurrent calls are coalesced: while the
// client's sign requests in flight are at their limit (WithBatchRequests),
// new calls wait in a queue, and the next request to go carries everything
// queued (up to api.MaxBatch items) as one /sign/batch. There is no timer:
// a call that finds a free slot goes at once as a plain /sign. Each caller
// gets its own answer, the one a /sign would have given; a failed item is
// an *Error with the code, status and message a /sign would have answered
// (Hint empty, RequestID that of the batch). A caller whose ctx ends while
// its item waits withdraws it; once sent, the caller returns ctx.Err() at
// once and the others' batch goes on. The request of several callers does
// not carry any caller's context values.
func (c *Client) Sign(ctx context.Context, req api.SignRequest) (*api.SignResponse, error) {
	if c.sign != nil {
		return c.sign.call(ctx, req)
	}
	return c.signOne(ctx, req)
}

func (c *Client) signOne(ctx context.Context, req api.SignRequest) (*api.SignResponse, error) {
	var out api.SignResponse
	return &out, c.do(ctx, "POST", "/v1/kms/sign", req, &out)
}

// Verify checks signatures (scope kms:verify). A wrong signature is
// OK == false with a nil error.
//
// With batching, concurrent calls are coalesced into /verify/batch as Sign
// coalesces them, for requests with one signature of the kid's own
// algorithm (the only ones whose details a batch answer determines); other
// requests go alone. An item the batch did not find valid, or answered
// from the server's cache, is asked again alone, so that its details (and
// cache age) are exactly those of a /verify.
func (c *Client) Verify(ctx context.Context, req api.VerifyRequest) (*api.VerifyResponse, error) {
	if c.verify != nil && verifyBatchable(req) {
		return c.verify.call(ctx, req)
	}
	return c.verifyOne(ctx, req)
}

func (c *Client) verifyOne(ctx context.Context, req api.VerifyRequest) (*api.VerifyResponse, error) {
	var out api.VerifyResponse
	return &out, c.do(ctx, "POST", "/v1/kms/verify", req, &out)
}

// SignBatch signs up to api.MaxBatch items in one request.
func (c *Client) SignBatch(ctx context.Context, items []api.SignRequest) (*api.SignBatchResponse, error) {
	var out api.SignBatchResponse
	return &out, c.do(ctx, "POST", "/v1/kms/sign/batch", api.SignBatchRequest{Items: items}, &out)
}

// VerifyBatch verifies up to api.MaxBatch items in one request.
func (c *Client) VerifyBatch(ctx context.Context, items []api.VerifyRequest) (*api.VerifyBatchResponse, error) {
	var out api.VerifyBatchResponse
	return &out, c.do(ctx, "POST", "/v1/kms/verify/batch", api.VerifyBatchRequest{Items: items}, &out)
}

// MintToken asks the server for a new token (scope kms:admin, unrestricted
// token). The returned token is a secret.
func (c *Client) MintToken(ctx context.Context, req api.MintTokenRequest) (*api.MintTokenResponse, error) {
	var out api.MintTokenResponse
	return &out, c.do(ctx, "POST", "/v1/kms/tokens", req, &out)
}

// RevokeToken revokes the token whose identifier is id (scope kms:admin,
// unrestricted token): from then on that token and every attenuation of it
// are refused (ErrUnauthenticated) by every node of the server. The
// identifier is not secret: MintToken returns it, `ron-kms token inspect`
// shows it. Revoking an identifier already revoked, or one that names no
// token, succeeds as well; a malformed one is ErrBadRequest.
func (c *Client) RevokeToken(ctx context.Context, id string) (*api.RevokeTokenResponse, error) {
	var out api.RevokeTokenResponse
	return &out, c.do(ctx, "POST", "/v1/kms/tokens/revoke", api.RevokeTokenRequest{ID: id}, &out)
}

// Version returns the server's build information (no token needed).
func (c *Client) Version(ctx context.Context) (*api.BuildInfo, error) {
	var out api.BuildInfo
	return &out, c.do(ctx, "GET", "/version", nil, &out)
}

// Wrap seals a data key to a KEM key (scope kms:wrap); with req.Size set
// instead of a key, the server generates the data key and returns it too.
func (c *Client) Wrap(ctx context.Context, req api.WrapRequest) (*api.WrapResponse, error) {
	var out api.WrapResponse
	return &out, c.do(ctx, "POST", "/v1/kms/wrap", req, &out)
}

// Unwrap opens an envelope (scope kms:unwrap). The result holds a secret.
func (c *Client) Unwrap(ctx context.Context, req api.UnwrapRequest) (*api.UnwrapResponse, error) {
	var out api.UnwrapResponse
	return &out, c.do(ctx, "POST", "/v1/kms/unwrap", req, &out)
}

// Encrypt encrypts up to 64 KiB with an aes-256-gcm key (scope kms:encrypt).
func (c *Client) Encrypt(ctx context.Context, req api.EncryptRequest) (*api.EncryptResponse, error) {
	var out api.EncryptResponse
	return &out, c.do(ctx, "POST", "/v1/kms/encrypt", req, &out)
}

// Decrypt decrypts a ciphertext made by Encrypt (scope kms:decrypt).
func (c *Client) Decrypt(ctx context.Context, req api.DecryptRequest) (*api.DecryptResponse, error) {
	var out api.DecryptResponse
	return &out, c.do(ctx, "POST", "/v1/kms/decrypt", req, &out)
}

// ConfigureKey changes a key's configuration (scope kms:admin): nil fields
// of req are left as they are. It returns the KeyInfo.
func (c *Client) ConfigureKey(ctx context.Context, name string, req api.ConfigureKeyRequest) (*api.KeyInfo, error) {
	p, err := keyPath(name)
	if err != nil {
		return nil, err
	}
	var out api.KeyInfo
	return &out, c.do(ctx, "POST", p+"/config", req, &out)
}

// DisableVersion disables version n of a key (scope kms:admin): it then
// neither verifies, unwraps nor decrypts. The current version cannot be
// disabled (ErrConflict).
func (c *Client) DisableVersion(ctx context.Context, name string, n uint32) (*api.KeyInfo, error) {
	return c.versionAction(ctx, name, n, "disable")
}

// EnableVersion enables a disabled version again (scope kms:admin).
func (c *Client) EnableVersion(ctx context.Context, name string, n uint32) (*api.KeyInfo, error) {
	return c.versionAction(ctx, name, n, "enable")
}

// DestroyVersion schedules the erasure of version n's private material
// after the key's waiting period (scope kms:admin). The current version
// cannot be destroyed (ErrConflict).
func (c *Client) DestroyVersion(ctx context.Context, name string, n uint32) (*api.KeyInfo, error) {
	return c.versionAction(ctx, name, n, "destroy")
}

// CancelDestroy cancels a scheduled destruction; the version is left
// disabled (scope kms:admin).
func (c *Client) CancelDestroy(ctx context.Context, name string, n uint32) (*api.KeyInfo, error) {
	return c.versionAction(ctx, name, n, "cancel-destroy")
}

func (c *Client) versionAction(ctx context.Context, name string, n uint32, action string) (*api.KeyInfo, error) {
	p, err := keyPath(name)
	if err != nil {
		return nil, err
	}
	var out api.KeyInfo
	return &out, c.do(ctx, "POST", p+"/versions/"+strconv.FormatUint(uint64(n), 10)+"/"+action, api.VersionActionRequest{}, &out)
}
