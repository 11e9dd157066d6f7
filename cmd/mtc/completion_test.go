package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

func model(t *testing.T) *kong.Node {
	t.Helper()
	var cli CLI
	p, err := kong.New(&cli, kong.Name("mtc"))
	if err != nil {
		t.Fatal(err)
	}
	return p.Model.Node
}

func TestCompleteCandidates(t *testing.T) {
	root := model(t)
	for _, c := range []struct {
		words   []string
		want    []string // all of these
		notWant []string
		exact   bool
	}{
		{words: []string{""}, want: []string{"check", "daemon", "disk", "events", "fence", "status", "completion"}, notWant: []string{"__complete", "watchdog-supervise"}},
		{words: []string{"d"}, want: []string{"daemon", "disable", "disk"}, exact: true},
		{words: []string{"disk", ""}, want: []string{"clear-slot", "dump", "init"}, exact: true},
		{words: []string{"disk", "dump", "--"}, want: []string{"--config", "--device", "--json", "--sample", "--log-level"}},
		{words: []string{"disk", "dump", "--config", ""}, want: []string{filesDirective}, exact: true},
		{words: []string{"disk", "dump", "--config=e"}, want: []string{filesDirective}, exact: true},
		{words: []string{"--log-level", ""}, want: []string{"debug", "error", "info", "warn"}, exact: true},
		{words: []string{"--log-level=w"}, want: []string{"--log-level=warn"}, exact: true},
		{words: []string{"--log-level", "debug", "dis"}, want: []string{"disable", "disk"}, exact: true},
		{words: []string{"completion", ""}, want: []string{"bash", "zsh"}, exact: true},
		{words: []string{"disk", "dump", "--json", "--sa"}, want: []string{"--sample"}, exact: true},
		{words: []string{"disk", "clear-slot", "--config", "c.toml", ""}, want: []string{filesDirective}},
	} {
		got := complete(root, c.words)
		if c.exact && !slices.Equal(got, c.want) {
			t.Errorf("%q: %q, want exactly %q", c.words, got, c.want)
			continue
		}
		for _, w := range c.want {
			if !slices.Contains(got, w) {
				t.Errorf("%q: %q lacks %q", c.words, got, w)
			}
		}
		for _, w := range c.notWant {
			if slices.Contains(got, w) {
				t.Errorf("%q: %q offers the hidden %q", c.words, got, w)
			}
		}
	}
}

// The bash script, sourced into a real bash, completes through this binary.
func TestBashCompletionScript(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	dir := t.TempDir()
	// This test binary acts as mtc (TestMain) when MTC_TEST_AS_MTC=1.
	mtc := filepath.Join(dir, "mtc")
	if err := os.Symlink(os.Args[0], mtc); err != nil {
		t.Fatal(err)
	}
	completionCluster(t, dir)
	script, err := runCLI(t, "completion", "bash")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		line string
		want string
	}{
		{"mtc dae", "daemon"},
		{"mtc disk d", "dump"},
		{"mtc move --config cluster.toml orders --to g", "gamma"},
		{"mtc disk dump --con", "--config"},
		{"mtc disk dump --config clu", "cluster.toml"},
		{"mtc completion z", "zsh"},
	} {
		words := strings.Fields(c.line)
		words[0] = mtc
		prog := script + `
COMP_WORDS=(` + quoteWords(words) + `)
COMP_CWORD=` + strconv.Itoa(len(words)-1) + `
cd ` + dir + `
_mtc
printf '%s\n' "${COMPREPLY[@]}"
`
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog)
		cmd.Env = append(os.Environ(), "MTC_TEST_AS_MTC=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v\n%s", c.line, err, out)
		}
		if got := strings.Fields(string(out)); !slices.Equal(got, []string{c.want}) {
			t.Errorf("%q completes to %q, want %q", c.line, got, c.want)
		}
	}
}

func quoteWords(ws []string) string {
	var b strings.Builder
	for _, w := range ws {
		b.WriteString("'" + strings.ReplaceAll(w, "'", `'\''`) + "' ")
	}
	return b.String()
}

// The zsh script is at least valid zsh where zsh is installed (driving its
// completion widgets needs a terminal).
func TestZshCompletionScriptParses(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh is not installed")
	}
	script, err := runCLI(t, "completion", "zsh")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(zsh, "-n", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
}

// completionCluster is a cluster file with the packages orders and web
// beside it.
func completionCluster(t *testing.T, dir string) string {
	t.Helper()
	cfg := filepath.Join(dir, "cluster.toml")
	if err := os.WriteFile(cfg, []byte(strings.Replace(testConfig, "QDISK", filepath.Join(dir, "q.img"), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(dir, "packages"), 0o755)
	for _, name := range []string{"orders", "web"} {
		pkg := "name = \"" + name + "\"\nnodes = [\"alpha\", \"beta\"]\n\n[[service]]\nname = \"s\"\ncommand = [\"/bin/sleep\", \"1000\"]\n"
		if err := os.WriteFile(filepath.Join(dir, "packages", name+".toml"), []byte(pkg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// The package and node commands complete package and node names from the
// cluster file typed (or the default one), and each positional argument
// in its place.
func TestCompleteClusterNames(t *testing.T) {
	root := model(t)
	cfg := completionCluster(t, t.TempDir())
	old := defaultConfig
	defaultConfig = cfg
	defer func() { defaultConfig = old }()
	other := completionCluster(t, t.TempDir())
	os.Remove(filepath.Join(filepath.Dir(other), "packages", "web.toml"))
	for _, c := range []struct {
		words []string
		want  []string
	}{
		{[]string{"run", ""}, []string{"orders", "web"}},
		{[]string{"run", "w"}, []string{"web"}},
		{[]string{"run", "--config", other, ""}, []string{"orders"}},
		{[]string{"run", "--config=" + other, ""}, []string{"orders"}},
		{[]string{"run", "orders", ""}, nil},
		{[]string{"run", "orders", "--on", ""}, []string{"alpha", "beta", "gamma"}},
		{[]string{"move", "orders", "--to=b"}, []string{"--to=beta"}},
		{[]string{"maintenance", ""}, []string{"orders", "web"}},
		{[]string{"maintenance", "web", ""}, []string{"off", "on"}},
		{[]string{"node", ""}, []string{"drain", "undrain"}},
		{[]string{"node", "drain", ""}, []string{"alpha", "beta", "gamma"}},
		{[]string{"clear", "web", "--node", "g"}, []string{"gamma"}},
		{[]string{"plan", "--fail", "alpha,"}, []string{"alpha,alpha", "alpha,beta", "alpha,gamma"}},
		{[]string{"plan", "--move", ""}, []string{"orders", "web"}},
		{[]string{"halt", "--via", ""}, []string{"alpha", "beta", "gamma"}},
		{[]string{"halt", "web", "--"}, []string{"--config", "--json", "--no-wait", "--via", "--wait", "--help", "--log-format", "--log-level"}},
	} {
		got := complete(root, c.words)
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%q: %q, want %q", c.words, got, want)
		}
	}
	// Without a readable cluster file, the shell's default.
	defaultConfig = filepath.Join(t.TempDir(), "none.toml")
	if got := complete(root, []string{"run", ""}); !slices.Equal(got, []string{filesDirective}) {
		t.Errorf("no cluster file: %q", got)
	}
}
