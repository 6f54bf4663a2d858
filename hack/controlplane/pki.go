package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the paths of every file generated under DIR/pki.
type pki struct {
	Dir                     string
	CACert, CAKey           string
	ServingCert, ServingKey string
	SAKey, SAPub            string
	AdminCert, AdminKey     string
	KCMCert, KCMKey         string
}

func newPKIPaths(dir string) *pki {
	p := func(n string) string { return filepath.Join(dir, n) }
	return &pki{
		Dir:    dir,
		CACert: p("ca.crt"), CAKey: p("ca.key"),
		ServingCert: p("apiserver.crt"), ServingKey: p("apiserver.key"),
		SAKey: p("sa.key"), SAPub: p("sa.pub"),
		AdminCert: p("admin.crt"), AdminKey: p("admin.key"),
		KCMCert: p("kube-controller-manager.crt"), KCMKey: p("kube-controller-manager.key"),
	}
}

func (p *pki) files() []string {
	return []string{p.CACert, p.CAKey, p.ServingCert, p.ServingKey, p.SAKey, p.SAPub,
		p.AdminCert, p.AdminKey, p.KCMCert, p.KCMKey}
}

// ensurePKI reuses an existing, complete DIR/pki (so that a data dir can be
// restarted with its etcd contents and service-account tokens still valid) and
// otherwise generates everything from scratch.
func ensurePKI(dir string) (*pki, bool, error) {
	p := newPKIPaths(dir)
	complete := true
	for _, f := range p.files() {
		if _, err := os.Stat(f); err != nil {
			complete = false
			break
		}
	}
	if complete {
		return p, false, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	return p, true, generatePKI(p)
}

func generatePKI(p *pki) error {
	now := time.Now().Add(-time.Hour) // tolerate small clock skew
	notAfter := now.Add(10 * 365 * 24 * time.Hour)

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "dbaas-local-ca"},
		NotBefore:             now,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	if err := writeCert(p.CACert, caDER); err != nil {
		return err
	}
	if err := writeKey(p.CAKey, caKey); err != nil {
		return err
	}

	issue := func(certPath, keyPath string, tmpl *x509.Certificate) error {
		return signCert(caCert, caKey, certPath, keyPath, tmpl)
	}

	if err := issue(p.ServingCert, p.ServingKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}); err != nil {
		return fmt.Errorf("apiserver serving cert: %w", err)
	}
	if err := issue(p.AdminCert, p.AdminKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "dbaas-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return fmt.Errorf("admin cert: %w", err)
	}
	if err := issue(p.KCMCert, p.KCMKey, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "system:kube-controller-manager"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return fmt.Errorf("kube-controller-manager cert: %w", err)
	}

	// Service-account token signing key (RSA: accepted by every consumer).
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	if err := writeKey(p.SAKey, saKey); err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return err
	}
	return os.WriteFile(p.SAPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

func writeCert(path string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeKey(path string, key crypto.Signer) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
}

// issueFromCA signs one more certificate with the CA of p (the node's
// components get theirs when the node first starts on a data directory).
func issueFromCA(p *pki, certPath, keyPath string, tmpl *x509.Certificate) error {
	caCert, err := readCert(p.CACert)
	if err != nil {
		return err
	}
	caKey, err := readKey(p.CAKey)
	if err != nil {
		return err
	}
	return signCert(caCert, caKey, certPath, keyPath, tmpl)
}

// signCert issues a certificate for a new P-256 key with the CA, valid for
// ten years from an hour ago (small clock skews), and writes both files.
func signCert(caCert *x509.Certificate, caKey crypto.Signer, certPath, keyPath string, tmpl *x509.Certificate) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour)
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = now
	tmpl.NotAfter = now.Add(10 * 365 * 24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, key.Public(), caKey)
	if err != nil {
		return err
	}
	if err := writeCert(certPath, der); err != nil {
		return err
	}
	return writeKey(keyPath, key)
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	return x509.ParseCertificate(block.Bytes)
}

func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return signer, nil
}
