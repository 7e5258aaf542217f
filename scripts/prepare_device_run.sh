#!/usr/bin/env bash
# Pack what scripts/train_on_device.py needs on a lent GPU machine (optional; CI never runs it).
#
# That machine has Python 3.12, JAX with CUDA, OpenCV and numpy, but no Keras, no TensorFlow,
# no network and not the datasets; only the repository travels (64 MiB in all). This writes,
# into an ignored folder of the repository (default .dev/):
#   whl/      keras, namex and optree wheels for CPython 3.12 x86-64, and this checkout's
#             happyhouse wheel (so the run uses the working tree's trainer)
#   data.tgz  the two training datasets (GENKI-4K train, SMILEsmileD; ~26 MB), never committed
# and prints the command to give the device tool with carry [".dev"].
#
#   scripts/prepare_device_run.sh [$HAPPYHOUSE_DATA] [.dev]
set -euo pipefail
data=${1:-${HAPPYHOUSE_DATA:-../shared/datasets}}
dest=${2:-.dev}
case "$dest" in
    /*|..*) echo "the folder must be inside the repository (only the repository travels): $dest" >&2; exit 2;;
esac
cd "$(dirname "$0")/.."
py=${PYTHON:-.venv/bin/python}
grep -qxF "/$dest/" .git/info/exclude 2>/dev/null || echo "/$dest/" >> .git/info/exclude
rm -rf "$dest/whl" && mkdir -p "$dest/whl"
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dest/whl" keras==3.15.1 namex==0.1.0 optree==0.20.0
"$py" -m pip wheel -q --no-deps --no-build-isolation . -w "$dest/whl"
tar czf "$dest/data.tgz" -C "$data" genki4k-train smilesmiled
du -sh "$dest"
cat <<EOF
device command (carry ["$dest"]; choose --variants, and a --budget that ends well inside the call's limit):
cd $dest && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site whl/*.whl || exit 3; export PYTHONPATH=/tmp/site; mkdir -p /tmp/data && tar xzf data.tgz -C /tmp/data || exit 4; cd - >/dev/null; PYTHONUNBUFFERED=1 python3 scripts/train_on_device.py --data /tmp/data/genki4k-train --data /tmp/data/smilesmiled --out \$OUT --variants VARIANTS --budget 420 --workers 3 --backends jax
EOF
