#!/usr/bin/env bash
# soak-loss.sh — the packet-loss soak: a hot-standby pair with 10 % loss each
# way on both boxes and the client, for SOAK_SECONDS (default 600), then the
# number of false flips (takeovers and releases; the target is 0).
#   sudo ./scripts/soak-loss.sh            10 minutes
#   sudo SOAK_SECONDS=3600 ./scripts/soak-loss.sh
cd "$(dirname "$0")/.." || exit 1
LOSS_SECONDS=${SOAK_SECONDS:-600} exec ./netns_test.sh loss_does_not_flip
