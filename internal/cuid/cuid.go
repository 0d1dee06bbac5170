// Package cuid makes ids in the CUID2 format the instances API of seed
// 002 promises: 24 characters of [a-z0-9], the first a letter, so an id
// is never mistaken for a number and is safe in URLs and file names.
//
// They are drawn from crypto/rand (about 123 bits), not from CUID2's
// hash of a counter, time and host fingerprint: what clients may rely on
// is the shape and the uniqueness, and 123 random bits give both without
// state to keep.
package cuid

import (
	"crypto/rand"
	"math/big"
)

// Length is an id's length.
const Length = 24

const (
	letters = "abcdefghijklmnopqrstuvwxyz"
	alnum   = letters + "0123456789"
)

// New returns a fresh random id.
func New() string {
	b := make([]byte, Length)
	b[0] = letters[randIndex(len(letters))]
	for i := 1; i < Length; i++ {
		b[i] = alnum[randIndex(len(alnum))]
	}
	return string(b)
}

// randIndex is uniform in [0, n): rejection sampling through big.Int
// avoids the bias of a byte modulo 36.
func randIndex(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		// crypto/rand does not fail on Linux (getrandom); if it ever
		// does, nothing random can be made and continuing would hand
		// out guessable ids.
		panic("cuid: crypto/rand: " + err.Error())
	}
	return int(v.Int64())
}

// Valid tells whether s has an id's shape.
func Valid(s string) bool {
	if len(s) != Length || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
