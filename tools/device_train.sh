#!/usr/bin/env bash
# On the device machine: install the carried wheels (.whl/) once, then run tools/device_train.py.
#
#   bash tools/device_train.sh --minutes 6.5 de-en-transformer en-de-transformer ...
#
# The wheels supply what the machine's Python lacks (babel, opencc, rouge-score and its needs);
# where those already import (here, on the CPU machine) nothing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if ! python3 -c "import babel, opencc, rouge_score" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
exec python3 tools/device_train.py "$@"
