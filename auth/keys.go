package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// KeySet holds the Ed25519 keys of access tokens by kid: ActiveKid signs,
// every key verifies (so tokens signed before a rotation stay valid until
// they expire). A KeySet built from public keys only (ParseJWKS,
// NewPublicKeySet) verifies but cannot sign.
type KeySet struct {
	activeKid string
	private   map[string]ed25519.PrivateKey
	public    map[string]ed25519.PublicKey
}

// NewKeySet builds a signing key set; active must name one of keys.
func NewKeySet(keys map[string]ed25519.PrivateKey, active string) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("auth: key set is empty")
	}
	if _, ok := keys[active]; !ok {
		return nil, fmt.Errorf("auth: active kid %q is not in the key set", active)
	}
	ks := &KeySet{activeKid: active, private: map[string]ed25519.PrivateKey{}, public: map[string]ed25519.PublicKey{}}
	for kid, k := range keys {
		if kid == "" {
			return nil, errors.New("auth: empty kid in key set")
		}
		if len(k) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("auth: key %q is not an Ed25519 private key", kid)
		}
		ks.private[kid] = k
		ks.public[kid] = k.Public().(ed25519.PublicKey)
	}
	return ks, nil
}

// NewPublicKeySet builds a verify-only key set.
func NewPublicKeySet(keys map[string]ed25519.PublicKey) (*KeySet, error) {
	if len(keys) == 0 {
		return nil, errors.New("auth: key set is empty")
	}
	ks := &KeySet{public: map[string]ed25519.PublicKey{}}
	for kid, k := range keys {
		if kid == "" || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("auth: key %q is not an Ed25519 public key", kid)
		}
		ks.public[kid] = k
	}
	return ks, nil
}

// KeySetFromConfig decodes auth.signing_keys (kid -> base64 of a 32-byte
// Ed25519 seed, standard or URL alphabet, padded or not) with active
// signing.
func KeySetFromConfig(keys map[string]string, active string) (*KeySet, error) {
	priv := make(map[string]ed25519.PrivateKey, len(keys))
	for kid, enc := range keys {
		seed, err := decodeB64(enc)
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("auth: signing key %q must be base64 of a %d-byte Ed25519 seed", kid, ed25519.SeedSize)
		}
		priv[kid] = ed25519.NewKeyFromSeed(seed)
	}
	return NewKeySet(priv, active)
}

func decodeB64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// keyFile is the on-disk form of an embedded-mode key set.
type keyFile struct {
	ActiveKid string            `json:"active_kid"`
	Keys      map[string]string `json:"keys"` // kid -> base64 seed
}

// LoadOrCreateKeySet reads the key set kept at path, or, when there is no
// file yet, generates one Ed25519 key and writes it there (mode 0600,
// synced) first. Embedded mode keeps its key in the data dir this way, so
// tokens survive a restart.
func LoadOrCreateKeySet(path string) (*KeySet, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKeyFile(path); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: read key set %s: %w", path, err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return nil, fmt.Errorf("auth: parse key set %s: %w", path, err)
	}
	ks, err := KeySetFromConfig(kf.Keys, kf.ActiveKid)
	if err != nil {
		return nil, fmt.Errorf("auth: key set %s: %w", path, err)
	}
	return ks, nil
}

func createKeyFile(path string) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("auth: generate key: %w", err)
	}
	kid := Thumbprint(pub)
	b, err := json.MarshalIndent(keyFile{ActiveKid: kid, Keys: map[string]string{kid: base64.StdEncoding.EncodeToString(priv.Seed())}}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("auth: create key dir: %w", err)
	}
	// Written under a temporary name and linked into place, so a crash
	// never leaves a half-written key file and two processes racing agree
	// on one key (link fails with ErrExist for the loser).
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keys-*")
	if err != nil {
		return fmt.Errorf("auth: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("auth: chmod key file: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("auth: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("auth: sync key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: close key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		return fmt.Errorf("auth: install key file: %w", err)
	}
	return nil
}

// Thumbprint is the RFC 7638 JWK thumbprint of an Ed25519 public key
// (base64url SHA-256), used as the kid of generated keys.
func Thumbprint(pub ed25519.PublicKey) string {
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ActiveKid is the kid that signs ("" for a verify-only set).
func (k *KeySet) ActiveKid() string { return k.activeKid }

// CanSign reports whether the set holds the active private key.
func (k *KeySet) CanSign() bool { return k != nil && k.private[k.activeKid] != nil }

// PublicKey returns the verifying key of kid.
func (k *KeySet) PublicKey(kid string) (ed25519.PublicKey, bool) {
	if k == nil {
		return nil, false
	}
	p, ok := k.public[kid]
	return p, ok
}

func (k *KeySet) signer() (string, ed25519.PrivateKey, bool) {
	if !k.CanSign() {
		return "", nil, false
	}
	return k.activeKid, k.private[k.activeKid], true
}

// JWK is one public key in JSON Web Key form (RFC 8037, OKP / Ed25519).
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Kid string `json:"kid"`
	X   string `json:"x"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is the body of GET /v1/auth/keys.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns the public keys, sorted by kid.
func (k *KeySet) JWKS() JWKS {
	out := JWKS{Keys: make([]JWK, 0, len(k.public))}
	for kid, pub := range k.public {
		out.Keys = append(out.Keys, JWK{Kty: "OKP", Crv: "Ed25519", Kid: kid, X: base64.RawURLEncoding.EncodeToString(pub), Alg: "EdDSA", Use: "sig"})
	}
	sort.Slice(out.Keys, func(i, j int) bool { return out.Keys[i].Kid < out.Keys[j].Kid })
	return out
}

// KeySet turns a JWKS back into a verify-only key set (a service that
// verifies tokens locally fetches GET /v1/auth/keys or calls Keys). Keys
// other than Ed25519 signing keys are skipped.
func (j JWKS) KeySet() (*KeySet, error) {
	pub := map[string]ed25519.PublicKey{}
	for _, k := range j.Keys {
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("auth: jwk %q: malformed x", k.Kid)
		}
		pub[k.Kid] = x
	}
	return NewPublicKeySet(pub)
}
