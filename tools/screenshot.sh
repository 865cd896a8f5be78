#!/usr/bin/env bash
# Refresh docs/screenshot.png (the README's picture): the browser test of a beam-search run,
# told to write into the repository. Needs /usr/bin/chromium (Debian package chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
S2S_WRITE_SCREENSHOT=1 python -m pytest -q tests/test_browser.py -k screenshot "$@"
