package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
)

// etcdTLS is the TLS setting for the pool's etcd client: nil (plain HTTP)
// unless FLIP_ETCD_CA or FLIP_ETCD_CERT is set or an endpoint is https.
func etcdTLS(cfg *config) (*tls.Config, error) {
	https := false
	for _, ep := range cfg.EtcdEndpoints {
		https = https || strings.HasPrefix(ep, "https://")
	}
	if !https && cfg.EtcdCA == "" && cfg.EtcdCert == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.EtcdCA != "" {
		pem, err := os.ReadFile(cfg.EtcdCA)
		if err != nil {
			return nil, badVar("FLIP_ETCD_CA", "%v; give the PEM file of the CA that signed the etcd servers' certificates", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, badVar("FLIP_ETCD_CA", "%s holds no PEM certificate; give the CA's certificate in PEM (-----BEGIN CERTIFICATE-----)", cfg.EtcdCA)
		}
		tc.RootCAs = pool
	}
	if cfg.EtcdCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.EtcdCert, cfg.EtcdKey)
		if err != nil {
			return nil, badVar("FLIP_ETCD_CERT", "cannot load it with FLIP_ETCD_KEY (%s, %s): %v; give this box's client certificate and its key, both PEM", cfg.EtcdCert, cfg.EtcdKey, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
