package captoken

import (
	"crypto/sha256"
	"sync"
)

// DefaultCacheSize is the number of verified tokens an Authority remembers.
const DefaultCacheSize = 4096

// verifiedCache remembers the Grants of tokens whose signature checked out,
// so that a client sending the same token on every request costs one
// SHA-256 and a map lookup instead of a macaroon verification (an HMAC chain
// and an allocation per caveat, 13 to 19 µs here).
//
// It is keyed by the SHA-256 of the token, so it holds no token; a Grant
// holds no secret either. Only successful verifications are kept: a forged
// or malformed token is verified afresh each time. What depends on the time
// (expiry) is checked on every use, by Verify. A token's signature, caveats
// and therefore Grant never change, so an entry is never stale; entries go
// only to make room, an arbitrary one at a time.
type verifiedCache struct {
	mu  sync.RWMutex
	m   map[[sha256.Size]byte]cachedGrant
	max int
}

type cachedGrant struct {
	g *Grant
}

func newVerifiedCache(max int) *verifiedCache {
	return &verifiedCache{m: make(map[[sha256.Size]byte]cachedGrant), max: max}
}

func tokenDigest(token string) [sha256.Size]byte { return sha256.Sum256([]byte(token)) }

func (c *verifiedCache) get(d [sha256.Size]byte) (cachedGrant, bool) {
	c.mu.RLock()
	e, ok := c.m[d]
	c.mu.RUnlock()
	return e, ok
}

func (c *verifiedCache) put(d [sha256.Size]byte, e cachedGrant) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[d]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[d] = e
}

func (c *verifiedCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
