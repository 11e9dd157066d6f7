package sim

// knownLiveness lists, per fault kind (and "mixed" for histories that drew
// several), the seeds of the 2000-seed suite whose histories break a
// survivor-liveness property on the current quorum core. They are open
// defects, analysed in docs/liveness-findings.md, not accepted behaviour:
// TestLiveness fails when any other seed breaks a property (a regression)
// and when a listed seed no longer does (a fix: remove it from the list),
// so the list only ever shrinks.
var knownLiveness = map[string][]int64{
	"babble":       {25, 76, 416, 499, 908, 937, 1052, 1233, 1426, 1563, 1836, 1941},
	"deaf":         {1926},
	"disk-fail":    {433},
	"disk-hang":    {1363, 1737},
	"disk-slow":    {828, 829, 1587},
	"flap":         {249, 1123, 1495, 1996},
	"loss":         {858, 1221},
	"mixed":        {12, 18, 21, 30, 34, 59, 64, 65, 68, 78, 91, 128, 169, 240, 244, 250, 264, 281, 282, 292, 375, 426, 439, 444, 461, 466, 481, 511, 550, 576, 598, 675, 728, 737, 769, 772, 824, 843, 849, 856, 875, 881, 883, 922, 923, 925, 929, 952, 979, 985, 992, 1011, 1028, 1031, 1104, 1116, 1120, 1147, 1159, 1231, 1235, 1248, 1270, 1281, 1291, 1293, 1314, 1316, 1370, 1413, 1431, 1445, 1458, 1475, 1482, 1491, 1524, 1547, 1574, 1610, 1627, 1638, 1652, 1653, 1654, 1663, 1692, 1714, 1726, 1777, 1826, 1828, 1834, 1902, 1906, 1937, 1942, 1957, 1968, 1992},
	"mute":         {1324},
	"one-way-long": {534},
	"partition":    {734, 811},
	"pause":        {672},
	"vm-freeze":    {194},
}
