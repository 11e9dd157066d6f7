package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEventsDefaultsAndValues(t *testing.T) {
	c := mustParse(t, base)
	if c.JournalPath("alpha") != "/var/lib/mtc/"+c.Name+"/alpha/events.jsonl" || c.Events.Notify != nil || c.Events.NotifyTimeout != DefaultNotifyTimeout {
		t.Fatalf("defaults: journal %s, %+v", c.JournalPath("alpha"), c.Events)
	}
	d := mustParse(t, base+"\n[events]\njournal = \"/srv/mtc/events.jsonl\"\nnotify = [\"/usr/local/bin/page\", \"--team\", \"db\"]\nnotify_timeout = \"30s\"\n")
	if d.JournalPath("alpha") != "/srv/mtc/events.jsonl" || !slices.Equal(d.Events.Notify, []string{"/usr/local/bin/page", "--team", "db"}) || d.Events.NotifyTimeout != 30*time.Second {
		t.Fatalf("[events]: journal %s, %+v", d.JournalPath("alpha"), d.Events)
	}
	// Where a node keeps its journal and whom it tells is its own: the
	// cluster's generation does not change.
	if d.Generation() != c.Generation() {
		t.Fatal("[events] changed the generation")
	}
}

// Every bad [events] value is an error naming its field and line.
func TestEventsErrors(t *testing.T) {
	for _, tc := range []struct {
		add, field, msg string
	}{
		{"journal = \"\"\n", "events.journal", "the journal path is empty"},
		{"journal = \"events.jsonl\"\n", "events.journal", "is not an absolute path"},
		{"notify = []\n", "events.notify", "the notify command is empty"},
		{"notify = [\"page\"]\n", "events.notify", "without a shell and without PATH"},
		{"notify = [\"/bin/page\", \"a\\u001bb\"]\n", "events.notify[1]", "control character"},
		{"notify_timeout = \"100ms\"\n", "events.notify_timeout", "out of range"},
		{"notify_timeout = \"10\"\n", "events.notify_timeout", "not a duration"},
		{"notfy = [\"/bin/page\"]\n", "events.notfy", "notify"},
	} {
		_, err := Parse("cluster.toml", []byte(base+"\n[events]\n"+tc.add))
		var errs *Errors
		if !errors.As(err, &errs) || len(errs.List) != 1 {
			t.Errorf("%q: want one error, got %v", tc.add, err)
			continue
		}
		fe := errs.List[0]
		line := strings.Count(base, "\n") + 3
		if fe.Field != tc.field || !strings.Contains(fe.Error(), tc.msg) || fe.Line != line {
			t.Errorf("%q: got %s (field %s, line %d); want field %s, line %d, %q", tc.add, fe.Error(), fe.Field, fe.Line, tc.field, line, tc.msg)
		}
	}
}
