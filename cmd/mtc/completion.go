package main

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/alecthomas/kong"
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

// complete returns what may replace the last of words (or follow them,
// when the last is empty), walking the command tree over the others.
func complete(root *kong.Node, words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur := words[len(words)-1]
	node := root
	var pending *kong.Flag // a flag whose value the next word is
	for _, w := range words[:len(words)-1] {
		if pending != nil {
			pending = nil
			continue
		}
		if w == "--" {
			break
		}
		if strings.HasPrefix(w, "-") {
			if f := findFlag(node, w); f != nil && !f.IsBool() && !strings.Contains(w, "=") {
				pending = f
			}
			continue
		}
		if child := findChild(node, w); child != nil {
			node = child
		}
	}
	if pending != nil {
		return valueCandidates(pending.Value, cur)
	}
	if name, val, ok := strings.Cut(cur, "="); ok && strings.HasPrefix(cur, "--") {
		if f := findFlag(node, name); f != nil {
			var out []string
			for _, v := range valueCandidates(f.Value, val) {
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
	for _, ch := range node.Children {
		if ch.Type == kong.CommandNode && !ch.Hidden {
			out = append(out, ch.Name)
		}
	}
	sort.Strings(out)
	out = withPrefix(out, cur)
	// A command that takes a positional argument: the argument may be a
	// file (a package name, a node: the shell's default is the best we
	// know without a configuration).
	if len(node.Positional) > 0 {
		if vs := node.Positional[0].EnumSlice(); len(vs) > 0 && node.Positional[0].Enum != "" {
			return append(out, withPrefix(vs, cur)...)
		}
		out = append(out, filesDirective)
	}
	return out
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

// valueCandidates completes a flag's value: its enum, else file names for
// flags that name files, devices, sockets or directories, else nothing.
func valueCandidates(v *kong.Value, cur string) []string {
	if v.Enum != "" {
		vs := v.EnumSlice()
		sort.Strings(vs)
		return withPrefix(vs, cur)
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
