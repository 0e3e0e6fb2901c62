#!/usr/bin/env bash
# checkov 3 (an IaC scanner independent of cdk-nag) over every template the CDK app synthesizes.
# Usage: bash deploy/aws/checkov.sh [OUTDIR]   (default dist/cdk.out, which git ignores; CI runs
# it from .ci/run)
#
# checkov lives in its own virtualenv (its pins would fight the Pants lockfile), installed once
# from PyPI at the pinned version. The app is synthesized as deploy/README.md does it (the Glue
# bundle built first if missing). Every failed check fails the run: a check that does not apply
# is skipped in the template itself (Metadata: checkov: skip:, with its reason), written by
# deploy/aws/signal_aws/checkov.py and listed in deploy/README.md.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

CHECKOV_VERSION=3.3.30
venv="${SIGNAL_CHECKOV_VENV:-$HOME/.cache/signal-stream/checkov-venv}"
outdir="${1:-dist/cdk.out}"

if [ "$("$venv/bin/checkov" --version 2>/dev/null || true)" != "$CHECKOV_VERSION" ]; then
  echo "==> installing checkov $CHECKOV_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi

if [ ! -f dist/glue/stream-processor/manifest.json ]; then
  echo "==> building the processor's Glue bundle (the Processing stack uploads it)"
  bash services/stream-processor/glue_packaging/package.sh
fi

echo "==> synthesizing the app into $outdir"
if [ -e "$outdir" ] && [ ! -f "$outdir/manifest.json" ]; then
  echo "$outdir exists and is not a CDK cloud assembly: not replacing it" >&2
  exit 2
fi
rm -rf "$outdir"  # stale templates of removed stacks would be scanned too
export SIGNAL_AWS_ACCOUNT="${SIGNAL_AWS_ACCOUNT:-123456789012}"
export SIGNAL_AWS_REGION="${SIGNAL_AWS_REGION:-eu-west-1}"
./pants run deploy/aws:synth -- "$(realpath -m "$outdir")"

templates=("$outdir"/*.template.json)
[ -e "${templates[0]}" ] || { echo "no template in $outdir" >&2; exit 1; }

echo "==> checkov $CHECKOV_VERSION over ${#templates[@]} templates"
report="$outdir/checkov.json"
files=()
for template in "${templates[@]}"; do files+=(--file "$template"); done
status=0
# --skip-download: nothing is fetched from the vendor's platform (no key, no network needed)
"$venv/bin/checkov" --framework cloudformation --skip-download --output json "${files[@]}" \
  > "$report" || status=$?

python3 - "$report" "${#templates[@]}" <<'PY' || status=1
import json
import sys

report, expected = sys.argv[1], int(sys.argv[2])
data = json.load(open(report, encoding="utf-8"))
runs = data if isinstance(data, list) else [data]
totals = {"passed": 0, "failed": 0, "skipped": 0}
unexplained = 0
for run in runs:
    for key in totals:
        totals[key] += int(run["summary"][key])
    results = run["results"]
    for check in results.get("failed_checks", []):
        print(f"FAILED  {check['check_id']} {check['resource']} ({check['file_path']}): "
              f"{check['check_name']}")
    for check in results.get("skipped_checks", []):
        reason = (check.get("check_result") or {}).get("suppress_comment", "").strip()
        print(f"skipped {check['check_id']} {check['resource']}: {reason or 'NO REASON'}")
        unexplained += not reason
print(
    f"checkov: {totals['passed']} passed, {totals['failed']} failed, "
    f"{totals['skipped']} skipped ({unexplained} without a reason) over {expected} templates"
)
sys.exit(1 if totals["failed"] or unexplained or totals["passed"] == 0 else 0)
PY
exit "$status"
