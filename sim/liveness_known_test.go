package sim

// knownLiveness lists, per fault kind (and "mixed" for histories that drew
// several), the seeds of the 2000-seed suite whose histories break a
// survivor-liveness property on the current quorum core. They are open
// defects, analysed in docs/liveness-findings.md, not accepted behaviour:
// TestLiveness fails when any other seed breaks a property (a regression)
// and when a listed seed no longer does (a fix: remove it from the list).
// A seed is added only with its analysis, when a fix elsewhere changed its
// history into another known mechanism (mixed 493, 1482: A6; one-way-long
// 1346: A3, after the member-set hold of A5), or when the checker judges a
// window it used to skip (the previous window's C stays judged across a
// pattern change: vm-freeze 55 and mixed 220, A11; mixed 1848, A1 with
// three nodes; mixed 1005, a member set that keeps a node outside C for one
// of C, not traced further), or when a change to the core moved a
// history into a known mechanism (mixed 1991: the deaf node's stop comes
// later under the hold of heldByPeers, and a survivor whose member set
// wandered on stale rows, A3, no longer converges in time; see A13), or
// when the half weight of a drop of a peer still heard both ways (A14)
// changed a history at the first drop it weighs differently: mixed 925
// (a flapping link's end is re-admitted between flaps after a hold-down
// one step shorter, and the checker, with two connected majorities, finds
// no departure outside C to excuse the agreement round it costs) and 1887
// (A3 under a partition and a flapping link).
var knownLiveness = map[string][]int64{
	"mixed":        {34, 62, 64, 220, 493, 925, 1316, 1887, 1991},
	"one-way-long": {1346},
	"vm-freeze":    {55},
}
