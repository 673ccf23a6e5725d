#!/bin/sh
# run-gtest.sh - run a googletest binary and end with one summary line,
# "tests: N passed, M failed", exiting with the binary's status.
# usage: tests/run-gtest.sh BINARY [gtest args...]
log=$(mktemp /tmp/kvs-gtest-XXXXXX)
{ "$@" 2>&1; echo $? > "$log.rc"; } | tee "$log"
rc=$(cat "$log.rc")
passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\{0,1\}\..*/\1/p' "$log" | tail -n 1)
skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests\{0,1\}, listed below.*/\1/p' "$log" | tail -n 1)
ran=$(sed -n 's/^\[==========\] \([0-9]*\) tests\{0,1\} from .* ran\..*/\1/p' "$log" | tail -n 1)
: "${passed:=0}" "${skipped:=0}"
# --gtest_brief=1 prints no "N tests, listed below" line for failures:
# whatever ran and neither passed nor was skipped failed.
failed=$(( ${ran:-0} - passed - skipped ))
if [ -z "$ran" ]; then
  echo "run-gtest: the test binary did not finish (crash or sanitizer abort)" >&2
  failed=$((failed + 1)); rc=1
elif [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  rc=1
fi
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1  # the binary failed (e.g. a sanitizer report at exit)
fi
rm -f "$log" "$log.rc"
if [ "$skipped" -ne 0 ]; then
  echo "tests: $passed passed, $failed failed, $skipped skipped"
else
  echo "tests: $passed passed, $failed failed"
fi
exit $rc
