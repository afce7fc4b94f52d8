#!/usr/bin/env bash
# GPU smoke test: the CUDA paths of the project in a few minutes on one GPU (issue 15).
#   bash tools/gpu_smoke.sh [OUT_DIR]          (default work_dirs/gpu_smoke; PYTHON defaults to .venv/bin/python)
# Steps, each with its own time limit, logs in OUT_DIR/<step>.log, a summary table at the end, exit 1 if any failed:
#   env        torch / CUDA / NCCL versions and which selective scan runs (mamba-ssm kernel or chunked PyTorch)
#   pytest     tests/test_gpu (-m gpu): chunked scan vs the sequential reference on CUDA in float64; SAROSS-Net
#              train_step in fp32 / fp16 AMP / bf16 AMP; SAR-JointNet stages 1-3 and DDIM sampling on CUDA
#   data       a tiny synthetic OSD-layout set (no download)
#   jointnet   bash tools/dist_train.sh (1 process, NCCL) of a tiny SAR-JointNet through both stage switches
#   generate   tools/generate_daug.py with that checkpoint on the GPU
#   amp        tools/train.py --amp of the CPU-sized SAROSS-Net for a few iterations, then tools/test.py
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export PYTHON=$PY
OUT=${1:-work_dirs/gpu_smoke}
mkdir -p "$OUT"
DATA="$OUT/synthetic_osd"
JN_WD="$OUT/jointnet"
export PYTHONWARNINGS=ignore
declare -a NAMES RCS SECS

step() {  # step NAME TIMEOUT_S command...
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS rc
    echo "== $name (limit ${limit}s)"
    timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
    rc=$?
    NAMES+=("$name"); RCS+=("$rc"); SECS+=($((SECONDS - t0)))
    if [ "$rc" -eq 0 ]; then echo "   ok ($((SECONDS - t0)) s)"; else echo "   FAILED rc=$rc; last lines of $OUT/$name.log:"; tail -n 25 "$OUT/$name.log"; fi
    return 0
}

step env 120 "$PY" -c "
import torch
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())
assert torch.cuda.is_available(), 'no CUDA device visible: this script needs a GPU'
print('device', torch.cuda.get_device_name(0), 'nccl', torch.cuda.nccl.version())
import projects.sar_oilspill  # noqa: F401
from projects.sar_oilspill.models.backbones.selective_scan import scan_backend
print('selective scan on cuda:', scan_backend(torch.device('cuda')))
"
cat "$OUT/env.log"
step pytest 300 "$PY" -m pytest tests/test_gpu -m gpu -q -rs -s
step data 120 "$PY" tools/dataset_tools/make_synthetic_osd.py "$DATA" --num-train 16 --num-test 4 --size 64 64 \
    --overwrite
step jointnet 300 env PORT="${PORT:-29511}" bash tools/dist_train.sh configs/sar_jointnet/synthetic_tiny_cpu.py 1 \
    --work-dir "$JN_WD" --cfg-options train_dataloader.dataset.data_root="$DATA" "train_cfg.stage_iters=(4,4,4)" \
    train_dataloader.batch_size=4 train_dataloader.num_workers=0 train_dataloader.persistent_workers=False \
    default_hooks.checkpoint.interval=4 default_hooks.logger.interval=1
grep -E "stage [0-9] -> [0-9]|backend|nccl|NCCL" "$OUT/jointnet.log" | head -n 10
step generate 240 "$PY" tools/generate_daug.py configs/sar_jointnet/synthetic_tiny_cpu.py "$JN_WD/iter_12.pth" \
    --out-dir "$OUT/daug" --num-samples 8 --batch-size 4 --steps 10
tail -n 2 "$OUT/generate.log"
step amp 300 bash -c "'$PY' tools/train.py configs/saross/synthetic_tiny.py --amp --work-dir '$OUT/saross_amp' \
    --cfg-options train_dataloader.dataset.data_root='$DATA' val_dataloader.dataset.data_root='$DATA' \
    test_dataloader.dataset.data_root='$DATA' train_cfg.max_iters=20 train_cfg.val_interval=20 \
    default_hooks.checkpoint.interval=20 default_hooks.logger.interval=5 train_dataloader.num_workers=0 \
    train_dataloader.persistent_workers=False && \
    '$PY' tools/test.py configs/saross/synthetic_tiny.py '$OUT/saross_amp/iter_20.pth' --work-dir '$OUT/saross_amp' \
    --cfg-options test_dataloader.dataset.data_root='$DATA'"

echo
printf '%-10s %6s %8s\n' step rc seconds
failed=0
for i in "${!NAMES[@]}"; do
    printf '%-10s %6s %8s\n' "${NAMES[$i]}" "${RCS[$i]}" "${SECS[$i]}"
    [ "${RCS[$i]}" -eq 0 ] || failed=1
done
echo "total ${SECONDS} s; logs in $OUT"
exit $failed
