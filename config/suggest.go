package config

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// suggest returns the candidate closest to s when it is close enough to be
// a likely misspelling (at most a third of the letters differ, at least
// one allowed), else "".
func suggest(s string, candidates []string) string {
	best, bestDist := "", -1
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), c)
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	limit := max(1, len(s)/3)
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, counting an
// adjacent transposition as one edit (a common typing slip).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// describeKind names a TOML value kind for an operator.
func describeKind(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a number with a fraction"
	case unstable.Bool:
		return "a boolean"
	case unstable.Array:
		return "an array"
	case unstable.InlineTable, unstable.Table:
		return "a table"
	case unstable.ArrayTable:
		return "an array of tables"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "a date or time"
	}
	return "a " + k.String()
}

// examples shows, for keys whose type is easily got wrong, how the value is
// written.
var examples = map[string]string{
	"cluster.name":              `name = "payments"`,
	"cluster.uuid":              `uuid = "0b6e3a52-6c1f-4d8e-9a43-2f1c5d7e8b90"`,
	"cluster.key_file":          `key_file = "/etc/mtc/cluster.key"`,
	"cluster.packages_dir":      `packages_dir = "/etc/mtc/packages"`,
	"timing.heartbeat_interval": `heartbeat_interval = "200ms"`,
	"timing.io_timeout":         `io_timeout = "400ms"`,
	"timing.failure_timeout":    `failure_timeout = "1s"`,
	"timing.watchdog_timeout":   `watchdog_timeout = "3s"`,
	"watchdog.mode":             `mode = "device"`,
	"watchdog.device":           `device = "/dev/watchdog"`,
	"watchdog.allow_none":       `allow_none = false`,
	"quorum_disk":               `[quorum_disk] with path = "/dev/disk/by-id/..."`,
	"quorum_disk.path":          `path = "/dev/disk/by-id/wwn-0x600..."`,
	"network":                   `[[network]] tables, one per heartbeat network`,
	"network.name":              `name = "lan"`,
	"network.port":              `port = 5405`,
	"node":                      `[[node]] tables, one per server`,
	"node.name":                 `name = "alpha"`,
	"node.id":                   `id = 1`,
	"node.quorum_disk":          `quorum_disk = "/dev/sdb"`,
	"node.votes":                `votes = 1`,
	"node.addresses":            `a [node.addresses] table such as lan = "10.0.0.1"`,
	"node.addresses.*":          `lan = "10.0.0.1"`,
	"cluster":                   `a [cluster] table`,
	"timing":                    `a [timing] table`,
	"watchdog":                  `a [watchdog] table`,
	"events":                    `an [events] table`,
	"control":                   `a [control] table`,
	"control.port":              `port = 5410`,
	"events.journal":            `journal = "/var/lib/mtc/events.jsonl"`,
	"events.notify":             `notify = ["/usr/local/bin/page-oncall", "--cluster", "prod"]`,
	"events.notify_timeout":     `notify_timeout = "10s"`,
}

// exampleFor returns how the key at path (without indexes) is written.
func exampleFor(t reflect.Type, path string) string {
	if ex, ok := examples[path]; ok {
		return ex
	}
	if p := parentPath(path); p != "" {
		if ex, ok := examples[p+".*"]; ok {
			return ex
		}
	}
	return describeType(t)
}

// ownExample shows how the value the user wrote at field, of TOML kind
// found, is written in the type t the key expects, when the value can be
// read that way: port = "5406" becomes port = 5406, name = 42 becomes
// name = "42". It reports false when the value means nothing of type t;
// the caller then shows a fixed example.
func ownExample(t reflect.Type, field string, found unstable.Kind, data string) (string, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	parts := splitPath(field)
	key := quoteKey(parts[len(parts)-1])
	data = strings.TrimSpace(data)
	switch {
	case t == reflect.TypeOf(duration("")):
		if found == unstable.Integer || found == unstable.Float {
			return fmt.Sprintf("%s = \"%sms\" if %s milliseconds are meant: in quotes, with its unit (ms, s or m); a bare number is never read as a duration", key, data, data), true
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		if found == unstable.String {
			words := strings.Fields(data)
			for i, w := range words {
				words[i] = strconv.Quote(w)
			}
			return fmt.Sprintf("an array with one string per argument: %s = [%s] (commands are never run through a shell)", key, strings.Join(words, ", ")), true
		}
	case t.Kind() == reflect.String:
		if found == unstable.Integer || found == unstable.Float || found == unstable.Bool {
			return fmt.Sprintf("%s = %q", key, data), true
		}
	case t.Kind() == reflect.Int64 || t.Kind() == reflect.Int:
		switch found {
		case unstable.String:
			if n, err := strconv.ParseInt(data, 10, 64); err == nil {
				return fmt.Sprintf("%s = %d", key, n), true
			}
		case unstable.Float:
			if f, err := strconv.ParseFloat(strings.ReplaceAll(data, "_", ""), 64); err == nil && math.Abs(f) < 1<<53 {
				return fmt.Sprintf("%s = %d", key, int64(f)), true
			}
		}
	case t.Kind() == reflect.Bool:
		if found == unstable.String || found == unstable.Integer {
			switch strings.ToLower(data) {
			case "true", "yes", "on", "1":
				return key + " = true", true
			case "false", "no", "off", "0":
				return key + " = false", true
			}
		}
	}
	return "", false
}
