package config

import "github.com/mtcluster/mtc/config/timing"

// The timing bases, their derived timeouts and the relations between them
// live in package config/timing, which depends on nothing but the standard
// library, so the decision core (package quorum) can take the derived
// timeouts without depending on the rest of the configuration (package
// files, and through them the package runner's OS edges). These names keep
// the configuration's one vocabulary.
type (
	// Timing holds the four timing bases (see timing.Timing).
	Timing = timing.Timing
	// Derived are the timeouts computed from the bases (see timing.Derived).
	Derived = timing.Derived
	// TimingError is a violated range or relation of the timing bases.
	TimingError = timing.TimingError
	// TimingFix is a value of one field that satisfies a violated rule.
	TimingFix = timing.TimingFix
)

// Timing constants (see package config/timing).
const (
	DefaultHeartbeatInterval = timing.DefaultHeartbeatInterval
	DefaultIOTimeout         = timing.DefaultIOTimeout
	DefaultFailureTimeout    = timing.DefaultFailureTimeout
	DefaultWatchdogTimeout   = timing.DefaultWatchdogTimeout
	MaxClockDrift            = timing.MaxClockDrift
	MaxFailureHeartbeats     = timing.MaxFailureHeartbeats
	MinHeartbeatInterval     = timing.MinHeartbeatInterval
	MinIOTimeout             = timing.MinIOTimeout
	MinFailureTimeout        = timing.MinFailureTimeout
	MinWatchdogTimeout       = timing.MinWatchdogTimeout
	MaxWatchdogTimeout       = timing.MaxWatchdogTimeout
	DiskIOsPerRound          = timing.DiskIOsPerRound
)

// DefaultTiming returns the default timing bases.
func DefaultTiming() Timing { return timing.DefaultTiming() }

// AggressiveTiming is the documented low-latency profile.
func AggressiveTiming() Timing { return timing.AggressiveTiming() }
