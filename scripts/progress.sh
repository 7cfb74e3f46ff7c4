# Sourced by the quick start: run_step LABEL CMD... runs one long step with its output in
# .quickstart-logs/LABEL.log, prints "LABEL: still running (Ns)" every 15 s so a silent
# `npm ci` (70-90 s on a fresh host) never looks hung, then "LABEL: done in Ns"; on failure
# the log's tail and its path, and the step's exit code.
_wa_logs="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.quickstart-logs"
run_step() {
  local label=$1 start=$SECONDS rc=0 log pid
  shift
  mkdir -p "$_wa_logs"
  log="$_wa_logs/$label.log"
  echo "quickstart: $label ..." >&2
  "$@" >"$log" 2>&1 &
  pid=$!
  while ! wait_for "$pid" 15; do
    echo "quickstart: $label: still running ($((SECONDS - start))s; log ${log#"$PWD"/})" >&2
  done
  wait "$pid" || rc=$?
  if ((rc != 0)); then
    tail -n 30 "$log" >&2
    echo "quickstart: $label failed (exit $rc) after $((SECONDS - start))s; full log: $log" >&2
    return "$rc"
  fi
  # the step's own summary lines (skips, versions) stay visible
  grep -E '^(setup-host|setup-node|build-deps: deps|build|npm-ci|tsc|addon)[-:a-z]*: ' "$log" | grep -v 'still' >&2 || true
  echo "quickstart: $label: done in $((SECONDS - start))s" >&2
}
wait_for() {  # wait_for PID SECONDS: 0 when PID ended within SECONDS
  local i
  for ((i = 0; i < $2 * 5; i++)); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.2
  done
  ! kill -0 "$1" 2>/dev/null
}
