package policy

import (
	"fmt"
	"io"
	"strings"

	"aead.dev/minisign"
)

// legacyMax bounds what a legacy (not prehashed) signature may cover: it
// is checked over the whole message held in memory.
const legacyMax = 256 << 20

// KeyID is how minisign prints a key's ID.
func KeyID(id uint64) string { return fmt.Sprintf("%016X", id) }

// HasKey reports whether id (as KeyID prints it) is one of the policy's keys.
func (p *Policy) HasKey(id string) bool {
	for _, k := range p.keys {
		if KeyID(k.ID()) == id {
			return true
		}
	}
	return false
}

// Verify checks the minisign signature sig of what r holds against the
// policy's keys and returns the ID of the key that made it. Both of
// minisign's forms are read: prehashed (the default of minisign 0.10 and
// later) by streaming, legacy by holding the message (up to 256 MiB).
func (p *Policy) Verify(r io.Reader, sig []byte) (string, error) {
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		return "", fmt.Errorf("not a minisign signature: %v", strings.TrimPrefix(err.Error(), "minisign: "))
	}
	var pk *minisign.PublicKey
	for i := range p.keys {
		if p.keys[i].ID() == s.KeyID {
			pk = &p.keys[i]
			break
		}
	}
	if pk == nil {
		if len(p.keys) == 0 {
			return "", fmt.Errorf("signed by key %s, and %s lists no keys (images.keys)", KeyID(s.KeyID), p.Source)
		}
		return "", fmt.Errorf("signed by key %s, which is not one of images.keys in %s", KeyID(s.KeyID), p.Source)
	}
	ok := false
	switch s.Algorithm {
	case minisign.HashEdDSA:
		mr := minisign.NewReader(r)
		if _, err := io.Copy(io.Discard, mr); err != nil {
			return "", err
		}
		ok = mr.Verify(*pk, sig)
	default:
		msg, err := io.ReadAll(io.LimitReader(r, legacyMax+1))
		if err != nil {
			return "", err
		}
		if len(msg) > legacyMax {
			return "", fmt.Errorf("a legacy (not prehashed) signature over more than 256 MiB; sign with minisign -S (prehashed)")
		}
		ok = minisign.Verify(*pk, msg, sig)
	}
	if !ok {
		return "", fmt.Errorf("the signature by key %s does not match: the image changed since it was signed, or the signature is forged", KeyID(s.KeyID))
	}
	return KeyID(s.KeyID), nil
}
