#!/usr/bin/env bash
# Run every benchmark in --quick mode under ./pants (as the READMEs name them) and check that each
# ends with one JSON object holding its expected keys. Timings are never checked: this proves the
# benchmarks still run, so they cannot rot unnoticed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

check() {  # check NAME KEYS... < output
  python3 -c '
import json, sys
name, keys = sys.argv[1], sys.argv[2:]
lines = [l for l in sys.stdin.read().splitlines() if l.strip()]
try:
    result = json.loads(lines[-1])
except (IndexError, ValueError):
    sys.exit(f"{name}: the last line is not a JSON object")
missing = [k for k in keys if k not in result]
if not isinstance(result, dict) or missing:
    sys.exit(f"{name}: the JSON line lacks {missing}")
print(f"{name}: ok ({len(result)} figures)")
' "$@"
}

run() {  # run NAME TARGET KEYS...
  local name=$1 target=$2 out
  shift 2
  out=$(mktemp)
  echo "--- $name: ./pants run $target -- --quick"
  if ! ./pants run "$target" -- --quick >"$out" 2>"$out.err"; then
    tail -20 "$out.err" >&2
    echo "$name: the benchmark failed" >&2
    return 1
  fi
  check "$name" "$@" <"$out"
}

status=0
run producer services/producer/benchmarks/bench_producer.py naive_rps ceiling_rps producer_rps || status=1
run catalog-manager services/catalog-manager/benchmarks/bench_register.py partitions one_by_one_s batched_s speedup || status=1
run metrics-api services/metrics-api/benchmarks/bench_api.py uncached_24h_1m_p50_ms cached_req_per_s bytes_ratio || status=1
run alerts services/metrics-api/benchmarks:bench_alerts fire_latency_p50_s fire_latency_p95_s resolve_latency_p50_s resolve_latency_p95_s fire_beyond_persistence_p95_s outages cycle_s_1000_areas cycle_s_baseline || status=1
run stream-processor services/stream-processor/benchmarks:bench drain_rps job_rps ratio scaling_1_to_2 driver_rss_mb_by_batch driver_bytes_per_batch fresh_p95_s fresh_p95_s_trigger5 late_dropped rocksdb_state_mb hdfs_state_mb || status=1
run histogram-layout services/stream-processor/benchmarks:histogram_layout events signal_strength_by_operator coverage_by_postal_code || status=1
run dashboard services/dashboard/benchmarks:bench api_fresh_p95_s dashboard_fresh_p95_s time_to_first_chart_s || status=1
run compaction tests/integration/benchmarks:compaction files_per_table_hour_after bytes_ratio_vs_raw_columns q30d_1h_ms_before q30d_1h_ms_after || status=1
exit "$status"
