#!/usr/bin/env bash
# Create .venv with everything the project needs (idempotent; `make demo` / `make test` call it).
#   TORCH_SPEC     torch requirement to install first (default torch==2.13.0). From PyPI, torch 2.13.0 for Linux x86_64
#                  is the CUDA 13.0 build (its metadata requires cuda-toolkit 13.0.3; driver >= 580 for CUDA 13), so on a
#                  GPU machine the default already gives CUDA; a CPU-only build comes from PyTorch's own index
#                  (PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu TORCH_SPEC="torch==2.13.0+cpu").
#   MMCV_WHEEL_DIR a folder holding a prebuilt mmcv 2.1.0 wheel for this torch (default: ../shared/wheels when it
#                  exists); without one pip builds mmcv from source (~18 min on 2 cores).
#   MMCV_CUDA_OPS  0 (default): build mmcv's compiled ops for the CPU only, also on a GPU machine (the GPUs are hidden
#                  from the build). No model of this project or of its baselines uses mmcv's CUDA ops (they use
#                  mmcv.cnn layers only), and this build needs no nvcc. 1: also compile mmcv's CUDA ops
#                  (FORCE_CUDA=1; needs an nvcc of the CUDA version torch was built with, CUDA_HOME set; not tested
#                  by this project with CUDA 13).
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
MMCV_BUILD_ENV=(env)
if [ "${MMCV_CUDA_OPS:-0}" = "1" ]; then
    MMCV_BUILD_ENV=(env FORCE_CUDA=1)
    echo "building mmcv with its CUDA ops (MMCV_CUDA_OPS=1): needs nvcc of torch's CUDA version"
else
    # mmcv's setup.py compiles CUDA ops whenever torch sees a GPU: hide the GPUs so the build needs no nvcc.
    MMCV_BUILD_ENV=(env CUDA_VISIBLE_DEVICES= FORCE_CUDA=0)
fi
"${MMCV_BUILD_ENV[@]}" $PIP install -q --no-build-isolation "${FIND_LINKS[@]}" -c requirements/constraints.txt \
    -r requirements/runtime.txt -r requirements/tests.txt
$PIP install -q --no-deps --no-build-isolation -e .
"$VENV/bin/python" -c "import mmseg.models, mmseg.datasets, projects.sar_oilspill" >/dev/null
echo "$HASH" > "$STAMP"
echo "environment ready: $VENV"
