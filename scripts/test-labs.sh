#!/usr/bin/env bash
# make test's lab stage: Molecule's scenario and the local-lab tests (make local-lab-test),
# run so that the local lab's tests overlap Molecule's verify.
#
# Why at once: both stages spend their time waiting on calls (a ring time, a prompt, a
# voicemail's silence), not on the two cores; run one after the other they took 22 of
# make test's 25 minutes. The CPU-heavy parts still run alone: `make lab` first, then
# Molecule's create, converge and idempotence; only then do the local lab's tests start
# beside Molecule's verify. The two labs share nothing but the apt cache's volume, which
# Molecule's cache no longer writes once its converges are done (lists stay fresh for a day).
#
# Molecule's lab and the local lab are removed whatever happens; the exit status is the
# first failure's. The local lab's output is printed after Molecule's, in one piece, so each
# pytest run ends with its own summary line (.ci/run adds them up).
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
local_log=$(mktemp)
cleanup() {
  molecule destroy --no-command-borders || true
  make --no-print-directory wipe || true
  rm -f "$local_log"
}
trap cleanup EXIT

step() { "$@" || { status=$?; echo "test-labs: '$*' failed (exit $status)"; exit "$status"; }; }

step make --no-print-directory local-lab-free
step make --no-print-directory lab
for stage in destroy syntax create prepare converge idempotence; do
  step molecule "$stage" --no-command-borders
done

make --no-print-directory local-lab-checks >"$local_log" 2>&1 &
local_tests=$!

molecule verify --no-command-borders || status=$?
wait "$local_tests" || { local_status=$?; [ "$status" -ne 0 ] || status=$local_status; }

echo "---- make local-lab-checks, run beside Molecule's verify ----"
cat "$local_log"
exit "$status"
