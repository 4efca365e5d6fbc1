package main

import (
	"testing"
)

// simMutationSeeds is how many seeds each broken rule gets to be caught;
// the search stops at the first. The rarest, a forced takeover kept for
// ever, needs a hang, a forced takeover, a partition and a primary serving
// again in one schedule: seed 10379 is its first.
const simMutationSeeds = 20000

// TestSimulationCatchesBrokenRules proves the simulator can fail: each rule
// of the pair, broken on purpose (mutation.go), must make some seed break a
// promise. A mutant no seed catches means the simulator does not look
// where that rule matters.
func TestSimulationCatchesBrokenRules(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("the mutation table needs up to 20,000 seeds: ./test.sh runs it without -race")
	}
	tests := []struct {
		name string
		m    mutant
	}{
		{"no hold-down after an own failure", mutantNoHoldDown},
		{"takeover without asking the wire who holds the VIP", mutantNoHolderCheck},
		{"split brain: the secondary keeps too", mutantBothKeep},
		{"the keeper does not point the foneBRIDGE back (defect 5)", mutantKeeperForgetsFonebridge},
		{"a stopped or restarted agent keeps the VIP in a conflict (defect 1)", mutantNoStallRule},
		{"a restart finishes a journalled takeover blind (defect 2)", mutantResumeBlind},
		{"a forced takeover keeps the VIP for ever (defect 1, partition variant)", mutantForcedForever},
		{"a primary whose own service failed asks for the service back again (defect 3)", mutantFailbackForever},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, _ := exploreSim(1, simMutationSeeds, simDefaults, tt.m)
			if r == nil {
				t.Fatalf("no seed of %d broke a promise with this rule broken: the simulator cannot see it", simMutationSeeds)
			}
			t.Logf("caught by seed %d: %s", r.seed, r.violation)
		})
	}
}
