package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinel errors classify every FieldError. Test with errors.Is on the
// *Errors returned by Load, Parse or Validate.
var (
	// ErrSyntax: the file is not valid TOML, or repeats a key or table.
	ErrSyntax = errors.New("TOML syntax error")
	// ErrUnknownKey: a key or table the configuration does not define.
	ErrUnknownKey = errors.New("unknown key")
	// ErrType: a value of the wrong TOML type (a number where a string is
	// expected, and so on).
	ErrType = errors.New("wrong type")
	// ErrMissing: a required key is absent.
	ErrMissing = errors.New("missing value")
	// ErrInvalid: a value of the right type that is not acceptable (bad
	// name, duration, UUID, address, path, or out of range).
	ErrInvalid = errors.New("invalid value")
	// ErrDuplicate: a node name, node id, network name or address used twice.
	ErrDuplicate = errors.New("duplicate value")
	// ErrNotRegular: the configuration path names something other than a
	// regular file (a FIFO, a device, a directory).
	ErrNotRegular = errors.New("not a regular file")
	// ErrTiming: the timing bases violate one of their relations; the
	// FieldError also wraps the *TimingError naming both fields.
	ErrTiming = errors.New("timing relation violated")
)

// FieldError is one problem with one field of a configuration file.
type FieldError struct {
	// File is the configuration file name as given to Load or Parse; empty
	// for a Cluster built in code.
	File string
	// Line and Col locate the key (or, for a missing key, the nearest
	// enclosing table) in the file, counted from 1. Zero when unknown.
	Line, Col int
	// Field is the path of the field, such as "node[2].addresses.lan".
	// Arrays of tables are indexed from 0 in the order they appear.
	Field string
	// Msg says what is wrong and what to do about it.
	Msg string
	// Err is one of the sentinel errors above.
	Err error
	// Cause is the underlying error when there is one (a *TimingError, a
	// go-toml *DecodeError); may be nil.
	Cause error

	// what, hint and related build Msg once positions are known: related
	// is the path of another field the problem involves (the first use of
	// a duplicate id), whose line is cited in the message.
	what, hint, related string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
			if e.Col > 0 {
				fmt.Fprintf(&b, ":%d", e.Col)
			}
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel and the cause, so errors.Is and errors.As see
// both.
func (e *FieldError) Unwrap() []error {
	var errs []error
	if e.Err != nil {
		errs = append(errs, e.Err)
	}
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	return errs
}

// compose sets Msg from what, the related field's line (when known) and
// the hint. A "{line}" in what marks where the related line is cited;
// without it the citation follows what.
func (e *FieldError) compose(relatedLine int) {
	if e.what == "" && e.hint == "" {
		return
	}
	cite := ""
	if relatedLine > 0 {
		cite = fmt.Sprintf(" (line %d)", relatedLine)
	}
	msg := e.what
	switch {
	case strings.Contains(msg, "{line}"):
		msg = strings.ReplaceAll(msg, "{line}", cite)
	case relatedLine > 0:
		msg += fmt.Sprintf(" (%s is at line %d)", e.related, relatedLine)
	}
	if e.hint != "" {
		msg += "; " + e.hint
	}
	e.Msg = msg
}

// newFieldError makes an error whose message is "what; hint". related, when
// not empty, is the path of another field the problem involves; Parse cites
// its line.
func newFieldError(sentinel error, field, related, what, hint string) *FieldError {
	e := &FieldError{Field: field, Err: sentinel, what: what, hint: hint, related: related}
	e.compose(0)
	return e
}

// Errors is every problem found in one configuration, sorted by line. Load,
// Parse and Validate return it (as error) when the list is not empty.
type Errors struct {
	List []*FieldError
}

// Error prints one problem per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, fe := range e.List {
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes every FieldError to errors.Is and errors.As.
func (e *Errors) Unwrap() []error {
	errs := make([]error, len(e.List))
	for i, fe := range e.List {
		errs[i] = fe
	}
	return errs
}

// sortFieldErrors orders by line, then column, keeping the order in which
// errors were found for equal positions. Errors without a line come first:
// they concern the file as a whole or a table that is absent.
func sortFieldErrors(list []*FieldError) {
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].Line != list[j].Line {
			return list[i].Line < list[j].Line
		}
		return list[i].Col < list[j].Col
	})
}

// asError returns nil for an empty list, else an *Errors.
func asError(list []*FieldError) error {
	if len(list) == 0 {
		return nil
	}
	sortFieldErrors(list)
	return &Errors{List: list}
}
