# Test verdicts shared by e2e.sh and e2e-mirror.sh (sourced, not run): each prints one
# "ok   - NAME" or "FAIL - NAME" line and counts it in $pass / $fail.
pass=0 fail=0 failed_names=()
ok()   { pass=$((pass + 1)); echo "ok   - $1"; }
bad()  { fail=$((fail + 1)); failed_names+=("$1"); echo "FAIL - $1"; [ -n "${2:-}" ] && echo "$2" | sed 's/^/       /' | tail -n 25; }
# check NAME COMMAND...: the command must succeed.
check() { local name=$1; shift; local out; if out=$("$@" 2>&1); then ok "$name"; else bad "$name" "$out"; fi; }
# expect NAME REGEX COMMAND...: the command's output must match REGEX (exit status ignored).
expect() {
    local name=$1 re=$2; shift 2; local out; out=$("$@" 2>&1)
    if grep -Eq -- "$re" <<<"$out"; then ok "$name"; else bad "$name" "expected /$re/ in:"$'\n'"$out"; fi
}
# only_line FILE WANT: FILE holds exactly the line WANT (else print what it holds).
only_line() { [ "$(cat "$1")" = "$2" ] || { echo "got:"; cat "$1"; return 1; }; }
phase() { echo; echo "## $*"; }
want_phase() { [ -z "${E2E_PHASES:-}" ] || [[ " $E2E_PHASES " == *" $1 "* ]]; }
# jcheck PYEXPR COMMAND...: COMMAND prints JSON, bound to v; PYEXPR must be true.
jcheck() { local expr=$1; shift; "$@" | python3 -c 'import json,sys; v=json.load(sys.stdin); e=sys.argv[1]; r=eval(e); assert r, (e, v)' "$expr"; }
err_count() { # NAME: the counter's value in show errors (0 if absent)
    xc show errors --json | python3 -c 'import json,sys; v=json.load(sys.stdin); print({c["name"]: c["count"] for c in v["counters"]}.get(sys.argv[1], 0))' "$1"
}
wait_count() { # NAME MIN: up to 3 s for the counter to reach MIN
    for _ in $(seq 30); do [ "$(err_count "$1")" -ge "$2" ] && return 0; sleep 0.1; done
    echo "$1 = $(err_count "$1"), wanted >= $2"; return 1
}
