// Package timing holds the four timing bases of a cluster (heartbeat
// interval, I/O timeout, failure timeout, watchdog timeout), the timeouts
// derived from them (Derive), and the validation of every range and
// relation the quorum core's safety and liveness arguments rely on
// (Validate). It depends on the standard library alone, so the decision
// core (package quorum) takes its timeouts from here without depending on
// the rest of the configuration. Package config re-exports these names and
// reads the bases from the cluster file.
package timing
