package store

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
)

// tokenBytes is the entropy of an API token. At 256 random bits a plain
// SHA-256 is a sufficient stored form: there is nothing to brute-force, so
// a slow password hash would only cost CPU on every push.
const tokenBytes = 32

// NewToken returns a fresh API token (43 characters of base64url) and the
// hash to store for it.
func NewToken() (token string, hash []byte, err error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("generate token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken is the stored form of a token: its SHA-256.
func HashToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}

// TokenMatches compares a presented token hash with a stored one in
// constant time. A missing stored hash (no token issued) never matches, and
// takes the same time as a mismatch, so a caller cannot tell the two apart.
func TokenMatches(stored, presented []byte) bool {
	if len(stored) != sha256.Size {
		// Compare against a dummy so both paths do the same work.
		var dummy [sha256.Size]byte
		subtle.ConstantTimeCompare(dummy[:], presented)
		return false
	}
	return subtle.ConstantTimeCompare(stored, presented) == 1
}
