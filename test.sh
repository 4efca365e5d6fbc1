#!/usr/bin/env bash
# test.sh — every test: go vet, unit tests with the race detector, and (as
# root) the end-to-end failover tests in network namespaces.
set -u -o pipefail
cd "$(dirname "$0")"
export PATH=$PATH:/usr/local/go/bin
bash scripts/deps.sh || exit 1
status=0
echo "== gofmt"
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then echo "not gofmt'ed: $unformatted"; status=1; fi
echo "== go vet"
go vet ./... || status=1
echo "== go test -race"
log=$(mktemp)
if ! go test -race -count=1 ./... 2>&1 | tee "$log"; then
	# Tell a flaky test from a broken one: run the failed tests again, once,
	# and say loudly which ones failed the first time.
	failed=$(sed -n 's/^--- FAIL: \([A-Za-z0-9_]*\).*/\1/p' "$log" | sort -u | paste -sd'|')
	if [ -n "$failed" ]; then
		echo "== go test: FAILED the first time: $failed; running those once more"
		go test -race -count=1 -run "^($failed)\$" -v . || status=1
	else
		status=1
	fi
fi
rm -f "$log"
echo "== simulation: the pair (10,000 seeded fault schedules) and the pool (3,000), each with its mutation table (no race detector)"
go test -count=1 -run '^TestSimulation' -v . 2>&1 | grep -E '^(=== RUN|--- |ok|FAIL|PASS)|schedules|caught by|seed [0-9]+:' || status=1
echo "== fuzz: every parser of bytes from the wire, a few seconds each (seed corpus in testdata/fuzz)"
for target in FuzzSIPAnswer FuzzICMPQuote FuzzARPFrame FuzzNDPFrame FuzzPeerMessage; do
	go test -run '^$' -fuzz "^$target\$" -fuzztime "${FUZZTIME:-5s}" . 2>&1 | tail -n 3 || status=1
done
echo "== namespace end-to-end tests"
./netns_test.sh || status=1
echo "== container test (Docker Engine, FROM scratch images)"
./container_test.sh || status=1
echo "== Debian package: build, lintian, install, upgrade over an edited conffile (scratch root)"
bash packaging/test-deb.sh || status=1
exit $status
