#!/usr/bin/env bash
# Run here, before a device call: put the data and the wheels the GPU machine lacks into ignored
# folders of the repo (.devdata/, .whl/), check that what travels stays under 64 MiB, and print
# the run call to make (docs/DEVICE.md).
#
#   bash tools/prepare_device.sh [--minutes 6.5] [ID ...]      (default: every config in configs/)
#
# DATA_DIR overrides where the data sets are copied from (default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."

minutes=6.5
ids=()
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift 2 ;;
    *) ids+=("${1%.json}"); shift ;;
  esac
done
if [ ${#ids[@]} -eq 0 ]; then
  for f in configs/*.json; do ids+=("$(basename "$f" .json)"); done
fi
for id in "${ids[@]}"; do
  [ -f "configs/$id.json" ] || { echo "no configs/$id.json" >&2; exit 1; }
done

# 1. Both folders must be ignored by git, or they would travel twice and show up as changes.
for dir in .devdata .whl; do
  git check-ignore -q "$dir/" || echo "/$dir/" >> "$(git rev-parse --git-path info/exclude)"
done

# 2. The data sets these configs read, each in a folder named after it (dates are generated).
data=${DATA_DIR:-../shared/data}
sets=$(python3 -c 'import json, sys; print(*sorted({json.load(open(f"configs/{i}.json"))["dataset"] for i in sys.argv[1:]} - {"dates"}))' "${ids[@]}")
rm -rf .devdata
mkdir .devdata
for set in $sets; do
  cp -r "$data/$set" .devdata/
done
echo "data sets in .devdata/: ${sets:-none}"

# 3. Wheels for Python 3.12 on x86-64 Linux. babel and opencc are imported by every training run
# (demo_core.data); rouge-score and its needs only by the summariser's metric. absl-py and six are
# in the machine's image today; they are carried anyway, being tiny, so that an image change
# cannot break the summariser. rouge-score ships only as a source archive: pip builds its
# pure-Python wheel here.
rm -rf .whl.new
mkdir .whl.new
if python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
     --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
     --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl.new \
     babel==2.19.0 opencc==1.4.2 nltk==3.10.4 defusedxml==0.7.1 absl-py==2.5.1 six==1.17.0 \
   && python3 -m pip wheel -q --no-deps -w .whl.new rouge-score==0.1.2; then
  rm -rf .whl
  mv .whl.new .whl
else
  rm -rf .whl.new
  echo "wheel download failed; .whl/ is left as it was:" >&2
  ls .whl >&2 || true
  exit 1
fi

# 4. What travels: tracked and untracked-not-ignored files, plus the carried folders.
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s -- 2>/dev/null | awk '{ s += $1 } END { print s + 0 }') || true
devdata=$(du -sb .devdata | cut -f1)
wheels=$(du -sb .whl | cut -f1)
total=$((tree + devdata + wheels))
echo "wheels:"
for w in .whl/*.whl; do echo "  $(basename "$w")  $(mib "$(stat -c %s "$w")")"; done
echo "travels: working tree $(mib "$tree") + .devdata $(mib "$devdata") + .whl $(mib "$wheels") = $(mib "$total") (limit 64 MiB)"
if [ "$total" -gt $((64 * 1048576)) ]; then
  echo "too big to travel: carry fewer data sets or wheels, or move large untracked files out of the repo" >&2
  exit 1
fi

# 5. How many return trips the models would take (one trip holds 8 files, 63 MiB).
echo "packed model sizes (upper bounds):"
python3 tools/device_train.py --estimate "${ids[@]}"

# 6. The calls to make.
command="bash tools/device_train.sh --minutes $minutes ${ids[*]}"
if [ ${#command} -ge 2000 ]; then
  echo "the run command is ${#command} characters; the limit is 2000: name fewer configs" >&2
  exit 1
fi
cat <<CALLS

Device calls (each model stops after the epoch that would pass $minutes min; one still running 45 s later is killed):
  run   command: $command
        carry:   [".devdata", ".whl"]
        timeout_s: 600
  if its output lists files "left in /tmp/device_out", at once (the machine stays warm only 30 s):
  run   command: python3 tools/device_train.py --fetch
        timeout_s: 60
then here:  python tools/unpack_device_out.py <files_at of the first call> [<files_at of the fetch>]
CALLS
