package main

// mutant names one rule of the pair broken on purpose. The simulator's
// mutation table (sim_mutation_test.go) runs the pair with each and must
// catch every one: a simulator that cannot fail proves nothing. Production
// agents never set it (mutantNone), and each broken rule is one branch
// beside the rule it breaks.
type mutant int

const (
	mutantNone mutant = iota
	// mutantNoHoldDown: a box whose own service failed may take over again
	// at once (the hold-down gone: both-broken pairs ping-pong).
	mutantNoHoldDown
	// mutantNoHolderCheck: a passive box takes over without asking the
	// wire who holds the VIP.
	mutantNoHolderCheck
	// mutantBothKeep: in a split brain the non-primary keeps the VIP too.
	mutantBothKeep
	// mutantKeeperForgetsFonebridge: the box that keeps the VIP after a
	// split brain does not run fonulator again.
	mutantKeeperForgetsFonebridge
	// mutantNoStallRule: an agent that did not run for a while (SIGSTOP,
	// restart) acts on the silence it did not measure and keeps the VIP
	// in a conflict (the split brain that never ended, issue 10).
	mutantNoStallRule
	// mutantResumeBlind: a flip restarted during a takeover finishes it
	// at once, with no silence, holder or tiebreaker check.
	mutantResumeBlind
	// mutantForcedForever: a box that took over past a hung holder keeps
	// the VIP in every later conflict, also against that holder's agent
	// once it acts again.
	mutantForcedForever
	// mutantFailbackForever: a primary whose own service failed asks for
	// the service back after every hold-down (defect 3, issue 10).
	mutantFailbackForever
	// mutantTermCutsPhases: SIGTERM cancels the step under way and the
	// rollback's stops (defect 4, issue 10).
	mutantTermCutsPhases
	// mutantNoHeartbeatRule: the silence of the holder's heartbeats is
	// ignored; a hung holder is waited for FLIP_HOLDER_WAIT (issue 11).
	mutantNoHeartbeatRule
	// mutantPoolIgnoresDeadline: in pool mode the leader keeps the VIPs
	// past its lease deadline, and a leader takes over without a lease it
	// can prove (issue 14).
	mutantPoolIgnoresDeadline
	// mutantPoolNeverCampaigns: in pool mode a passive box never stands
	// for the election, so a dead leader is never replaced.
	mutantPoolNeverCampaigns
	// mutantPoolResignRace: a box that told its arbiter to stand down
	// keeps its win until etcd says it resigned, and may take over on the
	// election it is giving back (found by the pool simulator).
	mutantPoolResignRace
	// mutantPoolOrphanKey: a campaign called off while its put was out
	// keeps its lease alive, so a key that nobody campaigns for may lead
	// for ever (found by the pool simulator).
	mutantPoolOrphanKey
)
