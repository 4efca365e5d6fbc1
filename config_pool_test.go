package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const ftEndpoints = "http://192.0.2.21:2379, http://192.0.2.22:2379,https://192.0.2.23:2379"

func TestLoadConfigPool(t *testing.T) {
	ftSetEnv(t, map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 routes fonebridge", "FLIP_NAME": "pbx1",
		"FLIP_ETCD_ENDPOINTS": ftEndpoints, "FLIP_ETCD_PREFIX": "/flip/pbx", "FLIP_ETCD_LOSS": "Hold"})
	c, err := loadConfig(ftHost())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://192.0.2.21:2379", "http://192.0.2.22:2379", "https://192.0.2.23:2379"}
	if strings.Join(c.EtcdEndpoints, " ") != strings.Join(want, " ") {
		t.Errorf("EtcdEndpoints = %q, want %q", c.EtcdEndpoints, want)
	}
	if !c.pool() || c.LeaseTTL != 5*time.Second || !c.PoolHold || c.EtcdPrefix != "/flip/pbx/" {
		t.Errorf("pool settings = %v %s %v %q", c.pool(), c.LeaseTTL, c.PoolHold, c.EtcdPrefix)
	}
	// A pool box probes its own service, never the VIP.
	if c.ProbeTarget != "192.0.2.11:5060" {
		t.Errorf("ProbeTarget = %q, want this box's own address", c.ProbeTarget)
	}
	if c.coldStandby() {
		t.Error("no service in FLIP_RESOURCES, yet cold standby")
	}
}

func TestLoadConfigPoolInvalid(t *testing.T) {
	pool := func(extra map[string]string) map[string]string {
		env := map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk", "FLIP_NAME": "pbx1", "FLIP_ETCD_ENDPOINTS": ftEndpoints}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
		wantMsg string
	}{
		{"endpoint without a scheme", pool(map[string]string{"FLIP_ETCD_ENDPOINTS": "192.0.2.21:2379"}), "FLIP_ETCD_ENDPOINTS", "http://HOST:PORT"},
		{"endpoint without a port", pool(map[string]string{"FLIP_ETCD_ENDPOINTS": "http://192.0.2.21"}), "FLIP_ETCD_ENDPOINTS", "192.0.2.21"},
		{"endpoint with a path", pool(map[string]string{"FLIP_ETCD_ENDPOINTS": "http://192.0.2.21:2379/v3"}), "FLIP_ETCD_ENDPOINTS", ""},
		{"TTL below etcd's", pool(map[string]string{"FLIP_ETCD_TTL": "1s"}), "FLIP_ETCD_TTL", "whole seconds"},
		{"TTL not whole seconds", pool(map[string]string{"FLIP_ETCD_TTL": "2500ms"}), "FLIP_ETCD_TTL", "whole seconds"},
		{"TTL under twice dead-after", pool(map[string]string{"FLIP_ETCD_TTL": "3s", "FLIP_DEAD_AFTER": "2s", "FLIP_INIT_DEAD": "30s"}), "FLIP_ETCD_TTL", "FLIP_DEAD_AFTER"},
		{"unknown loss policy", pool(map[string]string{"FLIP_ETCD_LOSS": "keep"}), "FLIP_ETCD_LOSS", "release"},
		{"relative prefix", pool(map[string]string{"FLIP_ETCD_PREFIX": "flip"}), "FLIP_ETCD_PREFIX", "start with /"},
		{"cert without key", pool(map[string]string{"FLIP_ETCD_CERT": "/etc/flip/c.pem"}), "FLIP_ETCD_CERT", "FLIP_ETCD_KEY"},
		{"relative CA", pool(map[string]string{"FLIP_ETCD_CA": "ca.pem"}), "FLIP_ETCD_CA", "absolute"},
		{"CA file missing", pool(map[string]string{"FLIP_ETCD_CA": "/nonexistent/flip-etcd-ca.pem"}), "FLIP_ETCD_CA", "/nonexistent/flip-etcd-ca.pem"},
		{"client certificate missing", pool(map[string]string{"FLIP_ETCD_CERT": "/nonexistent/c.pem", "FLIP_ETCD_KEY": "/nonexistent/k.pem"}), "FLIP_ETCD_CERT", "/nonexistent/c.pem"},
		{"peer channel beside a pool", pool(map[string]string{"FLIP_PEER": "192.0.2.12", "FLIP_PEER_KEY": "0123456789abcdef"}), "FLIP_PEER", "pool mode"},
		{"failback beside a pool", pool(map[string]string{"FLIP_FAILBACK": "true", "FLIP_PEER": ""}), "FLIP_FAILBACK", ""},
		{"primary beside a pool", pool(map[string]string{"FLIP_PRIMARY": "true"}), "FLIP_PRIMARY", "pool"},
		{"probing the VIP in a pool", pool(map[string]string{"FLIP_PROBE_TARGET": "192.0.2.110"}), "FLIP_PROBE_TARGET", "own address"},
		{"TLS settings without a pool", map[string]string{"FLIP_RESOURCES": "192.0.2.110/24 asterisk", "FLIP_ETCD_CA": "/etc/flip/ca.pem"}, "FLIP_ETCD_CA", "FLIP_ETCD_ENDPOINTS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			for k, v := range env {
				if v == "" {
					delete(env, k)
				}
			}
			ftSetEnv(t, env)
			c, err := loadConfig(ftHost())
			var ce *configError
			if !errors.As(err, &ce) || c != nil {
				t.Fatalf("loadConfig = %+v, %v; want a config error naming %s", c, err, tt.wantVar)
			}
			if ce.Var != tt.wantVar || !strings.Contains(ce.Msg, tt.wantMsg) {
				t.Errorf("error %q; want %s with %q", err, tt.wantVar, tt.wantMsg)
			}
		})
	}
}
