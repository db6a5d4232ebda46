//go:build !race

package approvals

// raceEnabled reports whether the race detector is on; measurement-only
// tests skip under it because it slows them tenfold and checks nothing new.
const raceEnabled = false
