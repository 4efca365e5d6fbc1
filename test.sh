#!/usr/bin/env bash
# test.sh — every test: go vet, unit tests with the race detector, and (as
# root) the end-to-end failover tests in network namespaces.
set -u
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
go test -race -count=1 ./... || status=1
echo "== namespace end-to-end tests"
./netns_test.sh || status=1
echo "== container test (Docker Engine, FROM scratch images)"
./container_test.sh || status=1
exit $status
