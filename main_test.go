package main

import (
	"bytes"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/metastore/metastore/version"
)

func TestRun_BadInputIsOneLineError(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"unknown root flag", []string{"--bogus"}, "metastore: flag provided but not defined: -bogus (see 'metastore --help')\n"},
		{"unknown command", []string{"nosuch"}, "metastore: unknown command \"nosuch\" (see 'metastore help')\n"},
		{"unknown command flag", []string{"version", "--bogus"}, "metastore: version: flag provided but not defined: -bogus (see 'metastore version --help')\n"},
		{"unexpected argument", []string{"version", "extra"}, "metastore: version: unexpected argument \"extra\"\n"},
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

func TestRun_NoArgsPrintsHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"metastore"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code = %d, want 0; stderr: %s", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing", stderr.String())
	}
	for _, want := range []string{"USAGE:", "\n   version "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("help output lacks %q:\n%s", want, stdout.String())
		}
	}
}

func TestRun_Version(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"metastore", "version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code = %d, want 0; stderr: %s", code, stderr.String())
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr = %q, want nothing", stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %d lines, want 5:\n%s", len(lines), stdout.String())
	}
	want := []string{
		"metastore version: " + version.Version,
		"git commit:        " + version.GitCommit,
		"go version:        " + runtime.Version(),
		"", // RocksDB: checked by pattern below
		"os/arch:           " + runtime.GOOS + "/" + runtime.GOARCH,
	}
	for i, w := range want {
		if w != "" && lines[i] != w {
			t.Errorf("line %d = %q, want %q", i+1, lines[i], w)
		}
	}
	if !regexp.MustCompile(`^rocksdb version:   \d+\.\d+\.\d+$`).MatchString(lines[3]) {
		t.Errorf("line 4 = %q, want \"rocksdb version:   X.Y.Z\"", lines[3])
	}
}

func TestWriteVersion(t *testing.T) {
	var b bytes.Buffer
	err := writeVersion(&b, versionInfo{
		Version: "v1.2.3", GitCommit: "abc1234", GoVersion: "go1.26.8", RocksDB: "7.8.3", OSArch: "linux/amd64",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "metastore version: v1.2.3\n" +
		"git commit:        abc1234\n" +
		"go version:        go1.26.8\n" +
		"rocksdb version:   7.8.3\n" +
		"os/arch:           linux/amd64\n"
	if b.String() != want {
		t.Errorf("output = %q, want %q", b.String(), want)
	}
}
