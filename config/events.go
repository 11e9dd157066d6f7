package config

import (
	"fmt"
	"path/filepath"
	"time"
)

// DefaultJournalDir holds each node's event journal by default:
// DefaultJournalDir/<cluster name>/<node name>/events.jsonl (a node's own
// directory, so nodes run side by side on one machine, as in a test, keep
// journals of their own).
const DefaultJournalDir = "/var/lib/mtc"

// Bounds of [events] notify_timeout, and its default.
const (
	DefaultNotifyTimeout = 10 * time.Second
	MinNotifyTimeout     = time.Second
	MaxNotifyTimeout     = 5 * time.Minute
)

// Events is the [events] table: where this node keeps its event journal
// (`mtc events`) and the command run for every event. Both are this node's
// own and not part of the Generation.
type Events struct {
	// Journal is the journal file; "" for the default (JournalPath).
	Journal string
	// Notify is the program and its arguments run for every event with the
	// event as one JSON line on its standard input; nil for none.
	Notify []string
	// NotifyTimeout bounds one run of Notify.
	NotifyTimeout time.Duration

	// journalEmpty: the file wrote journal = "" (an error).
	journalEmpty bool
}

type fileEvents struct {
	Journal       *string   `toml:"journal"`
	Notify        []string  `toml:"notify"`
	NotifyTimeout *duration `toml:"notify_timeout"`
}

// toEvents converts the [events] table; bad records a malformed value.
func (f *fileEvents) toEvents(bad func(field, what, hint string)) Events {
	out := Events{Notify: f.Notify, NotifyTimeout: DefaultNotifyTimeout}
	if f.Journal != nil {
		out.Journal = *f.Journal
		out.journalEmpty = out.Journal == ""
	}
	if f.NotifyTimeout != nil {
		d, err := parseDuration(string(*f.NotifyTimeout))
		if err != nil {
			bad("events.notify_timeout", fmt.Sprintf("%q is not a duration (%v)", string(*f.NotifyTimeout), err), `write it like "10s"`)
		} else {
			out.NotifyTimeout = d
		}
	}
	return out
}

// JournalPath is node's event journal file.
func (c *Cluster) JournalPath(node string) string {
	if c.Events.Journal != "" {
		return c.Events.Journal
	}
	return filepath.Join(DefaultJournalDir, c.Name, node, "events.jsonl")
}

// validateEvents checks [events].
func (c *Cluster) validateEvents(add func(sentinel error, field, related, what, hint string) *FieldError) {
	e := c.Events
	switch j := e.Journal; {
	case e.journalEmpty:
		add(ErrInvalid, "events.journal", "", "the journal path is empty",
			fmt.Sprintf("remove the key for the default (%s/<cluster>/<node>/events.jsonl) or write an absolute path", DefaultJournalDir))
	case j == "":
	case hasControl(j):
		add(ErrInvalid, "events.journal", "", controlWhat("the path", j), "write the path without control characters")
	case !filepath.IsAbs(j):
		add(ErrInvalid, "events.journal", "", fmt.Sprintf("%q is not an absolute path", j),
			`write the full path on a local filesystem, such as "/var/lib/mtc/events.jsonl"`)
	}
	if e.Notify != nil {
		switch {
		case len(e.Notify) == 0 || e.Notify[0] == "":
			add(ErrInvalid, "events.notify", "", "the notify command is empty",
				`remove the key, or write the program's absolute path and its arguments, such as ["/usr/local/bin/page-oncall", "--cluster", "prod"]`)
		case !filepath.IsAbs(e.Notify[0]):
			add(ErrInvalid, "events.notify", "", fmt.Sprintf("%q is not an absolute path (the command runs without a shell and without PATH)", e.Notify[0]),
				`write the program's absolute path first, then its arguments, one string each`)
		}
		for i, a := range e.Notify {
			if hasControl(a) {
				add(ErrInvalid, fmt.Sprintf("events.notify[%d]", i), "", controlWhat("the argument", a), "write it without control characters")
			}
		}
	}
	if t := e.NotifyTimeout; t != 0 && (t < MinNotifyTimeout || t > MaxNotifyTimeout) {
		add(ErrInvalid, "events.notify_timeout", "", fmt.Sprintf("%v is out of range", t),
			fmt.Sprintf("use %v to %v (the default is %v)", MinNotifyTimeout, MaxNotifyTimeout, DefaultNotifyTimeout))
	}
}
