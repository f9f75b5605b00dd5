# shellcheck shell=bash
# lib.sh - the small harness the shell tests share (sourced, not run).
# The sourcing script sets T (its scratch folder) before calling these;
# it prints "NAME: $pass passed, $fail failed" at the end itself.
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# expect_err CODE PATTERN DESCRIPTION -- command...: the exit code, and a
# one-line message on stderr that contains PATTERN (stdin from /dev/null)
expect_err() {
    local code=$1 pat=$2 what=$3; shift 4
    "$@" >"$T/out" 2>"$T/err" </dev/null; local rc=$?
    if [ "$rc" != "$code" ]; then bad "$what: exit $rc, want $code: $(head -c 300 "$T/err")"; return; fi
    if ! grep -q -- "$pat" "$T/err"; then bad "$what: message lacks '$pat': $(head -c 300 "$T/err")"; return; fi
    if [ "$(grep -c . "$T/err")" != 1 ]; then bad "$what: error is not one line: $(cat "$T/err")"; return; fi
    ok
}
