#!/usr/bin/env bash
# Runs the workspace's tests N times in a row (default 20) and reports every run that failed,
# with the names of the tests that failed in it, so that a test which passes only most of the
# time shows up. Every run goes on to the end; the exit code is 1 if any run failed.
#
# Usage: scripts/flaky.sh [-n N] [--load] [-- extra cargo test arguments]
#   -n N     how many runs (default 20)
#   --load   keeps one core busy meanwhile, as a shared machine would
# Logs of failed runs are kept in a temporary directory, printed at the end.
set -u
cd "$(dirname "$0")/.."

runs=20
load=0
while [ $# -gt 0 ]; do
    case "$1" in
        -n) runs=${2:?-n needs a number}; shift 2 ;;
        --load) load=1; shift ;;
        --) shift; break ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$runs" in
    ''|*[!0-9]*|0) echo "-n needs a positive number, not '$runs'" >&2; exit 2 ;;
esac

if ! cargo test --workspace --no-run "$@" >/dev/null 2>&1; then
    echo "the tests do not build: run cargo test --workspace --no-run" >&2
    exit 2
fi

busy=""
if [ "$load" = 1 ]; then
    # Bounded, like everything else here: at most ten hours.
    ( end=$((SECONDS + 36000)); while [ $SECONDS -lt $end ]; do :; done ) &
    busy=$!
fi
logs=$(mktemp -d)
trap '[ -n "$busy" ] && kill "$busy" 2>/dev/null' EXIT

passed=0
failed=0
for i in $(seq 1 "$runs"); do
    start=$SECONDS
    log="$logs/run-$i.log"
    if cargo test --workspace "$@" >"$log" 2>&1; then
        passed=$((passed + 1))
        echo "run $i of $runs: passed in $((SECONDS - start)) s"
        rm -f "$log"
    else
        failed=$((failed + 1))
        echo "run $i of $runs: FAILED after $((SECONDS - start)) s (log: $log); failing tests:"
        grep -E '^test .* FAILED$|panicked at' "$log" | head -n 20 | sed 's/^/    /'
    fi
done

if [ "$failed" -gt 0 ]; then
    echo "tests that failed, with the number of runs they failed in:"
    cat "$logs"/run-*.log | grep -E '^test .* FAILED$' | sort | uniq -c | sort -rn | sed 's/^/    /'
else
    rmdir "$logs" 2>/dev/null
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
