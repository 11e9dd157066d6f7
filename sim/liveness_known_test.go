package sim

// knownLiveness lists, per fault kind (and "mixed" for histories that drew
// several), the seeds of the 2000-seed suite whose histories break a
// survivor-liveness property on the current quorum core. They are open
// defects, analysed in docs/liveness-findings.md, not accepted behaviour:
// TestLiveness fails when any other seed breaks a property (a regression)
// and when a listed seed no longer does (a fix: remove it from the list).
// A seed is added only with its analysis, when a fix elsewhere changed its
// history into another known mechanism (partition 594: docs/
// liveness-findings.md, A5; mixed 493, 1127, 1482, 1485: A6).
var knownLiveness = map[string][]int64{
	"mixed":     {34, 62, 128, 493, 1127, 1147, 1158, 1316, 1482, 1485, 1522, 1653},
	"partition": {594},
}
