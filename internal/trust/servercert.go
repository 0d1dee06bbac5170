package trust

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// ServerCert is the certificate the HTTPS API presents.
type ServerCert struct {
	TLS         tls.Certificate
	PEM         string // the certificate, as GET /1.0 shows it
	Fingerprint string // SHA-256 of the DER, hex
}

// Fingerprint returns a certificate's fingerprint: the SHA-256 of its DER,
// lowercase hex.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// LoadServerCert reads dir/server.crt and dir/server.key, making both
// first when neither exists. One without the other is an error: making a
// new pair would silently change the identity clients pinned.
func LoadServerCert(dir string) (*ServerCert, error) {
	crtPath, keyPath := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	_, crtErr := os.Stat(crtPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case errors.Is(crtErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
		if err := writeServerCert(crtPath, keyPath); err != nil {
			return nil, err
		}
	case crtErr != nil:
		return nil, fmt.Errorf("server certificate: %w", crtErr)
	case keyErr != nil:
		return nil, fmt.Errorf("server key: %w", keyErr)
	}
	pair, err := tls.LoadX509KeyPair(crtPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	return &ServerCert{
		TLS:         pair,
		PEM:         string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pair.Certificate[0]})),
		Fingerprint: Fingerprint(pair.Certificate[0]),
	}, nil
}

// writeServerCert makes a self-signed ECDSA P-384 certificate valid ten
// years, as LXD's: its one DNS name is "unspecified", which lxc uses as
// the server name when it checks the pinned certificate.
func writeServerCert(crtPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate server key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return fmt.Errorf("generate serial: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	now := time.Now()
	tmpl := x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"Hangar"}, CommonName: "root@" + host},
		NotBefore:             now.Add(-time.Minute), // a client clock slightly behind still accepts it
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"unspecified"},
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("create server certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode server key: %w", err)
	}
	// The key first, and 0600 from its creation: never readable by others,
	// not even for a moment.
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return fmt.Errorf("write server key: %w", err)
	}
	if err := writeFileAtomic(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return fmt.Errorf("write server certificate: %w", err)
	}
	return nil
}

// writeFileAtomic writes data to path through a temporary file, so a
// crash leaves either no file or a whole one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}
