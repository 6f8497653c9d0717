package sig

import (
	"bytes"
	"crypto/sha512"
	"errors"
	"strings"
	"testing"
)

// rfc8032Vectors are the Ed25519 test vectors of RFC 8032 §7.1, typed from
// the RFC (hex, line breaks as in the RFC joined).
var rfc8032Vectors = []struct {
	name, seed, pub, message, sig string
}{
	{
		name:    "TEST 1",
		seed:    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
		pub:     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
		message: "",
		sig: "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155" +
			"5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
	},
	{
		name:    "TEST 2",
		seed:    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
		pub:     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
		message: "72",
		sig: "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da" +
			"085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
	},
	{
		name:    "TEST 3",
		seed:    "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
		pub:     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
		message: "af82",
		sig: "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac" +
			"18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
	},
	{
		name: "TEST 1024",
		seed: "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
		pub:  "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
		message: "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98" +
			"fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8" +
			"79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d" +
			"658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc" +
			"1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe" +
			"ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e" +
			"06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef" +
			"efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7" +
			"aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1" +
			"85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2" +
			"d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24" +
			"554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270" +
			"88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc" +
			"2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07" +
			"07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba" +
			"b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a" +
			"ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e" +
			"c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7" +
			"51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c" +
			"42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8" +
			"ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df" +
			"f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08" +
			"d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649" +
			"de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4" +
			"88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3" +
			"2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e" +
			"6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f" +
			"b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5" +
			"0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1" +
			"369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d" +
			"b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c" +
			"0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
		sig: "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350" +
			"aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
	},
	{
		name: "TEST SHA(abc)",
		seed: "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
		pub:  "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
		message: "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a" +
			"2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
		sig: "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589" +
			"09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
	},
}

func ed25519For(tb testing.TB) Scheme {
	tb.Helper()
	s, err := For("ed25519")
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestRFC8032(t *testing.T) {
	s := ed25519For(t)
	var batch []BatchItem
	for _, v := range rfc8032Vectors {
		t.Run(strings.ReplaceAll(v.name, " ", "_"), func(t *testing.T) {
			seed, pub, msg, sig := mustHex(t, v.seed), mustHex(t, v.pub), mustHex(t, v.message), mustHex(t, v.sig)
			priv, err := s.NewPrivateKey(seed)
			if err != nil {
				t.Fatal(err)
			}
			if got := priv.Public().Bytes(); !bytes.Equal(got, pub) {
				t.Errorf("public key %x, want %x", got, pub)
			}
			got, err := priv.Sign(msg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, sig) {
				t.Errorf("signature %x, want %x", got, sig)
			}
			pk, err := s.NewPublicKey(pub)
			if err != nil {
				t.Fatal(err)
			}
			if err := pk.Verify(msg, sig, nil); err != nil {
				t.Errorf("Verify: %v", err)
			}
			if err := priv.Public().Verify(msg, sig, &Options{}); err != nil {
				t.Errorf("Verify with derived key and empty options: %v", err)
			}
			batch = append(batch, BatchItem{Key: pk, Message: msg, Signature: sig})

			for bit := range 8 * len(sig) {
				bad := bytes.Clone(sig)
				bad[bit/8] ^= 1 << (bit % 8)
				if err := pk.Verify(msg, bad, nil); !errors.Is(err, ErrInvalidSignature) {
					t.Fatalf("signature bit %d flipped: Verify = %v", bit, err)
				}
			}
			for bit := range 8 * len(pub) {
				badPub := bytes.Clone(pub)
				badPub[bit/8] ^= 1 << (bit % 8)
				k, err := s.NewPublicKey(badPub)
				if err != nil {
					t.Fatal(err)
				}
				if err := k.Verify(msg, sig, nil); !errors.Is(err, ErrInvalidSignature) {
					t.Fatalf("public key bit %d flipped: Verify = %v", bit, err)
				}
			}
			if len(msg) > 0 {
				for _, i := range []int{0, len(msg) / 2, len(msg) - 1} {
					bad := bytes.Clone(msg)
					bad[i] ^= 0x01
					if err := pk.Verify(bad, sig, nil); !errors.Is(err, ErrInvalidSignature) {
						t.Fatalf("message byte %d changed: Verify = %v", i, err)
					}
				}
			}
			if err := pk.Verify(append(bytes.Clone(msg), 0), sig, nil); !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("message extended: Verify = %v", err)
			}
		})
	}
	if ok, errs := VerifyBatch(batch); !ok || len(errs) != len(batch) {
		t.Errorf("VerifyBatch(RFC 8032 vectors) = %v, %v", ok, errs)
	}
}

// The SHA(abc) message is SHA-512("abc"), and TEST 1024 is line 1024 of
// SUPERCOP's sign.input: two checks that the vectors above were typed right.
func TestRFC8032Transcription(t *testing.T) {
	abc := sha512.Sum512([]byte("abc"))
	if got := mustHex(t, rfc8032Vectors[4].message); !bytes.Equal(got, abc[:]) {
		t.Errorf("TEST SHA(abc) message is not SHA-512(abc)")
	}
	v := rfc8032Vectors[3]
	line := supercopVectors(t)[1023]
	if !bytes.Equal(line.seed, mustHex(t, v.seed)) || !bytes.Equal(line.pub, mustHex(t, v.pub)) ||
		!bytes.Equal(line.message, mustHex(t, v.message)) || !bytes.Equal(line.sig, mustHex(t, v.sig)) {
		t.Errorf("TEST 1024 differs from sign.input line 1024")
	}
}

// TestSUPERCOP runs all 1024 lines of SUPERCOP's sign.input (shipped in circl's
// testdata) through sign and verify, singly and as one batch.
func TestSUPERCOP(t *testing.T) {
	s := ed25519For(t)
	vs := supercopVectors(t)
	items := make([]BatchItem, len(vs))
	for i, v := range vs {
		priv, err := s.NewPrivateKey(v.seed)
		if err != nil {
			t.Fatal(err)
		}
		if got := priv.Public().Bytes(); !bytes.Equal(got, v.pub) {
			t.Fatalf("line %d: public key %x, want %x", v.line, got, v.pub)
		}
		got, err := priv.Sign(v.message, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, v.sig) {
			t.Fatalf("line %d: signature %x, want %x", v.line, got, v.sig)
		}
		pk, err := s.NewPublicKey(v.pub)
		if err != nil {
			t.Fatal(err)
		}
		if err := pk.Verify(v.message, v.sig, nil); err != nil {
			t.Fatalf("line %d: Verify: %v", v.line, err)
		}
		bad := bytes.Clone(v.sig)
		bad[i%64] ^= 1 << (i % 8)
		if err := pk.Verify(v.message, bad, nil); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("line %d: flipped signature: Verify = %v", v.line, err)
		}
		items[i] = BatchItem{Key: pk, Message: v.message, Signature: v.sig}
	}
	var st batchStats
	ok, errs := verifyBatch(items, &st)
	if !ok || st != (batchStats{equations: 1}) {
		t.Errorf("batch of %d = %v (stats %+v), want one passing equation", len(items), ok, st)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("line %d: %v", i+1, err)
		}
	}
}

// TestEd25519SecretForm: a key loaded from its secret form (seed ‖ A)
// signs exactly as the key loaded from its seed, for the RFC 8032 §7.1
// keys; wrong lengths and destroyed keys are refused.
func TestEd25519SecretForm(t *testing.T) {
	fs := ed25519For(t).(FormScheme)
	for _, v := range rfc8032Vectors {
		k, err := fs.NewPrivateKey(mustHex(t, v.seed))
		if err != nil {
			t.Fatal(err)
		}
		form, err := fs.SecretForm(k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(form[32:], mustHex(t, v.pub)) {
			t.Fatalf("%s: form does not end with the public key", v.name)
		}
		kf, err := fs.NewPrivateKeyFromForm(form)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kf.Sign(mustHex(t, v.message), nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, mustHex(t, v.sig)) {
			t.Errorf("%s: signature from the form\n got %x\nwant %s", v.name, got, v.sig)
		}
		if !bytes.Equal(kf.Public().Bytes(), mustHex(t, v.pub)) {
			t.Errorf("%s: public key from the form differs", v.name)
		}
		k.Destroy()
		if _, err := fs.SecretForm(k); !errors.Is(err, ErrKeyDestroyed) {
			t.Errorf("SecretForm of a destroyed key: %v, want ErrKeyDestroyed", err)
		}
	}
	for _, n := range []int{0, 32, 63, 65} {
		if _, err := fs.NewPrivateKeyFromForm(make([]byte, n)); !errors.Is(err, ErrKeySize) {
			t.Errorf("form of %d bytes: %v, want ErrKeySize", n, err)
		}
	}
}
