// Package config loads and checks an MT-Cluster cluster configuration: one
// TOML file, identical on every node, that names the cluster, its nodes,
// heartbeat networks, quorum disk, watchdog and timing bases.
//
// Load and Parse decode the file strictly: an unknown key, a repeated key
// or table, a value of the wrong type or an impossible value is an error,
// never ignored. Every problem is reported at once as an *Errors, one
// *FieldError per problem with the file name, line, column, the field's
// path (such as "node[2].addresses.lan") and what to do; the sentinel
// errors (ErrUnknownKey, ErrDuplicate, ...) classify them for errors.Is.
// The only exception: after a TOML syntax error, a repeated key or a type
// error the file cannot be decoded further, so that one error is returned
// alone.
//
// Defaults (timing bases, watchdog mode and device, votes) are applied
// only to keys absent from the file, before validation; Validate never
// changes a value.
//
// Guarantees: a *Cluster returned by Load or Parse has 1 to MaxNodes nodes
// with unique names, ids and addresses, an address on every heartbeat
// network for every node, a quorum disk path for every node, a non-nil
// UUID, names and paths without control characters, and timing bases that
// satisfy Timing.Validate: each base in its range and every relation the
// quorum package's safety arguments rely on (timing_validate.go). Load
// reads only a regular file and never blocks opening one that is not.
//
// Not guaranteed: nothing here touches the machine. Load does not check
// that the key file, the quorum disk or the watchdog device exist, that the
// addresses belong to this host, or that other nodes hold the same file;
// the daemon checks those when it starts (and `mtc check` reports what it
// can see).
package config
