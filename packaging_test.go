package main

// The .deb and .rpm packages, end to end: `make package` builds them once
// (a static binary, then nfpm), and the subtests check what they hold, what
// lintian and systemd-analyze say, and that the .deb installs into a
// throwaway root and serves as the metastore user with its shipped config.
//
// Needs make, dpkg, rpm, lintian, systemd-analyze, setpriv and file (.ci/run
// installs them); without them, or with -short, the test skips and says why.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// packageTools are what TestPackages runs.
var packageTools = []string{"make", "dpkg", "dpkg-deb", "dpkg-query", "rpm", "lintian", "systemd-analyze", "setpriv", "file", "strip", "gzip"}

// packages are the artifacts of one `make package` run.
type packages struct {
	bin, deb, rpm string
}

func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a static binary and the packages (a minute or more): skipped with -short")
	}
	var missing []string
	for _, tool := range packageTools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Skipf("packaging tools missing: %s (.ci/run installs them with apt-get)", strings.Join(missing, " "))
	}

	dir := t.TempDir()
	t.Logf("Step 1: make package (static binary, then nfpm) into %s", dir)
	start := time.Now()
	// On a fresh machine nfpm is downloaded and built on first use: do that
	// while the static binary links (go caches the executable it runs).
	prewarm := exec.Command("go", "run", nfpmModule(t), "--version")
	prewarm.Stdout, prewarm.Stderr = io.Discard, io.Discard
	require.NoError(t, prewarm.Start())
	cmd := exec.Command("make", "package", "BIN="+filepath.Join(dir, "metastore"), "PKG_DIR="+filepath.Join(dir, "dist"))
	out, err := cmd.CombinedOutput()
	prewarm.Wait()
	require.NoError(t, err, "make package:\n%s", lastLines(out, 40))
	p := packages{bin: filepath.Join(dir, "metastore"), deb: onlyMatch(t, dir, "dist/*.deb"), rpm: onlyMatch(t, dir, "dist/*.rpm")}
	t.Logf("built in %v: %s (%s), %s (%s)", time.Since(start).Round(time.Second),
		filepath.Base(p.deb), fileSize(t, p.deb), filepath.Base(p.rpm), fileSize(t, p.rpm))

	t.Run("StaticBinary", func(t *testing.T) { testStaticBinary(t, p) })
	t.Run("DebContents", func(t *testing.T) { testDebContents(t, p) })
	t.Run("RpmContents", func(t *testing.T) { testRpmContents(t, p) })
	t.Run("Lintian", func(t *testing.T) { testLintian(t, p) })
	t.Run("SystemdUnit", func(t *testing.T) { testSystemdUnit(t, p) })
	t.Run("InstallServeRemove", func(t *testing.T) { testInstallServeRemove(t, p) })
}

// pkgFile is one file a package installs, as both formats must have it.
type pkgFile struct {
	path, mode string
}

// commonFiles are installed by both packages (owner root:root).
var commonFiles = []pkgFile{
	{"/usr/bin/metastore", "-rwxr-xr-x"},
	{"/usr/lib/systemd/system/metastore.service", "-rw-r--r--"},
	{"/etc/metastore/metastore.yaml", "-rw-r--r--"},
	{"/usr/share/man/man1/metastore.1.gz", "-rw-r--r--"},
	{"/usr/share/bash-completion/completions/metastore", "-rw-r--r--"},
	{"/usr/share/doc/metastore/copyright", "-rw-r--r--"},
}

var (
	debOnlyFiles = []pkgFile{
		{"/usr/share/zsh/vendor-completions/_metastore", "-rw-r--r--"},
		{"/usr/share/doc/metastore/changelog.gz", "-rw-r--r--"},
		{"/usr/share/lintian/overrides/metastore", "-rw-r--r--"},
	}
	rpmOnlyFiles = []pkgFile{
		{"/usr/share/zsh/site-functions/_metastore", "-rw-r--r--"},
	}
)

func testStaticBinary(t *testing.T, p packages) {
	out := run1(t, "file", p.bin)
	require.Contains(t, out, "statically linked", "make static's binary")
	require.NotContains(t, out, "dynamically linked")
	// The packaged copy is the same binary, stripped; InstallServeRemove
	// serves puts and gets with it.
	root := t.TempDir()
	run1(t, "dpkg-deb", "-x", p.deb, root)
	out = run1(t, "file", filepath.Join(root, "usr/bin/metastore"))
	require.Contains(t, out, "statically linked")
	require.Contains(t, out, ", stripped")
	out = run1(t, filepath.Join(root, "usr/bin/metastore"), "version")
	require.Regexp(t, `(?m)^metastore version: v\S+$`, out)
}

func testDebContents(t *testing.T, p packages) {
	t.Logf("dpkg-deb -c: every file with its mode and owner, and nothing else")
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(run1(t, "dpkg-deb", "-c", p.deb)), "\n") {
		f := strings.Fields(line) // -rw-r--r-- root/root 4156 2026-01-01 00:00 ./etc/...
		require.Len(t, f, 6, line)
		if strings.HasPrefix(f[0], "d") {
			require.Equal(t, "drwxr-xr-x root/root", f[0]+" "+f[1], line)
			continue
		}
		got[strings.TrimPrefix(f[5], ".")] = f[0] + " " + f[1]
	}
	want := map[string]string{}
	for _, f := range append(append([]pkgFile(nil), commonFiles...), debOnlyFiles...) {
		want[f.path] = f.mode + " root/root"
	}
	require.Equal(t, want, got)

	t.Logf("dpkg-deb -I: control fields, conffiles, maintainer scripts")
	info := run1(t, "dpkg-deb", "-I", p.deb)
	for _, want := range []string{" Package: metastore\n", " Architecture: amd64\n", " Section: database\n",
		" Homepage: https://github.com/metastore/metastore\n", " Description: etcd v3 compatible, Raft-replicated metadata store\n"} {
		require.Contains(t, info, want)
	}
	for _, script := range []string{"preinst", "postinst", "prerm", "postrm", "conffiles"} {
		require.Regexp(t, `(?m)^\s+\d+ bytes,\s+\d+ lines\s+\*?\s+`+script+`\b`, info)
	}
	require.Equal(t, "/etc/metastore/metastore.yaml\n", run1(t, "dpkg-deb", "-I", p.deb, "conffiles"),
		"the config file is a conffile: upgrades keep local edits")
	version := strings.TrimSpace(run1(t, "dpkg-deb", "-f", p.deb, "Version"))
	require.Equal(t, packageVersion(binaryVersion(t, p.bin)), version, "package version from the git version")
	for deb, src := range map[string]string{"preinst": "preinstall.sh", "postinst": "postinstall.sh", "prerm": "preremove.sh", "postrm": "postremove.sh"} {
		want, err := os.ReadFile(filepath.Join("packaging/scripts", src))
		require.NoError(t, err)
		require.Equal(t, string(want), run1(t, "dpkg-deb", "-I", p.deb, deb), deb)
	}
	checkScripts(t)
}

// checkScripts checks the maintainer scripts do what the package promises.
func checkScripts(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("packaging/scripts", name))
		require.NoError(t, err)
		return string(b)
	}
	pre := read("preinstall.sh")
	require.Contains(t, pre, "groupadd --system")
	require.Contains(t, pre, "useradd --system --gid metastore --home-dir /var/lib/metastore --no-create-home")
	require.Contains(t, pre, "--shell /usr/sbin/nologin")
	post := read("postinstall.sh")
	require.Contains(t, post, `chmod 0700 "$root/var/lib/metastore"`)
	require.Contains(t, post, "systemctl daemon-reload")
	prerm := read("preremove.sh")
	require.Regexp(t, `(?s)remove \| 0\).*systemctl --no-reload disable --now metastore.service`, prerm,
		"the service stops on removal (deb: remove, rpm: 0), not on upgrade")
	for _, s := range []string{pre, post, prerm, read("postremove.sh")} {
		code := regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(s, "")
		require.NotRegexp(t, `rm -[a-z]*r|userdel|groupdel`, code, "no script deletes data or the user")
	}
}

func testRpmContents(t *testing.T, p packages) {
	t.Logf("rpm -qpl and the modes, owners and flags of each file")
	want := map[string]string{}
	var wantList []string
	for _, f := range append(append([]pkgFile(nil), commonFiles...), rpmOnlyFiles...) {
		flags := ""
		if f.path == "/etc/metastore/metastore.yaml" {
			flags = "cn" // %config(noreplace)
		}
		want[f.path] = strings.TrimSpace(f.mode + " root root " + flags)
		wantList = append(wantList, f.path)
	}
	got := map[string]string{}
	qf := `[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILEFLAGS:fflags}\n]`
	for _, line := range strings.Split(strings.TrimSpace(run1(t, "rpm", "-qp", "--qf", qf, p.rpm)), "\n") {
		path, rest, _ := strings.Cut(line, " ")
		got[path] = strings.TrimSpace(rest)
	}
	require.Equal(t, want, got)
	list := strings.Fields(run1(t, "rpm", "-qpl", p.rpm))
	require.ElementsMatch(t, wantList, list)
	require.Equal(t, "/etc/metastore/metastore.yaml\n", run1(t, "rpm", "-qpc", p.rpm))

	t.Logf("rpm -qpi: header; rpm --scripts: the four maintainer scripts")
	info := run1(t, "rpm", "-qpi", p.rpm)
	for _, re := range []string{`(?m)^Name\s+: metastore$`, `(?m)^Architecture: x86_64$`,
		`(?m)^Version\s+: ` + regexp.QuoteMeta(packageVersion(binaryVersion(t, p.bin))) + `$`,
		`(?m)^URL\s+: https://github.com/metastore/metastore$`, `(?m)^Summary\s+: etcd v3 compatible, Raft-replicated metadata store$`} {
		require.Regexp(t, re, info)
	}
	scripts := run1(t, "rpm", "-qp", "--scripts", p.rpm)
	for rpmName, src := range map[string]string{"preinstall": "preinstall.sh", "postinstall": "postinstall.sh", "preuninstall": "preremove.sh", "postuninstall": "postremove.sh"} {
		body, err := os.ReadFile(filepath.Join("packaging/scripts", src))
		require.NoError(t, err)
		require.Contains(t, scripts, rpmName+" scriptlet (using /bin/sh):\n"+string(body), rpmName)
	}
}

func testLintian(t *testing.T, p packages) {
	// NB: packaging/lintian-overrides (installed with the package) silences
	// the errors a static binary brings by design, each with its reason.
	cmd := exec.Command("lintian", "--allow-root", "--fail-on", "error", p.deb)
	out, err := cmd.CombinedOutput()
	t.Logf("lintian (warnings allowed):\n%s", out)
	require.NoError(t, err, "lintian fails on errors")
	for _, line := range strings.Split(string(out), "\n") {
		require.False(t, strings.HasPrefix(line, "E: "), "lintian error: %s", line)
	}
}

// unitDirectives are the settings metastore.service must have.
var unitDirectives = []string{
	"Type=notify", "NotifyAccess=main", "WatchdogSec=30s",
	"ExecStart=/usr/bin/metastore serve --config-file /etc/metastore/metastore.yaml",
	"User=metastore", "Group=metastore", "Restart=on-failure", "TimeoutStopSec=120s", "LimitNOFILE=65536",
	"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
	"ReadWritePaths=/var/lib/metastore", "WantedBy=multi-user.target",
}

func testSystemdUnit(t *testing.T, p packages) {
	root := t.TempDir()
	run1(t, "dpkg-deb", "-x", p.deb, root)
	unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/metastore.service"))
	require.NoError(t, err)
	for _, d := range unitDirectives {
		require.Regexp(t, "(?m)^"+regexp.QuoteMeta(d)+"$", string(unit))
	}

	t.Logf("systemd-analyze verify in the unpacked root (the host's units supply the targets)")
	units := filepath.Join(root, "usr/lib/systemd/system")
	host, err := os.ReadDir("/usr/lib/systemd/system")
	require.NoError(t, err)
	for _, e := range host {
		if e.Name() == "metastore.service" {
			continue
		}
		src := filepath.Join("/usr/lib/systemd/system", e.Name())
		if target, err := os.Readlink(src); err == nil {
			require.NoError(t, os.Symlink(target, filepath.Join(units, e.Name())))
		} else if e.Type().IsRegular() {
			b, err := os.ReadFile(src)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(units, e.Name()), b, 0o644))
		}
	}
	cmd := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, "metastore.service")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	// Unknown or malformed settings are warnings only: any output fails.
	require.Empty(t, string(out))
}

// testInstallServeRemove installs the .deb into a throwaway root with dpkg
// itself (its database, conffiles, maintainer scripts), runs the installed
// binary as the metastore user the scripts created, with the shipped config,
// then removes and purges the package.
//
// NB: dpkg --root --force-script-chrootless runs the maintainer scripts on
// the host with DPKG_ROOT set; the scripts then create the user with
// useradd --prefix and the data directory under the root, and never call
// systemctl. What this does not cover: the scripts' systemctl calls, and the
// unit's sandboxing, which needs a running systemd (systemd-analyze verify
// checks the unit instead).
func testInstallServeRemove(t *testing.T, p packages) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: dpkg chowns to the metastore user and setpriv switches to it")
	}
	root := t.TempDir()
	// The service user must reach files under the root: open up the path.
	require.NoError(t, os.Chmod(filepath.Dir(root), 0o755))
	require.NoError(t, os.Chmod(root, 0o755))
	t.Logf("Step 1: a minimal base system in %s: passwd, group, shadow, login.defs, dpkg's database", root)
	base := map[string]string{
		"etc/passwd":  "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":   "root:x:0:\n",
		"etc/shadow":  "root:*:19000:0:99999:7:::\n",
		"etc/gshadow": "root:*::\n",
		// A system id range the host does not use, so the user does not
		// alias a host account when the process runs on the host.
		"etc/login.defs":         "SYS_UID_MIN 64000\nSYS_UID_MAX 64999\nSYS_GID_MIN 64000\nSYS_GID_MAX 64999\n",
		"var/lib/dpkg/status":    "",
		"var/lib/dpkg/available": "",
	}
	for name, body := range base {
		require.NoError(t, os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(root, name), []byte(body), 0o644))
	}
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/log", "run"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	dpkg := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "dpkg", append([]string{"--root=" + root, "--force-script-chrootless"}, args...)...)
		cmd.Stdin = nil // a conffile prompt would fail, not hang
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "dpkg %v:\n%s", args, out)
		return string(out)
	}

	t.Logf("Step 2: dpkg -i: the scripts create the user and the data directory")
	dpkg("-i", p.deb)
	require.Contains(t, run1(t, "dpkg-query", "--root="+root, "-W", "-f=${Status} ${Conffiles}", "metastore"),
		"install ok installed  /etc/metastore/metastore.yaml ")
	uid, gid, pw := passwdEntry(t, root, "metastore")
	require.Equal(t, []string{"metastore", "x", strconv.Itoa(uid), strconv.Itoa(gid), "MetaStore", "/var/lib/metastore", "/usr/sbin/nologin"}, pw)
	require.GreaterOrEqual(t, uid, 64000, "a system uid from login.defs")
	require.Regexp(t, fmt.Sprintf("(?m)^metastore:x:%d:$", gid), readString(t, filepath.Join(root, "etc/group")))
	dataDir := filepath.Join(root, "var/lib/metastore")
	st := statT(t, dataDir)
	require.Equal(t, fs.ModeDir|0o700, st.mode)
	require.Equal(t, [2]int{uid, gid}, [2]int{st.uid, st.gid}, "data dir owner")
	shipped, err := os.ReadFile("packaging/metastore.yaml")
	require.NoError(t, err)
	require.Equal(t, string(shipped), readString(t, filepath.Join(root, "etc/metastore/metastore.yaml")))

	t.Logf("Step 3: serve as uid %d with the shipped config; env overrides move the data dir into the root and pick free ports", uid)
	ports := freeTCPPorts(t, 2)
	client := fmt.Sprintf("127.0.0.1:%d", ports[0])
	sockPath := filepath.Join(root, "run/notify.sock")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	require.NoError(t, err)
	defer sock.Close()
	require.NoError(t, os.Chmod(sockPath, 0o777))
	logPath := filepath.Join(t.TempDir(), "serve.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	defer logf.Close()
	srv := exec.Command("setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", gid), "--clear-groups", "--no-new-privs", "--",
		filepath.Join(root, "usr/bin/metastore"), "serve", "--config-file", filepath.Join(root, "etc/metastore/metastore.yaml"))
	srv.Env = []string{
		"PATH=/usr/bin:/bin",
		"METASTORE_DATA_DIR=" + dataDir,
		"METASTORE_LISTEN_CLIENT_URLS=http://" + client,
		fmt.Sprintf("METASTORE_LISTEN_PEER_URLS=http://127.0.0.1:%d", ports[1]),
		"NOTIFY_SOCKET=" + sockPath,
	}
	srv.Stdout, srv.Stderr = logf, logf
	require.NoError(t, srv.Start())
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	defer func() {
		srv.Process.Kill()
		if t.Failed() {
			t.Logf("serve log:\n%s", lastLines([]byte(readString(t, logPath)), 40))
		}
	}()
	msgs := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	waitMsg := func(state string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains("\n"+m+"\n", "\n"+state+"\n") {
					return
				}
			case err := <-exited:
				t.Fatalf("serve exited before %s: %v", state, err)
			case <-deadline:
				t.Fatalf("no %s from the installed binary", state)
			}
		}
	}
	waitMsg("READY=1")
	status := readString(t, fmt.Sprintf("/proc/%d/status", srv.Process.Pid))
	require.Regexp(t, fmt.Sprintf(`(?m)^Uid:\s+%d\s+%d\s+%d\s+%d$`, uid, uid, uid, uid), status, "runs as the metastore user")

	t.Logf("Step 4: healthy, and a put and a get through clientv3")
	resp, err := http.Get("http://" + client + "/health")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), `"health":"true"`)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ms, err := cli.Status(ctx, client)
	require.NoError(t, err)
	require.NotZero(t, ms.Leader)
	_, err = cli.Put(ctx, "installed", "from-the-deb")
	require.NoError(t, err)
	get, err := cli.Get(ctx, "installed")
	require.NoError(t, err)
	require.Len(t, get.Kvs, 1)
	require.Equal(t, "from-the-deb", string(get.Kvs[0].Value))

	t.Logf("Step 5: SIGTERM: STOPPING=1, exit 0; every data file belongs to the metastore user")
	require.NoError(t, srv.Process.Signal(syscall.SIGTERM))
	waitMsg("STOPPING=1")
	select {
	case err := <-exited:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	var dataFiles int
	require.NoError(t, filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		st := statT(t, path)
		require.Equal(t, [2]int{uid, gid}, [2]int{st.uid, st.gid}, path)
		dataFiles++
		return nil
	}))
	require.Greater(t, dataFiles, 3)

	t.Logf("Step 6: reinstalling keeps a locally edited config without asking")
	conf := filepath.Join(root, "etc/metastore/metastore.yaml")
	edited := string(shipped) + "log-level: warn\n"
	require.NoError(t, os.WriteFile(conf, []byte(edited), 0o644))
	dpkg("-i", p.deb)
	require.Equal(t, edited, readString(t, conf))

	t.Logf("Step 7: remove keeps config and data; purge drops the config, keeps the data and the user")
	dpkg("-r", "metastore")
	require.NoFileExists(t, filepath.Join(root, "usr/bin/metastore"))
	require.FileExists(t, conf)
	require.DirExists(t, filepath.Join(dataDir))
	dpkg("-P", "metastore")
	require.NoFileExists(t, conf)
	after := 0
	require.NoError(t, filepath.WalkDir(dataDir, func(string, fs.DirEntry, error) error { after++; return nil }))
	require.Equal(t, dataFiles, after, "data untouched by remove and purge")
	_, _, pw = passwdEntry(t, root, "metastore")
	require.Equal(t, "metastore", pw[0])
}

// nfpmModule is the pinned nfpm that packaging/package.sh runs.
func nfpmModule(t *testing.T) string {
	m := regexp.MustCompile(`NFPM:-"\$GO run (\S+)"`).FindStringSubmatch(readString(t, "packaging/package.sh"))
	require.NotNil(t, m, "nfpm in packaging/package.sh")
	return m[1]
}

// packageVersion mirrors packaging/package.sh: the git version as dpkg and
// rpm can sort it.
func packageVersion(v string) string {
	v = strings.TrimPrefix(v, "v")
	if m := regexp.MustCompile(`^(.*)-([0-9]+)-g([0-9a-f]+)(-dirty)?$`).FindStringSubmatch(v); m != nil {
		dirty := ""
		if m[4] != "" {
			dirty = ".dirty"
		}
		return strings.ReplaceAll(m[1], "-", "~") + "+" + m[2] + ".g" + m[3] + dirty
	}
	if base, ok := strings.CutSuffix(v, "-dirty"); ok {
		return strings.ReplaceAll(base, "-", "~") + "+dirty"
	}
	return strings.ReplaceAll(v, "-", "~")
}

func TestPackageVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v0.0.0-dev":              "0.0.0~dev",
		"v1.2.3":                  "1.2.3",
		"v1.2.3-rc1":              "1.2.3~rc1",
		"v1.2.3-4-gabcdef0":       "1.2.3+4.gabcdef0",
		"v1.2.3-4-gabcdef0-dirty": "1.2.3+4.gabcdef0.dirty",
		"v1.2.3-rc1-4-gabcdef0":   "1.2.3~rc1+4.gabcdef0",
		"v1.2.3-dirty":            "1.2.3+dirty",
	} {
		require.Equal(t, want, packageVersion(in), in)
	}
}

// binaryVersion is what `BIN version` reports as the MetaStore version.
func binaryVersion(t *testing.T, bin string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^metastore version: (\S+)$`).FindStringSubmatch(run1(t, bin, "version"))
	require.NotNil(t, m)
	return m[1]
}

// run1 runs a command and returns its stdout; a failure fails the test.
func run1(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s %v: %s", name, args, stderr.String())
	return stdout.String()
}

func onlyMatch(t *testing.T, dir, pattern string) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, pattern))
	require.NoError(t, err)
	require.Len(t, m, 1, pattern)
	return m[0]
}

func fileSize(t *testing.T, path string) string {
	st, err := os.Stat(path)
	require.NoError(t, err)
	return fmt.Sprintf("%.1f MB", float64(st.Size())/1e6)
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

type fileStat struct {
	mode     fs.FileMode
	uid, gid int
}

func statT(t *testing.T, path string) fileStat {
	t.Helper()
	fi, err := os.Lstat(path)
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	return fileStat{mode: fi.Mode(), uid: int(st.Uid), gid: int(st.Gid)}
}

// passwdEntry is name's line of root's /etc/passwd, split.
func passwdEntry(t *testing.T, root, name string) (uid, gid int, fields []string) {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "etc/passwd"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields = strings.Split(sc.Text(), ":")
		if fields[0] == name {
			uid, err1 := strconv.Atoi(fields[2])
			gid, err2 := strconv.Atoi(fields[3])
			require.NoError(t, err1)
			require.NoError(t, err2)
			return uid, gid, fields
		}
	}
	t.Fatalf("no user %s in %s/etc/passwd", name, root)
	return 0, 0, nil
}

func freeTCPPorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
