#!/usr/bin/env bash
# Create .venv with everything the project needs (idempotent; `make demo` / `make test` call it).
#   TORCH_SPEC     torch requirement to install first (default torch==2.13.0; on CUDA pick the build for your
#                  driver, e.g. TORCH_SPEC="torch==2.13.0" PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cu124)
#   MMCV_WHEEL_DIR a folder holding a prebuilt mmcv 2.1.0 wheel for this torch (default: ../shared/wheels when it
#                  exists); without one pip builds mmcv from source (~18 min on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
STAMP="$VENV/.installed"
HASH=$(cat requirements/*.txt setup.py | sha256sum | cut -c1-16)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$HASH" ]; then
    exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP="$VENV/bin/python -m pip"
$PIP install -q 'setuptools<82' wheel
# torch first and pinned: anything that pulls an unpinned torch would download the newest CUDA build.
$PIP install -q "$TORCH_SPEC"
FIND_LINKS=()
MMCV_WHEEL_DIR=${MMCV_WHEEL_DIR:-../shared/wheels}
[ -d "$MMCV_WHEEL_DIR" ] && FIND_LINKS=(--find-links "$MMCV_WHEEL_DIR")
# mmcv has no wheel on PyPI: build it against the installed torch (no build isolation) unless a wheel is found.
$PIP install -q --no-build-isolation "${FIND_LINKS[@]}" -c requirements/constraints.txt \
    -r requirements/runtime.txt -r requirements/tests.txt
$PIP install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" -c "import mmseg.models, mmseg.datasets, projects.sar_oilspill" >/dev/null
echo "$HASH" > "$STAMP"
echo "environment ready: $VENV"
