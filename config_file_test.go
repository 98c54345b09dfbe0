package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		want    map[string]string // flag -> value in the scratch set
		wantErr string
	}{
		{name: "empty file", yaml: "", want: map[string]string{"name": "default", "heartbeat-interval": "100"}},
		{name: "only comments", yaml: "# name: x\n", want: map[string]string{"name": "default"}},
		{name: "every scalar type", yaml: "name: m1\nheartbeat-interval: 50\nsnapshot-count: 7\nenable-pprof: true\nshutdown-timeout: 3s\n",
			want: map[string]string{"name": "m1", "heartbeat-interval": "50", "snapshot-count": "7", "enable-pprof": "true", "shutdown-timeout": "3s"}},
		{name: "quoted string", yaml: "initial-cluster-token: \"123\"\n", want: map[string]string{"initial-cluster-token": "123"}},
		{name: "list joined with commas", yaml: "listen-client-urls:\n  - http://127.0.0.1:1\n  - http://127.0.0.1:2\n",
			want: map[string]string{"listen-client-urls": "http://127.0.0.1:1,http://127.0.0.1:2"}},
		{name: "null keeps the default", yaml: "engine:\nlog-level: ~\n", want: map[string]string{"engine": "rocksdb", "log-level": "info"}},
		{name: "unknown key", yaml: "name: a\nlisten-client-url: http://x:1\n",
			wantErr: `key "listen-client-url" (line 2): unknown key (keys are the flags of 'metastore serve')`},
		{name: "config-file is not a key", yaml: "config-file: /x\n",
			wantErr: `key "config-file" (line 1): a config file cannot name another`},
		{name: "bad integer", yaml: "heartbeat-interval: fast\n",
			wantErr: `key "heartbeat-interval" (line 1): invalid value "fast": want an integer`},
		{name: "negative unsigned", yaml: "snapshot-count: -1\n",
			wantErr: `key "snapshot-count" (line 1): invalid value "-1": want a non-negative integer`},
		{name: "bad bool", yaml: "enable-pprof: yes\n",
			wantErr: `key "enable-pprof" (line 1): invalid value "yes": want true or false`},
		{name: "duration without unit", yaml: "shutdown-timeout: 10\n",
			wantErr: `key "shutdown-timeout" (line 1): invalid value "10": want a duration such as 500ms, 10s or 5m`},
		{name: "mapping value", yaml: "name:\n  a: b\n", wantErr: `key "name" (line 1): want a value, got a mapping`},
		{name: "duplicate key", yaml: "name: a\nname: b\n", wantErr: `key "name" (line 2): duplicate (first on line 1)`},
		{name: "not a mapping", yaml: "- a\n- b\n", wantErr: `line 1: want a mapping of flag names to values`},
		{name: "yaml syntax", yaml: "name: [\n", wantErr: `yaml: line 1: did not find expected node content`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, set, err := parseConfig([]byte(tt.yaml), serveFileFlags())
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			for k, v := range tt.want {
				require.Equal(t, v, set.Lookup(k).Value.String(), k)
			}
		})
	}
}

// runServeStub runs `metastore serve ARGS` with serve's real flags, env and
// config file layers, but an Action that records the values instead of
// starting a member.
func runServeStub(t *testing.T, args ...string) (map[string]string, error) {
	t.Helper()
	cmd := serveCommand()
	got := map[string]string{}
	cmd.Action = func(c *cli.Context) error {
		for _, f := range cmd.Flags {
			n := f.Names()[0]
			got[n] = fmt.Sprint(c.Value(n))
		}
		return nil
	}
	var out bytes.Buffer
	app := &cli.App{Name: "metastore", Writer: &out, ErrWriter: &out, Commands: []*cli.Command{cmd},
		ExitErrHandler: func(*cli.Context, error) {}}
	err := app.Run(append([]string{"metastore", "serve"}, args...))
	return got, err
}

func TestServeConfig_Precedence(t *testing.T) {
	file := writeFile(t, "m.yaml", "name: from-file\n"+
		"data-dir: /file/dir\n"+
		"heartbeat-interval: 50\n"+
		"election-timeout: 700\n"+
		"enable-pprof: true\n"+
		"shutdown-timeout: 3s\n"+
		"snapshot-count: 11\n")
	t.Setenv("METASTORE_DATA_DIR", "/env/dir")
	t.Setenv("METASTORE_ELECTION_TIMEOUT", "800")
	t.Setenv("METASTORE_SHUTDOWN_TIMEOUT", "4s")
	t.Setenv("METASTORE_LOG_LEVEL", "warn")

	got, err := runServeStub(t, "--config-file", file, "--data-dir", "/flag/dir", "--shutdown-timeout", "5s")
	require.NoError(t, err)
	want := map[string]string{
		"data-dir":           "/flag/dir", // flag over env and file
		"shutdown-timeout":   "5s",        // flag over env and file
		"election-timeout":   "800",       // env over file
		"log-level":          "warn",      // env over default
		"name":               "from-file", // file over default
		"heartbeat-interval": "50",        // file (int)
		"enable-pprof":       "true",      // file (bool)
		"snapshot-count":     "11",        // file (uint64)
		"engine":             "rocksdb",   // default
		"listen-peer-urls":   "http://127.0.0.1:2380",
	}
	for k, v := range want {
		require.Equal(t, v, got[k], k)
	}
}

func TestServeConfig_FileFromEnvAndErrors(t *testing.T) {
	t.Setenv("METASTORE_CONFIG_FILE", writeFile(t, "m.yaml", "name: via-env-file\n"))
	got, err := runServeStub(t)
	require.NoError(t, err)
	require.Equal(t, "via-env-file", got["name"])

	// A bad value is rejected even when a flag overrides the key: the file
	// is wrong either way.
	bad := writeFile(t, "bad.yaml", "name: x\nmax-txn-ops: many\n")
	_, err = runServeStub(t, "--config-file", bad, "--max-txn-ops", "5")
	require.EqualError(t, err, "config file "+bad+`: key "max-txn-ops" (line 2): invalid value "many": want an integer`)

	_, err = runServeStub(t, "--config-file", filepath.Join(t.TempDir(), "missing.yaml"))
	require.ErrorContains(t, err, "no such file or directory")
}

// TestServe_UnknownConfigKeyIsOneLine runs the real CLI: serve stops at
// start, before listening, with one line naming the key.
func TestServe_UnknownConfigKeyIsOneLine(t *testing.T) {
	file := writeFile(t, "m.yaml", "data-dir: /tmp/x\nbogus-key: 1\n")
	var stdout, stderr bytes.Buffer
	code := run([]string{"metastore", "serve", "--config-file", file}, &stdout, &stderr)
	require.Equal(t, 1, code)
	require.Equal(t, "metastore: config file "+file+`: key "bogus-key" (line 2): unknown key (keys are the flags of 'metastore serve')`+"\n", stderr.String())
	require.Empty(t, stdout.String())
}

// TestServeFlags_EveryFlagHasItsEnvVar keeps METASTORE_<FLAG> working for
// flags added later, whatever their type.
func TestServeFlags_EveryFlagHasItsEnvVar(t *testing.T) {
	for _, f := range serveCommand().Flags {
		df, ok := f.(cli.DocGenerationFlag)
		require.True(t, ok, "%T", f)
		want := "METASTORE_" + strings.ToUpper(strings.ReplaceAll(f.Names()[0], "-", "_"))
		require.Equal(t, []string{want}, df.GetEnvVars(), f.Names()[0])
	}
}

// TestSetFlagEnvVars_EveryCliFlagType: the environment layer works for every
// urfave/cli v2 flag type, not only those serve uses today.
func TestSetFlagEnvVars_EveryCliFlagType(t *testing.T) {
	tests := []struct {
		flag cli.Flag
		env  string
		want string
	}{
		{&cli.StringFlag{Name: "s"}, "x", "x"},
		{&cli.IntFlag{Name: "i"}, "-3", "-3"},
		{&cli.Int64Flag{Name: "i64"}, "-4", "-4"},
		{&cli.UintFlag{Name: "u"}, "5", "5"},
		{&cli.Uint64Flag{Name: "u64"}, "6", "6"},
		{&cli.Float64Flag{Name: "f"}, "1.5", "1.5"},
		{&cli.BoolFlag{Name: "b"}, "true", "true"},
		{&cli.DurationFlag{Name: "d"}, "2s", "2s"},
		{&cli.PathFlag{Name: "p"}, "/a/b", "/a/b"},
		{&cli.StringSliceFlag{Name: "ss"}, "a,b", "[a b]"},
		{&cli.IntSliceFlag{Name: "is"}, "1,2", "[1 2]"},
		{&cli.Int64SliceFlag{Name: "i64s"}, "1,2", "[1 2]"},
		{&cli.UintSliceFlag{Name: "us"}, "1,2", "[1 2]"},
		{&cli.Uint64SliceFlag{Name: "u64s"}, "1,2", "[1 2]"},
		{&cli.Float64SliceFlag{Name: "fs"}, "1,2", "[1 2]"},
		{&cli.TimestampFlag{Name: "ts", Layout: "2006-01-02"}, "2024-05-06", "2024-05-06"},
		{&cli.GenericFlag{Name: "g", Value: &cli.StringSlice{}}, "x", "[x]"},
	}
	for _, tt := range tests {
		name := tt.flag.Names()[0]
		t.Run(fmt.Sprintf("%T", tt.flag), func(t *testing.T) {
			env := envName("test-" + name)
			setFlagEnvVars(tt.flag, []string{env})
			t.Setenv(env, tt.env)
			set := flag.NewFlagSet("t", flag.ContinueOnError)
			require.NoError(t, tt.flag.Apply(set))
			require.True(t, tt.flag.IsSet())
			got := fmt.Sprint(flagValue(set.Lookup(name)))
			if ts, ok := tt.flag.(*cli.TimestampFlag); ok {
				got = ts.Value.Value().Format(ts.Layout)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// shippedConfig is the config file the packages install.
const shippedConfig = "packaging/metastore.yaml"

var (
	setKeyRe       = regexp.MustCompile(`^([a-z0-9-]+):(.*)$`)
	documentedRe   = regexp.MustCompile(`^# ([a-z0-9-]+): (.*)$`)
	shippedSetKeys = map[string]string{"data-dir": "/var/lib/metastore"} // what the package changes from the defaults
)

// TestShippedConfig_DocumentsEveryServeFlag keeps packaging/metastore.yaml
// complete: every serve flag is either set or documented as
// "# key: default", with the real default, and nothing else is.
func TestShippedConfig_DocumentsEveryServeFlag(t *testing.T) {
	b, err := os.ReadFile(shippedConfig)
	require.NoError(t, err)
	documented := map[string]string{}
	set := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := setKeyRe.FindStringSubmatch(line); m != nil {
			set[m[1]] = strings.TrimSpace(m[2])
		} else if m := documentedRe.FindStringSubmatch(line); m != nil {
			require.NotContains(t, documented, m[1], "documented twice")
			documented[m[1]] = m[2]
		}
	}
	require.Equal(t, shippedSetKeys, set, "keys the shipped file sets")

	flags := serveFileFlags()
	_, defaults, err := parseConfig(nil, flags)
	require.NoError(t, err)
	defaultYAML, err := effectiveConfig(defaults, flags)
	require.NoError(t, err)
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(defaultYAML)), "\n") {
		k, v, _ := strings.Cut(line, ": ")
		want[k] = v
	}
	for k := range set {
		delete(want, k)
	}
	for _, f := range flags { // hidden flags are for tests: valid keys, not advertised
		if vf, ok := f.(cli.VisibleFlag); ok && !vf.IsVisible() {
			delete(want, f.Names()[0])
		}
	}
	for k, v := range want {
		got, ok := documented[k]
		require.True(t, ok, "%s lacks serve's --%s: add a comment line\n# %s: %s", shippedConfig, k, k, v)
		require.Equal(t, v, got, "documented default of %s", k)
	}
	for k := range documented {
		require.Contains(t, want, k, "%s documents %q, which is not a serve flag", shippedConfig, k)
	}
}

func TestConfigCheck(t *testing.T) {
	t.Run("shipped file", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 0, run([]string{"metastore", "config", "check", shippedConfig}, &stdout, &stderr), stderr.String())
		require.Empty(t, stderr.String())
		out := stdout.String()
		require.Contains(t, out, "\ndata-dir: /var/lib/metastore\n")
		require.Contains(t, out, "\nengine: rocksdb\n")
		require.Contains(t, out, "\nheartbeat-interval: 100\n")
		require.Contains(t, out, "\nenable-pprof: false\n")
		require.Contains(t, out, "\nshutdown-timeout: 10s\n")
		// Every serve flag (but --config-file) is a line of the output.
		for _, f := range serveFileFlags() {
			require.Regexp(t, "(?m)^"+regexp.QuoteMeta(f.Names()[0])+": ", out)
		}
		require.NotContains(t, out, "config-file")

		t.Logf("the output is itself a config file that yields the same configuration")
		again := writeFile(t, "effective.yaml", out)
		var stdout2 bytes.Buffer
		require.Equal(t, 0, run([]string{"metastore", "config", "check", again}, &stdout2, &stderr), stderr.String())
		require.Equal(t, out, stdout2.String())
	})

	t.Run("environment ignored", func(t *testing.T) {
		t.Setenv("METASTORE_ENGINE", "memory")
		var stdout, stderr bytes.Buffer
		require.Equal(t, 0, run([]string{"metastore", "config", "check", writeFile(t, "e.yaml", "")}, &stdout, &stderr), stderr.String())
		require.Contains(t, stdout.String(), "\nengine: rocksdb\n")
	})

	tests := []struct {
		name, yaml, wantErr string
	}{
		{"unknown key", "nme: x\n", `key "nme" (line 1): unknown key (keys are the flags of 'metastore serve')`},
		{"bad type", "max-txn-ops: 1.5\n", `key "max-txn-ops" (line 1): invalid value "1.5": want an integer`},
		{"serve's own checks", "engine: sqlite\n", `--engine "sqlite": want rocksdb or memory`},
		{"inconsistent settings", "heartbeat-interval: 500\n", `--election-timeout (1s) must be at least 3x --heartbeat-interval (500ms), both positive`},
		{"bad URL", "listen-client-urls: 127.0.0.1:2379\n", `--listen-client-urls: "127.0.0.1:2379" is not a URL of the form http://host:port`},
		{"bad log level", "log-level: loud\n", `--log-level "loud": want debug, info, warn or error`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, "bad.yaml", tt.yaml)
			var stdout, stderr bytes.Buffer
			require.Equal(t, 1, run([]string{"metastore", "config", "check", p}, &stdout, &stderr))
			require.Equal(t, "metastore: config file "+p+": "+tt.wantErr+"\n", stderr.String())
			require.Empty(t, stdout.String())
		})
	}

	t.Run("usage", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 1, run([]string{"metastore", "config", "check"}, &stdout, &stderr))
		require.Equal(t, "metastore: config check: want one argument, the config file (got 0)\n", stderr.String())
	})
}

// TestFlagValue_Durations: durations print as Go durations, which the
// parser reads back.
func TestFlagValue_Durations(t *testing.T) {
	set := flag.NewFlagSet("t", flag.ContinueOnError)
	set.Duration("d", 5*time.Minute, "")
	require.Equal(t, "5m0s", flagValue(set.Lookup("d")))
}

// TestOperationsGuide_ConfigExample: the YAML example of docs/operations.md's
// Configuration section is a valid config file.
func TestOperationsGuide_ConfigExample(t *testing.T) {
	b, err := os.ReadFile("docs/operations.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(b), "\n## Configuration\n")
	require.True(t, ok, "no Configuration section")
	m := regexp.MustCompile("(?s)\n```yaml\n(.*?)\n```\n").FindStringSubmatch(section)
	require.NotNil(t, m, "no yaml example")
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run([]string{"metastore", "config", "check", writeFile(t, "example.yaml", m[1])}, &stdout, &stderr), stderr.String())
	require.Contains(t, stdout.String(), "\ninitial-cluster: m1=http://10.0.0.1:2380,m2=http://10.0.0.2:2380,m3=http://10.0.0.3:2380\n")
}
