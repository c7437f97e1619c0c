#!/usr/bin/env bash
# Rebuild docs/capacity/*.json and *.png: `circinus capacity` on the bundled examples, then the
# tables of README.md and docs/capacity.md from the JSON (scripts/capacity_tables.py).
# Takes minutes per example on two cores; run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
run() {
    local name=$1
    shift
    # Exit 3 (the goodput not reached) still writes the answer, which the tables then show.
    nice -n 19 circinus capacity "examples/$name.yaml" "$@" \
        --json "docs/capacity/$name.json" --plot "docs/capacity/$name.png" || [ $? -eq 3 ]
}
run edge-cloud-vision --goodput 0.9
run meeting-companion --goodput 0.6
# The same vision world with a catalog of new devices (no re-plan: the table shows '–' there).
nice -n 19 circinus capacity examples/edge-cloud-vision.yaml --goodput 0.9 --no-verify \
    --catalog examples/edge-cloud-vision-catalog.yaml \
    --json docs/capacity/edge-cloud-vision-catalog.json || [ $? -eq 3 ]
python scripts/capacity_tables.py
