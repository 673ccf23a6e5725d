#!/bin/sh
# run-gtest.sh - run a googletest binary and end with one summary line,
# "tests: N passed, M failed", exiting with the binary's status.
# usage: tests/run-gtest.sh BINARY [gtest args...]
log=$(mktemp /tmp/kvs-gtest-XXXXXX)
"$@" 2>&1 | tee "$log"
rc=0
# The pipeline hides the binary's status; recover it from gtest's own lines.
passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\{0,1\}\..*/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) tests\{0,1\}, listed below.*/\1/p' "$log" | tail -n 1)
ran=$(sed -n 's/^\[==========\] \([0-9]*\) tests\{0,1\} from .* ran\..*/\1/p' "$log" | tail -n 1)
: "${passed:=0}" "${failed:=0}"
if [ -z "$ran" ]; then
  echo "run-gtest: the test binary did not finish (crash or sanitizer abort)" >&2
  failed=$((failed + 1)); rc=1
elif [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  rc=1
fi
rm -f "$log"
echo "tests: $passed passed, $failed failed"
exit $rc
