#!/usr/bin/env bash
# make test's lab stage: Molecule's scenario and the local-lab tests (make local-lab-checks),
# run at the same time.
#
# Why at once: both spend their time waiting on calls (a ring time, a prompt, a parking
# time), not on the two cores; one after the other they would take most of make test's 25
# minutes. `make lab` runs first and alone; the local lab's tests then start, and Molecule's
# create, converge, idempotence and verify run beside them. The two labs share nothing but
# the apt cache's volume: `make lab` has just fetched every package through it, and the
# local tests that install again (make down && make lab, last of their run) come long after
# Molecule's converges, so the two caches never fetch at the same time.
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

make --no-print-directory local-lab-checks >"$local_log" 2>&1 &
local_tests=$!

for stage in destroy syntax create prepare converge idempotence verify; do
  molecule "$stage" --no-command-borders || { status=$?; echo "test-labs: molecule $stage failed (exit $status)"; break; }
done
wait "$local_tests" || { local_status=$?; [ "$status" -ne 0 ] || status=$local_status; }

echo "---- make local-lab-checks, run beside Molecule's scenario ----"
cat "$local_log"
exit "$status"
