package sim

// knownLiveness lists, per fault kind (and "mixed" for histories that drew
// several), the seeds of the 2000-seed suite whose histories break a
// survivor-liveness property on the current quorum core. They are open
// defects, analysed in docs/liveness-findings.md, not accepted behaviour:
// TestLiveness fails when any other seed breaks a property (a regression)
// and when a listed seed no longer does (a fix: remove it from the list).
// A seed is added only with its analysis, when a fix elsewhere changed its
// history into another known mechanism (mixed 493, 1482: A6; one-way-long
// 1346 and mixed 504: A3, after the member-set hold of A5).
var knownLiveness = map[string][]int64{
	"mixed":        {34, 62, 128, 493, 504, 1147, 1158, 1316, 1482, 1522, 1653},
	"one-way-long": {1346},
}
