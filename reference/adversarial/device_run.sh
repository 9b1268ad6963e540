#!/bin/bash
# reservoir-scan on a GPU in one device call of BUDGET seconds (the machine's start comes on top):
#
#     OUT=folder bash reference/adversarial/device_run.sh
#
# The adversarial suite's rows about how a call's end is seen first (side_stream, no_sync, then
# honest_two_streams, async_copy, forged_done_event, then honest_long_kernel, forged_started_event; run.py
# runs honest_reference before each group), then as many runs of the reference solution through
# reference/calibrate.py as fit in BUDGET seconds (default 400; on the H100 on 2026-12-06 each scoring run
# took about 20 s and the three groups 224 s, so 400 s leaves room for 7 reference runs). Each result is
# written under $OUT as it comes (suite.log, machine.json, table1.md to table3.md, calib.log), so a run cut
# short keeps what it has; calibrate.py's summary line is missing when the budget ends its runs.
cd "$(dirname "$0")/../.."
export PYTHONUNBUFFERED=1 REBENCH_ADVERSARIAL_VERBOSE=1
BUDGET=${BUDGET:-400}
T0=$(date +%s)
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
date -u > "$OUT/suite.log"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,temperature.gpu,power.draw --format=csv >> "$OUT/suite.log" 2>&1
python3 reference/device_check.py machine > "$OUT/machine.json" 2>&1
step() {  # step NAME ARGS...: runs the suite on those solutions (with honest_reference first) if time is left
  local name=$1; shift
  local t; t=$(left)
  if [ "$t" -lt 20 ]; then echo "== $name: skipped, $t s left" >> "$OUT/suite.log"; return; fi
  echo "== $name ($t s left)" >> "$OUT/suite.log"
  timeout "$t" python3 reference/adversarial/run.py reservoir-scan --only "$@" --out "$OUT/$name.md" >> "$OUT/suite.log" 2>&1
  echo "== $name: exit $? at $(( $(date +%s) - T0 )) s" >> "$OUT/suite.log"
}
step table1 side_stream,no_sync
step table2 honest_two_streams,async_copy,forged_done_event
step table3 honest_long_kernel,forged_started_event
t=$(left)
if [ "$t" -ge 20 ]; then
  timeout "$t" python3 reference/calibrate.py environments/reservoir-scan reference/reservoir-scan 10 --time-scores > "$OUT/calib.log" 2>&1
fi
echo "== end at $(( $(date +%s) - T0 )) s" >> "$OUT/suite.log"
grep -E "^(honest|side|no_sync|async|forged|==)|^run " "$OUT/suite.log" "$OUT/calib.log" 2>/dev/null | cut -c1-400
