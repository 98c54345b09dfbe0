package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"
)

// visibleServeFlags are the flags serve's help, completion and man page show.
func visibleServeFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range serveCommand().Flags {
		if vf, ok := f.(cli.VisibleFlag); !ok || vf.IsVisible() {
			out = append(out, f)
		}
	}
	return out
}

func cliOutput(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(append([]string{"metastore"}, args...), &stdout, &stderr)
	require.Equal(t, 0, code, "stderr: %s", stderr.String())
	require.Empty(t, stderr.String())
	return stdout.String()
}

// TestBashCompletion sources the generated script in bash and completes
// command lines as a user's TAB would.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is not installed")
	}
	script := filepath.Join(t.TempDir(), "metastore.bash")
	require.NoError(t, os.WriteFile(script, []byte(cliOutput(t, "completion", "bash")), 0o644))

	tests := []struct {
		line string // the words; the last is the one being completed
		want string // COMPREPLY, space-separated ("<default>": bash's file names)
	}{
		{"metastore se", "serve"},
		{"metastore co", "config completion"},
		{"metastore serve --data", "--data-dir"},
		{"metastore serve --initial-cluster-s", "--initial-cluster-state"},
		{"metastore serve --config", "--config-file"},
		{"metastore serve --name config --enable-p", "--enable-pprof"}, // a flag value is not a command
		{"metastore serve --data-dir ", "<default>"},                   // a value: file names
		{"metastore config ", "--help check"},
		{"metastore config check ", "<default>"},
		{"metastore completion ", "bash zsh"},
		{"metastore version --", "--help"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			words := strings.Split(tt.line, " ")
			prog := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
compopt() { echo "<default>"; }
_metastore
if [ ${#COMPREPLY[@]} -gt 0 ]; then echo "${COMPREPLY[*]}"; fi`
			out, err := exec.Command("bash", append([]string{"-c", prog, "bash", script}, words...)...).CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Equal(t, tt.want, strings.TrimSpace(string(out)))
		})
	}
}

func TestZshCompletion(t *testing.T) {
	out := cliOutput(t, "completion", "zsh")
	require.True(t, strings.HasPrefix(out, "#compdef metastore\n"))
	for _, f := range visibleServeFlags() {
		require.True(t, strings.Contains(out, "'--"+f.Names()[0]+"["), "serve flag %s", f.Names()[0])
	}
	require.True(t, strings.Contains(out, "\n_metastore_config_check() {\n"), "no function for config check")
	if _, err := exec.LookPath("zsh"); err != nil {
		t.Skip("zsh is not installed: syntax not checked")
	}
	script := filepath.Join(t.TempDir(), "_metastore")
	require.NoError(t, os.WriteFile(script, []byte(out), 0o644))
	b, err := exec.Command("zsh", "-n", script).CombinedOutput()
	require.NoError(t, err, "zsh -n: %s", b)
}

func TestCompletion_BadShell(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 1, run([]string{"metastore", "completion", "fish"}, &stdout, &stderr))
	require.Equal(t, "metastore: completion: unknown shell \"fish\": want bash or zsh\n", stderr.String())
}

// TestManPage: the page is generated from the CLI, so it lists every serve
// flag; man(1) renders it without warnings.
func TestManPage(t *testing.T) {
	page := cliOutput(t, "man")
	require.True(t, strings.HasPrefix(page, ".nh\n.TH metastore 1"), page[:40])
	for _, f := range visibleServeFlags() {
		name := `\fB--` + strings.Join(f.Names(), ", --") + `\fP` // with its aliases
		require.True(t, strings.Contains(page, name), "serve flag %s", f.Names()[0])
	}
	require.Contains(t, page, `"<name>.metastore"`, "angle brackets survive the markdown step")
	require.Contains(t, page, ".SH config\n", "commands are sections")
	require.Contains(t, page, ".SS check\n", "subcommands are subsections")

	if _, err := exec.LookPath("man"); err != nil {
		t.Skip("man is not installed: rendering not checked")
	}
	p := filepath.Join(t.TempDir(), "metastore.1")
	require.NoError(t, os.WriteFile(p, []byte(page), 0o644))
	cmd := exec.Command("man", "--warnings", "-l", p)
	cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	require.Empty(t, stderr.String())
	require.Contains(t, stdout.String(), "metastore - etcd v3 compatible")
}
