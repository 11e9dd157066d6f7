package main

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/alecthomas/kong"

	"github.com/mtcluster/mtc/config"
)

// CompletionCmd prints a shell completion script.
type CompletionCmd struct {
	Shell string `arg:"" enum:"bash,zsh" help:"bash or zsh."`
}

// The scripts ask the binary itself what may come next (mtc __complete),
// so they never fall out of step with its commands and flags. A last line
// ":files" asks the shell to complete file names as well.
const bashCompletion = `# bash completion for mtc: add to ~/.bashrc or /etc/bash_completion.d/mtc
#   source <(mtc completion bash)
_mtc() {
	local cur=${COMP_WORDS[COMP_CWORD]} IFS=$'\n' files=0
	local -a out
	out=($("${COMP_WORDS[0]}" __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
	if [[ ${#out[@]} -gt 0 && ${out[-1]} == ":files" ]]; then
		unset 'out[-1]'
		files=1
	fi
	COMPREPLY=("${out[@]}")
	if [[ $files == 1 ]]; then
		COMPREPLY+=($(compgen -f -- "$cur"))
	fi
}
complete -F _mtc mtc
`

const zshCompletion = `#compdef mtc
# zsh completion for mtc: put it in a directory of $fpath as _mtc, or
#   source <(mtc completion zsh)
_mtc() {
	local -a out
	out=("${(@f)$("${words[1]}" __complete -- "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	if [[ ${out[-1]} == ":files" ]]; then
		out[-1]=()
		_files
	fi
	(( ${#out} )) && compadd -- "${out[@]}"
}
if [[ $funcstack[1] == _mtc ]]; then _mtc "$@"; else compdef _mtc mtc; fi
`

// Run prints the script.
func (c *CompletionCmd) Run(out io.Writer) error {
	s := bashCompletion
	if c.Shell == "zsh" {
		s = zshCompletion
	}
	_, err := io.WriteString(out, s)
	return err
}

// CompleteCmd answers the completion scripts: the words typed after "mtc",
// the last one being completed, in; the candidates, one per line, out.
type CompleteCmd struct {
	Words []string `arg:"" optional:"" passthrough:""`
}

// Run prints the candidates.
func (c *CompleteCmd) Run(out io.Writer) error {
	var cli CLI
	p, err := kong.New(&cli, kong.Name("mtc"))
	if err != nil {
		return err
	}
	words := c.Words
	if len(words) > 0 && words[0] == "--" {
		words = words[1:]
	}
	for _, s := range complete(p.Model.Node, words) {
		fmt.Fprintln(out, s)
	}
	return nil
}

// filesDirective asks the shell for file names too.
const filesDirective = ":files"

// defaultConfig is the cluster file completion reads package and node
// names from when the words typed give no --config.
var defaultConfig = "/etc/mtc/cluster.toml"

// complete returns what may replace the last of words (or follow them,
// when the last is empty), walking the command tree over the others.
func complete(root *kong.Node, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur := words[len(words)-1]
	node := root
	names := &clusterNames{path: defaultConfig}
	var pending *kong.Flag // a flag whose value the next word is
	args := 0              // positional arguments of node typed so far
	for _, w := range words[:len(words)-1] {
		if pending != nil {
			if pending.Name == "config" {
				names.path = w
			}
			pending = nil
			continue
		}
		if w == "--" {
			break
		}
		if strings.HasPrefix(w, "-") {
			if v, ok := strings.CutPrefix(w, "--config="); ok {
				names.path = v
			}
			if f := findFlag(node, w); f != nil && !f.IsBool() && !strings.Contains(w, "=") {
				pending = f
			}
			continue
		}
		if child := findChild(node, w); child != nil && args == 0 {
			node = child
			continue
		}
		args++
	}
	if pending != nil {
		return valueCandidates(pending.Value, cur, names)
	}
	if name, val, ok := strings.Cut(cur, "="); ok && strings.HasPrefix(cur, "--") {
		if f := findFlag(node, name); f != nil {
			var out []string
			for _, v := range valueCandidates(f.Value, val, names) {
				if v == filesDirective {
					out = append(out, v)
					continue
				}
				out = append(out, name+"="+v)
			}
			return out
		}
	}
	var out []string
	if strings.HasPrefix(cur, "-") {
		for _, group := range node.AllFlags(true) {
			for _, f := range group {
				if f.Name == "help" && cur == "-" {
					continue
				}
				out = append(out, "--"+f.Name)
			}
		}
		sort.Strings(out)
		return withPrefix(out, cur)
	}
	if args == 0 {
		for _, ch := range node.Children {
			if ch.Type == kong.CommandNode && !ch.Hidden {
				out = append(out, ch.Name)
			}
		}
		sort.Strings(out)
		out = withPrefix(out, cur)
	}
	if pos := positional(node, args); pos != nil {
		if vs := pos.EnumSlice(); len(vs) > 0 && pos.Enum != "" {
			return append(out, withPrefix(vs, cur)...)
		}
		if vs := names.of(pos.Tag.Get("completion")); vs != nil {
			return append(out, withPrefix(vs, cur)...)
		}
		// Without a better idea, the argument may be a file.
		out = append(out, filesDirective)
	}
	return out
}

// positional is node's positional argument after n others, or nil.
func positional(node *kong.Node, n int) *kong.Positional {
	switch {
	case n < len(node.Positional):
		return node.Positional[n]
	case len(node.Positional) > 0 && node.Positional[len(node.Positional)-1].IsCumulative():
		return node.Positional[len(node.Positional)-1]
	}
	return nil
}

// clusterNames reads the node and package names of a cluster file, once,
// for the arguments tagged completion:"node" or completion:"package".
type clusterNames struct {
	path   string
	loaded bool
	nodes  []string
	pkgs   []string
}

// of returns the names of kind ("node", "package"), nil for another kind
// or when the file cannot be read (then the shell's default applies).
func (c *clusterNames) of(kind string) []string {
	if kind != "node" && kind != "package" {
		return nil
	}
	if !c.loaded {
		c.loaded = true
		if cl, err := config.Load(c.path); err == nil {
			for _, n := range cl.Nodes {
				c.nodes = append(c.nodes, n.Name)
			}
			// The packages without problems: a broken file is for mtc check.
			pkgs, _ := config.LoadPackages(cl, config.PackagesDirOf(cl, c.path), nil)
			for _, p := range pkgs {
				c.pkgs = append(c.pkgs, p.Name)
			}
			sort.Strings(c.nodes)
			sort.Strings(c.pkgs)
		}
	}
	if kind == "node" {
		return c.nodes
	}
	return c.pkgs
}

func withPrefix(list []string, prefix string) []string {
	var out []string
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

// valueCandidates completes a flag's value: its enum, else the cluster's
// node or package names for the flags that take one, else file names for
// flags that name files, devices, sockets or directories, else nothing.
func valueCandidates(v *kong.Value, cur string, names *clusterNames) []string {
	if v.Enum != "" {
		vs := v.EnumSlice()
		sort.Strings(vs)
		return withPrefix(vs, cur)
	}
	if kind := v.Tag.Get("completion"); kind != "" {
		// A list (--fail a,b): complete its last item.
		done, last := "", cur
		if v.IsSlice() {
			if i := strings.LastIndexByte(cur, ','); i >= 0 {
				done, last = cur[:i+1], cur[i+1:]
			}
		}
		var out []string
		for _, n := range withPrefix(names.of(kind), last) {
			out = append(out, done+n)
		}
		return out
	}
	if t := v.Tag.Type; t == "existingfile" || t == "existingdir" || t == "path" {
		return []string{filesDirective}
	}
	if v.Target.Kind() == reflect.String || v.Target.Kind() == reflect.Slice {
		for _, w := range []string{"config", "file", "device", "socket", "journal", "packages", "out", "dir", "script"} {
			if strings.Contains(v.Name, w) {
				return []string{filesDirective}
			}
		}
	}
	return nil
}

func findChild(n *kong.Node, name string) *kong.Node {
	for _, ch := range n.Children {
		if ch.Type == kong.CommandNode && (ch.Name == name || slices.Contains(ch.Aliases, name)) {
			return ch
		}
	}
	return nil
}

// findFlag finds the flag w ("--name", "--name=v" or "-x") on n or an
// ancestor.
func findFlag(n *kong.Node, w string) *kong.Flag {
	name, _, _ := strings.Cut(w, "=")
	for ; n != nil; n = n.Parent {
		for _, f := range n.Flags {
			if "--"+f.Name == name || (f.Short != 0 && name == "-"+string(f.Short)) {
				return f
			}
		}
	}
	return nil
}
