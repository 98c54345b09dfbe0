package main

import (
	"bytes"
	"testing"
)

func TestBench_BadInputIsOneLineError(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown workload", []string{"bench", "nosuch"}, "metastore: bench: unknown workload \"nosuch\" (see 'metastore bench --help')\n"},
		{"unknown flag", []string{"bench", "put", "--bogus"}, "metastore: bench put: flag provided but not defined: -bogus (see 'metastore bench put --help')\n"},
		{"bad flag value", []string{"bench", "watch", "--streams=x"}, "metastore: bench watch: invalid value \"x\" for flag -streams: parse error (see 'metastore bench watch --help')\n"},
		{"unexpected argument", []string{"bench", "put", "extra"}, "metastore: bench put: unexpected argument \"extra\"\n"},
		{"zero clients", []string{"bench", "put", "--clients", "0"}, "metastore: bench put: bad option: --clients must be at least 1, got 0\n"},
		{"bad consistency", []string{"bench", "range", "--consistency", "x"}, "metastore: bench range: bad option: --consistency must be l or s, got \"x\"\n"},
		{"flag after range key", []string{"bench", "range", "foo", "--total", "1"}, "metastore: bench range: flag --total after the key: flags go before [key [end]]\n"},
		{"key space too big", []string{"bench", "put", "--key-size", "2", "--key-space-size", "1000"}, "metastore: bench put: bad option: --key-space-size 1000 needs keys of 3 digits, more than --key-size 2\n"},
		{"watch value too small", []string{"bench", "watch-latency", "--val-size", "4", "--endpoints", "127.0.0.1:1"}, "metastore: bench watch-latency: bad option: watch-latency needs --val-size of at least 8 (the put's sequence number)\n"},
		{"txn ops over key space", []string{"bench", "txn-put", "--txn-ops", "2"}, "metastore: bench txn-put: bad option: --txn-ops 2 exceeds --key-space-size 1 (a txn puts distinct keys)\n"},
		{"nothing listening", []string{"bench", "put", "--endpoints", "127.0.0.1:1", "--dial-timeout", "300ms"}, "metastore: bench put: connecting to 127.0.0.1:1: context deadline exceeded\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"metastore"}, tt.args...), &stdout, &stderr)
			if code != 1 {
				t.Errorf("exit code = %d, want 1", code)
			}
			if stderr.String() != tt.wantErr {
				t.Errorf("stderr = %q, want %q", stderr.String(), tt.wantErr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing", stdout.String())
			}
		})
	}
}
