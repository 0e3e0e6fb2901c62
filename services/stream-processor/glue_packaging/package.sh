#!/usr/bin/env bash
# Build exactly what the stream processor's Glue 6.0 job needs into dist/glue/stream-processor:
# the job script, the project's wheels and the wheels of every dependency Glue 6.0 does not
# ship (pinned by the lockfile), and manifest.json. See the service README, "Glue packaging".
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
echo "==> building the signal-common and signal-stream-processor wheels (./pants package)"
rm -f dist/signal_common-*.whl dist/signal_stream_processor-*.whl
./pants package services/stream-processor:glue-wheel libs/common/src:wheel
echo "==> assembling the bundle"
python3 services/stream-processor/glue_packaging/bundle.py "$@"
