package trust

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/hangar-dev/hangar/internal/errdefs"
)

// passwordIterations is PBKDF2's work factor for new hashes: OWASP's 2023
// figure for HMAC-SHA256. The hash records its own count, so raising this
// leaves existing passwords valid.
const passwordIterations = 600_000

const passwordScheme = "pbkdf2-sha256"

// HashPassword returns the stored form of a trust password:
// "pbkdf2-sha256$ITERATIONS$SALT$HASH" (salt and hash base64). The clear
// password is never stored.
func HashPassword(password string) (string, error) {
	return hashPassword(password, passwordIterations)
}

func hashPassword(password string, iterations int) (string, error) {
	if password == "" {
		return "", errdefs.Invalid("the trust password is empty")
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("trust password salt: %w", err)
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, iterations, 32)
	if err != nil {
		return "", fmt.Errorf("hash trust password: %w", err)
	}
	enc := base64.RawStdEncoding
	return strings.Join([]string{passwordScheme, strconv.Itoa(iterations), enc.EncodeToString(salt), enc.EncodeToString(key)}, "$"), nil
}

// IsPasswordHash tells whether s is a stored hash (what HashPassword
// returns) rather than a clear password.
func IsPasswordHash(s string) bool {
	_, _, _, err := parseHash(s)
	return err == nil
}

func parseHash(stored string) (iterations int, salt, key []byte, err error) {
	parts := strings.Split(stored, "$")
	if len(parts) != 4 || parts[0] != passwordScheme {
		return 0, nil, nil, fmt.Errorf("not a %s hash", passwordScheme)
	}
	iterations, err = strconv.Atoi(parts[1])
	if err != nil || iterations < 1 {
		return 0, nil, nil, fmt.Errorf("bad iteration count %q", parts[1])
	}
	enc := base64.RawStdEncoding
	if salt, err = enc.DecodeString(parts[2]); err != nil {
		return 0, nil, nil, fmt.Errorf("bad salt: %w", err)
	}
	if key, err = enc.DecodeString(parts[3]); err != nil || len(key) == 0 {
		return 0, nil, nil, fmt.Errorf("bad hash")
	}
	return iterations, salt, key, nil
}

// checkPassword compares password with a stored hash in constant time.
// No password set, or a wrong one, is ErrForbidden.
func checkPassword(stored, password string) error {
	if stored == "" {
		return errdefs.Forbidden("no trust password is set on this server: ask its administrator for a token")
	}
	ok, err := verifyPassword(stored, password)
	if err != nil {
		return fmt.Errorf("stored trust password: %w", err)
	}
	if !ok {
		return errdefs.Forbidden("wrong trust password")
	}
	return nil
}

// verifyPassword tells whether password is the one stored hashes: it
// hashes password with the stored salt and iteration count and compares
// in constant time. A stored value that is not a hash is an error.
func verifyPassword(stored, password string) (bool, error) {
	iterations, salt, want, err := parseHash(stored)
	if err != nil {
		return false, err
	}
	got, err := pbkdf2.Key(sha256.New, password, salt, iterations, len(want))
	if err != nil {
		return false, fmt.Errorf("hash password: %w", err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
