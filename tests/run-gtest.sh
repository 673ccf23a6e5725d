#!/bin/sh
# run-gtest.sh - run a googletest binary and end with one summary line,
# "tests: N passed, M failed[, K skipped]", exiting with the binary's status
# (or 1 if the counts show a failure the status hid).
# usage: tests/run-gtest.sh BINARY [gtest args...]
#
# googletest 1.12 ends its output with count lines; with --gtest_brief=1:
#   [  PASSED  ] 5 tests.
#   [  SKIPPED ] 2 tests.          (only when some were skipped)
# and without it:
#   [  PASSED  ] 5 tests.
#   [  SKIPPED ] 2 tests, listed below:
#   [  FAILED  ] 1 test, listed below:
# ("1 test" in the singular).  A skipped test (GTEST_SKIP: no IPv6, not
# root) is neither passed nor failed, so it must not turn the run red.
log=$(mktemp /tmp/kvs-gtest-XXXXXX)
{ "$@" 2>&1; echo $? > "$log.rc"; } | tee "$log"
rc=$(cat "$log.rc")
count() {
  # The last "[  <tag> ] N test(s)." or "... N test(s), listed below:"
  # line; per-test lines ("[  SKIPPED ] Suite.Name (0 ms)") never start
  # with a digit, since a test name cannot.
  sed -n "s/^\[  $1 \] \([0-9][0-9]*\) tests\{0,1\}[.,].*/\1/p" "$log" | tail -n 1
}
passed=$(count 'PASSED ')
skipped=$(count 'SKIPPED')
ran=$(sed -n 's/^\[==========\] \([0-9]*\) tests\{0,1\} from .* ran\..*/\1/p' "$log" | tail -n 1)
: "${passed:=0}" "${skipped:=0}"
# --gtest_brief=1 prints no "N tests, listed below" line for failures:
# whatever ran and neither passed nor was skipped failed.
failed=$(( ${ran:-0} - passed - skipped ))
if [ -z "$ran" ]; then
  echo "run-gtest: the test binary did not finish (crash or sanitizer abort)" >&2
  failed=$((failed + 1)); rc=1
elif [ "$failed" -ne 0 ] || [ $((passed + skipped)) -eq 0 ]; then
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
