#!/usr/bin/env bash
# Serve both executable worlds on Ray Serve (local emulated cluster) before and after calibration:
# plan and serve; calibrate with the probe, plan and serve again; calibrate from what that
# serve measured (--from), plan and serve that plan for a shorter refit run; calibrate from the
# two served runs together (each of its own plan: where the re-plan moved stages to another
# tier, the two runs call the tiers in other proportions, which is what tells the per-tier
# figures apart), plan and serve again. Writes into docs/serving/ (or $OUT): per world the
# plans, the results and the calibrated worlds (PROBE_SCALE: the probe's share of the plan's
# rates). Needs the ray and examples extras; on 2 cores 34 minutes for digits and 20 for OCR with
# every phase (less when the uncalibrated run is kept), about 14 per world with JUDGE_ONLY.
#   DURATION  seconds each plan is served (240: a query's p95 read off ~400 requests, about
#             7 % sampling error, where 150 s gave ~250 and 9 %)
#   REFIT     seconds of the refit run (120: it is pooled with the probe plan's run)
#   PROBE     seconds of the probe;  PROBE_SCALE  its share of the plan's rates
#   KEEP_BEFORE=1  keep $OUT's uncalibrated run when the plan made now is the same plan
#             (nothing of it depends on calibration)
# The judged plan (the last) is served JUDGE_RUNS times (3), each on a fresh cluster, with seeds
# JUDGE_SEED (11), 12, 13: none of them a seed of the runs the calibration was fitted to, so it
# is judged on arrivals and inputs the fit has not seen, and each query's percentile is read off
# the runs' requests together (whole runs of one plan differ by more than their requests'
# sampling error; one run's figure says as much about that run as about the plan). The protocol
# is fixed here, before any run: every run is kept and reported.
#   JUDGE_ONLY=1  serve only the judged plan, $OUT/<world>-plan-served.json on the calibrated
#             world $OUT/<world>-served.yaml, as committed (the calibration is not fitted again)
# Usage: scripts/serve_measure.sh [world ...]   (default: both -serve worlds of examples/)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-docs/serving}
duration=${DURATION:-240}
refit=${REFIT:-120}
probe=${PROBE:-60}
# the probe runs at half the plan's rates: the plan made without any runtime figures admits
# what the engine cannot keep up with on 2 cores, and a probe of a queue measures the queue
probe_scale=${PROBE_SCALE:-0.5}
judge_runs=${JUDGE_RUNS:-3}
judge_seed=${JUDGE_SEED:-11}
mkdir -p "$out"
worlds=("$@")
[[ ${#worlds[@]} -gt 0 ]] || worlds=(digits-edge-cloud-serve ocr-branches-serve)
judge() {  # the judged plan of world $1 on its calibrated world $2
  circinus serve "$2" "$out/$1-plan-served.json" --duration "$duration" \
    --seed "$judge_seed" --runs "$judge_runs" --json "$out/$1-served.json" -q
}
for w in "${worlds[@]}"; do
  if [[ ${JUDGE_ONLY:-0} == 1 ]]; then
    judge "$w" "$out/$w-served.yaml"
    continue
  fi
  tmp=$(mktemp -d)
  # the world as committed, without a runtime section: the "before" predictions
  python - "examples/$w.yaml" "$tmp/world.yaml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
open(sys.argv[2], "w").write(re.sub(r"(?m)^runtime:.*\n(?:[ \t]+.*\n|\n)*", "", text))
PY
  circinus plan "$tmp/world.yaml" --json "$tmp/plan-before.json" -q
  if [[ ${KEEP_BEFORE:-0} == 1 && -f $out/$w-before.json ]] && python - \
      "$tmp/plan-before.json" "$out/$w-plan-before.json" <<'PY'
import json, sys
new, old = (json.load(open(p)) for p in sys.argv[1:])
same = all(new.get(k) == old.get(k) for k in ("queries", "deployments"))
sys.exit(0 if same else 1)
PY
  then
    echo "$w: the uncalibrated plan is unchanged; its run in $out is kept"
  else
    cp "$tmp/plan-before.json" "$out/$w-plan-before.json"
    circinus serve "$tmp/world.yaml" "$out/$w-plan-before.json" --duration "$duration" \
      --json "$out/$w-before.json" -q
  fi
  # the engine's overhead alone (the probe), then planned and served again
  circinus calibrate "$tmp/world.yaml" "$out/$w-plan-before.json" --duration "$probe" \
    --rate-scale "$probe_scale" --write
  circinus plan "$tmp/world.yaml" --json "$out/$w-plan-probe.json" -q
  circinus serve "$tmp/world.yaml" "$out/$w-plan-probe.json" --duration "$duration" \
    --json "$out/$w-probe.json" -q
  cp "$tmp/world.yaml" "$out/$w-probe.yaml"
  # what serving that plan took beyond its prediction, then planned and served again (seed 2)
  circinus calibrate "$tmp/world.yaml" "$out/$w-plan-probe.json" \
    --from "$out/$w-probe.json" --write
  circinus plan "$tmp/world.yaml" --json "$out/$w-plan-refit.json" -q
  circinus serve "$tmp/world.yaml" "$out/$w-plan-refit.json" --duration "$refit" \
    --seed 2 --json "$out/$w-refit.json" -q
  # both served runs together, each on top of its own plan's predictions
  circinus calibrate "$tmp/world.yaml" "$out/$w-plan-refit.json" \
    --from "$out/$w-refit.json" --from "$out/$w-probe.json=$out/$w-plan-probe.json" --write
  circinus plan "$tmp/world.yaml" --json "$out/$w-plan-served.json" -q
  cp "$tmp/world.yaml" "$out/$w-served.yaml"
  judge "$w" "$out/$w-served.yaml"
  rm -r "$tmp"
done
