// Package benchdoc maintains generated documents, docs/BENCHMARKS.md and
// docs/CHAOS.md: each benchmark or batch writes its own section between
// <!-- bench:NAME --> and <!-- /bench:NAME --> markers, leaving every other
// section and hand-written text alone.
package benchdoc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// intro starts a new benchmarks file.
const intro = `# Benchmarks

Measurements of MT-Cluster on real kernels, made by ` + "`mtc bench`" + ` subcommands
(` + "`make bench`" + `). Each section is written by one subcommand between
` + "`<!-- bench:NAME -->`" + ` and ` + "`<!-- /bench:NAME -->`" + ` markers and replaced
as a whole when it is run again; the rest of the file is left alone. Numbers
are measured, never asserted: compare runs on the same machine only.
`

// ReplaceSection replaces the text between <!-- bench:name --> and
// <!-- /bench:name --> in file with body, appending the section when the
// markers are absent and creating the file (with an introduction) when it
// does not exist. The file is replaced atomically.
func ReplaceSection(file, name, body string) error {
	return ReplaceSectionIn(file, intro, name, body)
}

// ReplaceSectionIn is ReplaceSection for a document of its own: a file
// that does not exist yet starts with introduction instead of the
// benchmarks file's.
func ReplaceSectionIn(file, introduction, name, body string) error {
	openMark, closeMark := "<!-- bench:"+name+" -->", "<!-- /bench:"+name+" -->"
	old, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		old, err = []byte(introduction), nil
	}
	if err != nil {
		return err
	}
	text := string(old)
	block := openMark + "\n" + body + closeMark + "\n"
	i := lineIndex(text, openMark)
	switch {
	case i < 0:
		text = strings.TrimRight(text, "\n") + "\n\n" + block
	default:
		j := lineIndex(text[i:], closeMark)
		if j < 0 {
			return fmt.Errorf("%s: %s has no closing %s; fix the file by hand", file, openMark, closeMark)
		}
		end := i + j + len(closeMark)
		if end < len(text) && text[end] == '\n' {
			end++
		}
		text = text[:i] + block + text[end:]
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(text); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// lineIndex is the index of the first s in text that starts a line, or
// -1: markers count only at the start of a line, so prose that quotes one
// (the introduction does) is not taken for a section.
func lineIndex(text, s string) int {
	for off := 0; off <= len(text); {
		i := strings.Index(text[off:], s)
		if i < 0 {
			return -1
		}
		if at := off + i; at == 0 || text[at-1] == '\n' {
			return at
		}
		off += i + 1
	}
	return -1
}

// Section is one benchmark section of a file: its name and the text
// between its markers.
type Section struct {
	Name, Body string
}

// Sections returns the sections of text in the order they appear. A
// section whose closing marker is missing is an error.
func Sections(text string) ([]Section, error) {
	var out []Section
	const open = "<!-- bench:"
	for {
		i := lineIndex(text, open)
		if i < 0 {
			return out, nil
		}
		rest := text[i+len(open):]
		name, after, ok := strings.Cut(rest, " -->\n")
		if !ok || strings.ContainsAny(name, " \n") {
			return nil, fmt.Errorf("a %s marker without its name and \" -->\" on the same line", open)
		}
		closeMark := "<!-- /bench:" + name + " -->"
		j := lineIndex(after, closeMark)
		if j < 0 {
			return nil, fmt.Errorf("<!-- bench:%s --> has no closing %s", name, closeMark)
		}
		out = append(out, Section{Name: name, Body: after[:j]})
		text = after[j+len(closeMark):]
	}
}

// CopySections copies every section of file from into file to with
// ReplaceSection (the lab writes its sections into its results share; this
// puts them into docs/BENCHMARKS.md), and returns their names.
func CopySections(from, to string) ([]string, error) {
	b, err := os.ReadFile(from)
	if err != nil {
		return nil, err
	}
	secs, err := Sections(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", from, err)
	}
	var names []string
	for _, s := range secs {
		if err := ReplaceSection(to, s.Name, s.Body); err != nil {
			return names, err
		}
		names = append(names, s.Name)
	}
	return names, nil
}
