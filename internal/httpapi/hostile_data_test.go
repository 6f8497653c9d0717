package httpapi

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/ron-kms/ron-kms/api"
	"github.com/ron-kms/ron-kms/internal/captoken"
)

// hostileDataRows is the rows of wrap, unwrap, encrypt and decrypt.
func hostileDataRows(t *testing.T, f *hostileFixture) []hostileRow {
	h, nameA, uuidA, kidW1, nameW, aad := f.h, f.nameA, f.uuidA, f.kidW1, f.nameW, f.aad
	envW1, kidW2, envW, kidWB, nameWB, envWB := f.envW1, f.kidW2, f.envW, f.kidWB, f.nameWB, f.envWB
	kidE1, nameE, ctE1, kidE2, ctE, kidEB := f.kidE1, f.nameE, f.ctE1, f.kidE2, f.ctE, f.kidEB
	nameEB, ctEB, absentW, absentE, wrapReq, unwrapReq := f.nameEB, f.ctEB, f.absentW, f.absentE, f.wrapReq, f.unwrapReq
	encryptReq, decryptReq, acmeOnly, nameC, nameM, badKIDs := f.encryptReq, f.decryptReq, f.acmeOnly, f.nameC, f.nameM, f.badKIDs
	otherTenant := f.otherTenant
	var rows []hostileRow
	add := func(r ...hostileRow) { rows = append(rows, r...) }

	// wrap, unwrap, encrypt, decrypt, and sign/verify with the other
	// algorithms of the table.
	wrap := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "wrap/" + name, method: "POST", path: "/v1/kms/wrap", token: h.Admin, body: body, status: status, code: code}
	}
	unwrap := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "unwrap/" + name, method: "POST", path: "/v1/kms/unwrap", token: h.Admin, body: body, status: status, code: code}
	}
	encrypt := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "encrypt/" + name, method: "POST", path: "/v1/kms/encrypt", token: h.Admin, body: body, status: status, code: code}
	}
	decrypt := func(name string, body any, status int, code api.Code) hostileRow {
		return hostileRow{name: "decrypt/" + name, method: "POST", path: "/v1/kms/decrypt", token: h.Admin, body: body, status: status, code: code}
	}
	unwrapEnv := func(name string, env []byte, aadB64 string, status int, code api.Code) hostileRow {
		return unwrap(name, api.UnwrapRequest{WrappedB64: api.EncodeB64(env), AADB64: aadB64}, status, code)
	}
	decryptCT := func(name string, ct []byte, aadB64 string, status int, code api.Code) hostileRow {
		return decrypt(name, api.DecryptRequest{CiphertextB64: api.EncodeB64(ct), AADB64: aadB64}, status, code)
	}
	wrapped := func(kid string, generated bool) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			var out api.WrapResponse
			r.decodeInto(t, &out)
			if out.KID != kid || out.Alg != "mlkem768-x25519" || out.WrappedB64 == "" || (out.PlaintextKeyB64 != "") != generated {
				t.Errorf("wrap answered kid %s alg %s, plaintext given %v; want %s, %v", out.KID, out.Alg, out.PlaintextKeyB64 != "", kid, generated)
			}
		}
	}
	unwrapped := func(kid, alg string) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			var out api.UnwrapResponse
			r.decodeInto(t, &out)
			if out.KID != kid || out.Alg != alg || len(mustB64(t, out.PlaintextKeyB64)) != 32 {
				t.Errorf("unwrap answered kid %s alg %s; want %s %s and a 32-byte key", out.KID, out.Alg, kid, alg)
			}
		}
	}
	encrypted := func(kid string) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			var out api.EncryptResponse
			r.decodeInto(t, &out)
			if out.KID != kid || out.CiphertextB64 == "" {
				t.Errorf("encrypt answered kid %s, want %s", out.KID, kid)
			}
		}
	}
	decrypted := func(kid, pt string) func(t *testing.T, r response) {
		return func(t *testing.T, r response) {
			var out api.DecryptResponse
			r.decodeInto(t, &out)
			if out.KID != kid || string(mustB64(t, out.PlaintextB64)) != pt {
				t.Errorf("decrypt answered kid %s, plaintext %q; want %s %q", out.KID, mustB64(t, out.PlaintextB64), kid, pt)
			}
		}
	}
	nW, nE := len(nameW), len(nameE) // header offsets: envelope enc at 14+n, ciphertext nonce at 10+n

	for what, k := range badKIDs {
		add(
			wrap("bad kid: "+what, api.WrapRequest{KID: k, Size: 32}, 400, api.CodeBadRequest),
			encrypt("bad kid: "+what, api.EncryptRequest{KID: k, PlaintextB64: "aGk="}, 400, api.CodeBadRequest),
		)
	}
	add(
		// wrap
		wrap("plaintext and size", api.WrapRequest{KID: nameW, PlaintextKeyB64: b64n(32), Size: 32}, 400, api.CodeBadRequest),
		wrap("neither plaintext nor size", api.WrapRequest{KID: nameW}, 400, api.CodeBadRequest),
		wrap("size 0", `{"kid":"`+nameW+`","size":0}`, 400, api.CodeBadRequest),
		wrap("size -1", api.WrapRequest{KID: nameW, Size: -1}, 400, api.CodeBadRequest),
		wrap("size 1025", api.WrapRequest{KID: nameW, Size: api.MaxDataKey + 1}, 400, api.CodeBadRequest),
		wrap("size 2^31", api.WrapRequest{KID: nameW, Size: 1 << 31}, 400, api.CodeBadRequest),
		wrap("size over int64", `{"kid":"`+nameW+`","size":9223372036854775808}`, 400, api.CodeBadRequest),
		wrap("size fractional", `{"kid":"`+nameW+`","size":31.5}`, 400, api.CodeBadRequest),
		wrap("size exponent", `{"kid":"`+nameW+`","size":3.2e1}`, 400, api.CodeBadRequest),
		wrap("size string", `{"kid":"`+nameW+`","size":"32"}`, 400, api.CodeBadRequest),
		wrap("size null and no plaintext", `{"kid":"`+nameW+`","size":null}`, 400, api.CodeBadRequest),
		wrap("plaintext empty", `{"kid":"`+nameW+`","plaintext_key_b64":""}`, 400, api.CodeBadRequest),
		wrap("plaintext 1025 bytes", api.WrapRequest{KID: nameW, PlaintextKeyB64: b64n(api.MaxDataKey + 1)}, 400, api.CodeBadRequest),
		wrap("plaintext 1 MiB", api.WrapRequest{KID: nameW, PlaintextKeyB64: b64n(600 << 10)}, 400, api.CodeBadRequest),
		wrap("plaintext bad base64", api.WrapRequest{KID: nameW, PlaintextKeyB64: "%%%%"}, 400, api.CodeBadRequest),
		wrap("plaintext unpadded", api.WrapRequest{KID: nameW, PlaintextKeyB64: "aGk"}, 400, api.CodeBadRequest),
		wrap("plaintext url alphabet", api.WrapRequest{KID: nameW, PlaintextKeyB64: "-_8="}, 400, api.CodeBadRequest),
		wrap("plaintext newline", api.WrapRequest{KID: nameW, PlaintextKeyB64: "aGVs\nbG8="}, 400, api.CodeBadRequest),
		wrap("plaintext wrong type", `{"kid":"`+nameW+`","plaintext_key_b64":[1]}`, 400, api.CodeBadRequest),
		wrap("aad bad base64", api.WrapRequest{KID: nameW, Size: 32, AADB64: "a==="}, 400, api.CodeBadRequest),
		wrap("aad unpadded", api.WrapRequest{KID: nameW, Size: 32, AADB64: "aGk"}, 400, api.CodeBadRequest),
		wrap("aad over 8 KiB", api.WrapRequest{KID: nameW, Size: 32, AADB64: b64n(api.MaxAAD + 1)}, 400, api.CodeBadRequest),
		wrap("kid missing", `{"size":32}`, 400, api.CodeBadRequest),
		wrap("signing key", api.WrapRequest{KID: nameA, Size: 32}, 400, api.CodeUnsupported),
		wrap("hybrid signing key", api.WrapRequest{KID: nameC, Size: 32}, 400, api.CodeUnsupported),
		wrap("aes key", api.WrapRequest{KID: nameE, PlaintextKeyB64: b64n(32)}, 400, api.CodeUnsupported),
		wrap("older version", api.WrapRequest{KID: kidW1, Size: 32}, 409, api.CodeConflict),
		wrap("older version with plaintext", api.WrapRequest{KID: kidW1, PlaintextKeyB64: b64n(32)}, 409, api.CodeConflict),
		wrap("absent version", api.WrapRequest{KID: nameW + "#v9", Size: 32}, 404, api.CodeNotFound),
		wrap("absent key", api.WrapRequest{KID: absentW, Size: 32}, 404, api.CodeNotFound),
		withToken(wrap("acme-only token, other's key", api.WrapRequest{KID: nameWB, Size: 32}, 403, api.CodeNoCapability), acmeOnly),
		withToken(wrap("key-prefix token", wrapReq, 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{KeyPrefix: "acme/other/"})),
		withToken(wrap("alg-limited token", wrapReq, 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{Algs: []string{"x25519", "ml-kem-768"}})),
		withCheck(wrap("control: size", wrapReq, 200, ""), wrapped(kidW2, true)),
		withCheck(wrap("control: size 1 with the current kid", api.WrapRequest{KID: kidW2, Size: 1}, 200, ""), wrapped(kidW2, true)),
		withCheck(wrap("control: size 1024", api.WrapRequest{KID: nameW, Size: api.MaxDataKey}, 200, ""), wrapped(kidW2, true)),
		withCheck(wrap("control: plaintext of 1024 bytes and 8 KiB aad", api.WrapRequest{KID: nameW, PlaintextKeyB64: b64n(api.MaxDataKey), AADB64: b64n(api.MaxAAD)}, 200, ""), wrapped(kidW2, false)),
		withCheck(wrap("control: plaintext of 1 byte", api.WrapRequest{KID: nameW, PlaintextKeyB64: "AA=="}, 200, ""), wrapped(kidW2, false)),
		withToken(wrap("control: other tenant token on its own key", api.WrapRequest{KID: nameWB, Size: 16}, 200, ""), otherTenant),

		// unwrap
		unwrapEnv("garbage", []byte("garbage, not an envelope"), aad, 400, api.CodeBadRequest),
		unwrap("bad base64", api.UnwrapRequest{WrappedB64: "%%%%"}, 400, api.CodeBadRequest),
		unwrap("newline inside", api.UnwrapRequest{WrappedB64: api.EncodeB64(envW)[:40] + "\n" + api.EncodeB64(envW)[40:], AADB64: aad}, 400, api.CodeBadRequest),
		unwrap("leading space", api.UnwrapRequest{WrappedB64: " " + api.EncodeB64(envW), AADB64: aad}, 400, api.CodeBadRequest),
		unwrap("url alphabet", api.UnwrapRequest{WrappedB64: base64.URLEncoding.EncodeToString(envW) + "-_==", AADB64: aad}, 400, api.CodeBadRequest),
		unwrap("wrapped missing", `{"aad_b64":"`+aad+`"}`, 400, api.CodeBadRequest),
		unwrap("wrapped wrong type", `{"wrapped_b64":42}`, 400, api.CodeBadRequest),
		unwrap("kid given", `{"kid":"`+kidW2+`","wrapped_b64":"`+api.EncodeB64(envW)+`"}`, 400, api.CodeBadRequest),
		unwrapEnv("truncated to the magic", envW[:4], aad, 400, api.CodeBadRequest),
		unwrapEnv("truncated in the name", envW[:6+nW/2], aad, 400, api.CodeBadRequest),
		unwrapEnv("truncated to the header", envW[:12+nW], aad, 400, api.CodeBadRequest),
		unwrapEnv("truncated in the enc", envW[:14+nW+10], aad, 400, api.CodeBadRequest),
		unwrapEnv("truncated by one byte", envW[:len(envW)-1], aad, 400, api.CodeBadRequest),
		unwrapEnv("tag cut off", envW[:len(envW)-16], aad, 400, api.CodeBadRequest),
		unwrapEnv("trailing byte", append(bytes.Clone(envW), 0), aad, 400, api.CodeBadRequest),
		unwrapEnv("bit flipped in the magic", flip(envW, 0), aad, 400, api.CodeBadRequest),
		unwrapEnv("bit flipped in the format version", flip(envW, 3), aad, 400, api.CodeBadRequest),
		unwrapEnv("bit flipped in the KEM id", flip(envW, 11+nW), aad, 400, api.CodeBadRequest),
		unwrapEnv("bit flipped in the enc", flip(envW, 14+nW+7), aad, 400, api.CodeBadRequest),
		unwrapEnv("bit flipped in the ciphertext", flip(envW, -20), aad, 400, api.CodeBadRequest),
		unwrapEnv("bit flipped in the tag", flip(envW, -1), aad, 400, api.CodeBadRequest),
		unwrapEnv("wrong aad", envW, api.EncodeB64([]byte("order=43")), 400, api.CodeBadRequest),
		unwrapEnv("aad missing", envW, "", 400, api.CodeBadRequest),
		unwrapEnv("aad given where none was", envWB, aad, 400, api.CodeBadRequest),
		unwrapEnv("aad bad base64", envW, "a===", 400, api.CodeBadRequest),
		unwrapEnv("aad over 8 KiB", envW, b64n(api.MaxAAD+1), 400, api.CodeBadRequest),
		unwrapEnv("relabelled to the older version", relabel(envW, nameW, 1), aad, 400, api.CodeBadRequest),
		unwrapEnv("v1 envelope relabelled to v2", relabel(envW1, nameW, 2), aad, 400, api.CodeBadRequest),
		unwrapEnv("relabelled to version 0", relabel(envW, nameW, 0), aad, 400, api.CodeBadRequest),
		unwrapEnv("relabelled to an absent version", relabel(envW, nameW, 9), aad, 404, api.CodeNotFound),
		unwrapEnv("relabelled to an absent key", relabel(envW, absentW, 2), aad, 404, api.CodeNotFound),
		unwrapEnv("relabelled to a signing key", relabel(envW, nameA, 2), aad, 400, api.CodeUnsupported),
		unwrapEnv("relabelled to an aes key", relabel(envW, nameE, 2), aad, 400, api.CodeUnsupported),
		unwrapEnv("relabelled to an invalid key name", relabel(envW, "ACME/payments/mlkem768-x25519/"+uuidA, 2), aad, 400, api.CodeBadRequest),
		unwrapEnv("relabelled to a kid", relabel(envW, kidW2, 2), aad, 400, api.CodeBadRequest),
		unwrapEnv("a ciphertext", ctE, aad, 400, api.CodeBadRequest),
		withToken(unwrapEnv("acme-only token, other's envelope", envWB, "", 403, api.CodeNoCapability), acmeOnly),
		withToken(unwrapEnv("acme-only token, envelope relabelled to other's key", relabel(envW, nameWB, 1), aad, 403, api.CodeNoCapability), acmeOnly),
		withToken(unwrapEnv("alg-limited token", envW, aad, 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{Algs: []string{"x25519"}})),
		withCheck(unwrap("control", unwrapReq, 200, ""), unwrapped(kidW2, "mlkem768-x25519")),
		withCheck(unwrapEnv("control: v1 envelope after rotation", envW1, aad, 200, ""), unwrapped(kidW1, "mlkem768-x25519")),
		withCheck(withToken(unwrapEnv("control: other tenant token on its own envelope", envWB, "", 200, ""), otherTenant), unwrapped(kidWB, "x25519")),

		// encrypt
		encrypt("KEM key", api.EncryptRequest{KID: nameW, PlaintextB64: "aGk="}, 400, api.CodeUnsupported),
		encrypt("x25519 key", api.EncryptRequest{KID: nameWB, PlaintextB64: "aGk="}, 400, api.CodeUnsupported),
		encrypt("signing key", api.EncryptRequest{KID: nameA, PlaintextB64: "aGk="}, 400, api.CodeUnsupported),
		encrypt("ml-dsa key", api.EncryptRequest{KID: nameM, PlaintextB64: "aGk="}, 400, api.CodeUnsupported),
		encrypt("plaintext over 64 KiB", api.EncryptRequest{KID: nameE, PlaintextB64: b64n(api.MaxPlaintext + 1)}, 400, api.CodeBadRequest),
		encrypt("plaintext 64 KiB + 2", api.EncryptRequest{KID: nameE, PlaintextB64: b64n(api.MaxPlaintext + 2)}, 400, api.CodeBadRequest),
		encrypt("plaintext 700 KiB", api.EncryptRequest{KID: nameE, PlaintextB64: b64n(700 << 10)}, 400, api.CodeBadRequest),
		encrypt("plaintext bad base64", api.EncryptRequest{KID: nameE, PlaintextB64: "%%%%"}, 400, api.CodeBadRequest),
		encrypt("plaintext unpadded", api.EncryptRequest{KID: nameE, PlaintextB64: "aGk"}, 400, api.CodeBadRequest),
		encrypt("plaintext trailing bits", api.EncryptRequest{KID: nameE, PlaintextB64: "aGl="}, 400, api.CodeBadRequest),
		encrypt("plaintext wrong type", `{"kid":"`+nameE+`","plaintext_b64":1}`, 400, api.CodeBadRequest),
		encrypt("aad bad base64", api.EncryptRequest{KID: nameE, PlaintextB64: "aGk=", AADB64: "a==="}, 400, api.CodeBadRequest),
		encrypt("aad over 8 KiB", api.EncryptRequest{KID: nameE, PlaintextB64: "aGk=", AADB64: b64n(api.MaxAAD + 1)}, 400, api.CodeBadRequest),
		encrypt("kid missing", `{"plaintext_b64":"aGk="}`, 400, api.CodeBadRequest),
		encrypt("older version", api.EncryptRequest{KID: kidE1, PlaintextB64: "aGk="}, 409, api.CodeConflict),
		encrypt("absent version", api.EncryptRequest{KID: nameE + "#v9", PlaintextB64: "aGk="}, 404, api.CodeNotFound),
		encrypt("absent key", api.EncryptRequest{KID: absentE, PlaintextB64: "aGk="}, 404, api.CodeNotFound),
		withToken(encrypt("acme-only token, other's key", api.EncryptRequest{KID: nameEB, PlaintextB64: "aGk="}, 403, api.CodeNoCapability), acmeOnly),
		withToken(encrypt("alg-limited token", encryptReq, 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{Algs: []string{"mlkem768-x25519"}})),
		withCheck(encrypt("control", encryptReq, 200, ""), encrypted(kidE2)),
		withCheck(encrypt("control: 64 KiB and 8 KiB aad with the current kid", api.EncryptRequest{KID: kidE2, PlaintextB64: b64n(api.MaxPlaintext), AADB64: b64n(api.MaxAAD)}, 200, ""), encrypted(kidE2)),

		// decrypt
		decryptCT("garbage", []byte("garbage, not a ciphertext"), aad, 400, api.CodeBadRequest),
		decrypt("bad base64", api.DecryptRequest{CiphertextB64: "%%%%"}, 400, api.CodeBadRequest),
		decrypt("ciphertext missing", `{"aad_b64":"`+aad+`"}`, 400, api.CodeBadRequest),
		decrypt("kid given", `{"kid":"`+kidE2+`","ciphertext_b64":"`+api.EncodeB64(ctE)+`"}`, 400, api.CodeBadRequest),
		decryptCT("truncated to the magic", ctE[:4], aad, 400, api.CodeBadRequest),
		decryptCT("truncated to the header", ctE[:10+nE], aad, 400, api.CodeBadRequest),
		decryptCT("truncated in the nonce", ctE[:10+nE+6], aad, 400, api.CodeBadRequest),
		decryptCT("truncated by one byte", ctE[:len(ctE)-1], aad, 400, api.CodeBadRequest),
		decryptCT("tag cut off", ctE[:len(ctE)-16], aad, 400, api.CodeBadRequest),
		decryptCT("trailing byte", append(bytes.Clone(ctE), 0), aad, 400, api.CodeBadRequest),
		decryptCT("bit flipped in the magic", flip(ctE, 0), aad, 400, api.CodeBadRequest),
		decryptCT("bit flipped in the nonce", flip(ctE, 10+nE+3), aad, 400, api.CodeBadRequest),
		decryptCT("bit flipped in the ciphertext", flip(ctE, 10+nE+12), aad, 400, api.CodeBadRequest),
		decryptCT("bit flipped in the tag", flip(ctE, -1), aad, 400, api.CodeBadRequest),
		decryptCT("wrong aad", ctE, api.EncodeB64([]byte("order=43")), 400, api.CodeBadRequest),
		decryptCT("aad missing", ctE, "", 400, api.CodeBadRequest),
		decryptCT("aad given where none was", ctEB, aad, 400, api.CodeBadRequest),
		decryptCT("aad bad base64", ctE, "a===", 400, api.CodeBadRequest),
		decryptCT("aad over 8 KiB", ctE, b64n(api.MaxAAD+1), 400, api.CodeBadRequest),
		decryptCT("relabelled to the older version", relabel(ctE, nameE, 1), aad, 400, api.CodeBadRequest),
		decryptCT("v1 ciphertext relabelled to v2", relabel(ctE1, nameE, 2), aad, 400, api.CodeBadRequest),
		decryptCT("relabelled to an absent version", relabel(ctE, nameE, 9), aad, 404, api.CodeNotFound),
		decryptCT("relabelled to an absent key", relabel(ctE, absentE, 2), aad, 404, api.CodeNotFound),
		decryptCT("relabelled to a KEM key", relabel(ctE, nameW, 2), aad, 400, api.CodeUnsupported),
		decryptCT("relabelled to a signing key", relabel(ctE, nameA, 2), aad, 400, api.CodeUnsupported),
		decryptCT("an envelope", envW, aad, 400, api.CodeBadRequest),
		withToken(decryptCT("acme-only token, other's ciphertext", ctEB, "", 403, api.CodeNoCapability), acmeOnly),
		withToken(decryptCT("acme-only token, ciphertext relabelled to other's key", relabel(ctE, nameEB, 1), aad, 403, api.CodeNoCapability), acmeOnly),
		withToken(decryptCT("alg-limited token", ctE, aad, 403, api.CodeNoCapability), h.mint(t, captoken.Restrictions{Algs: []string{"ed25519"}})),
		withCheck(decrypt("control", decryptReq, 200, ""), decrypted(kidE2, "hi")),
		withCheck(decryptCT("control: v1 ciphertext after rotation", ctE1, aad, 200, ""), decrypted(kidE1, "hi")),
		withCheck(withToken(decryptCT("control: other tenant token on its own ciphertext", ctEB, "", 200, ""), otherTenant), decrypted(kidEB, "hi")),
	)
	return rows
}
