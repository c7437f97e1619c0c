#!/usr/bin/env bash
# `circinus bench search` over the bundled examples and generated worlds, one process per world,
# at most $STREAMS at a time, merged into one report (docs/bench/search-seed0.json and .txt, or
# $OUT.json / $OUT.txt). Each world's methods run one after another in its process, so the
# ratios within a world are measured back to back; the load column says what else ran.
# Usage: scripts/bench_search.sh [world.yaml ... | gen-N ...]
#   (default: tiny, jellybean-vqa, edge-cloud-vision, meeting-companion, gen-100, gen-1000,
#   gen-10000)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-docs/bench/search-seed0}
streams=${STREAMS:-2}
seed=${SEED:-0}
worlds=("$@")
[[ ${#worlds[@]} -gt 0 ]] || worlds=(examples/tiny.yaml examples/jellybean-vqa.yaml
  examples/edge-cloud-vision.yaml examples/meeting-companion.yaml gen-100 gen-1000 gen-10000)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {  # one world: its report and its tables in $tmp
  local w=$1 name
  if [[ $w == gen-* ]]; then
    name=$w
    circinus bench search --gen "${w#gen-}" --no-examples --seed "$seed" \
      --json "$tmp/$name.json" > "$tmp/$name.txt" 2> "$tmp/$name.err" || true
  else
    name=$(basename "$w" .yaml)
    circinus bench search --world "$w" --gen 0 --seed "$seed" \
      --json "$tmp/$name.json" > "$tmp/$name.txt" 2> "$tmp/$name.err" || true
  fi
  echo "$(date +%T) $name done ($(tail -n 1 "$tmp/$name.err" 2>/dev/null))"
}
for w in "${worlds[@]}"; do
  while (( $(jobs -rp | wc -l) >= streams )); do sleep 2; done
  run "$w" &
done
wait
python - "$tmp" "$out" "${worlds[@]}" <<'PY'
import json, pathlib, sys
tmp, out, worlds = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
names = [w if w.startswith("gen-") else pathlib.Path(w).stem for w in worlds]
merged, text = None, []
for name in names:
    path = tmp / f"{name}.json"
    if not path.exists():
        sys.exit(f"bench search on {name} wrote no report: {(tmp / f'{name}.err').read_text()}")
    data = json.loads(path.read_text())
    if merged is None:
        merged = data
    else:
        for key in ("records", "ratios", "single_query"):
            merged[key] += data[key]
    text.append((tmp / f"{name}.txt").read_text())
pathlib.Path(f"{out}.json").write_text(json.dumps(merged, indent=2) + "\n")
pathlib.Path(f"{out}.txt").write_text("\n".join(text))
print(f"merged {len(names)} worlds into {out}.json and {out}.txt")
PY
