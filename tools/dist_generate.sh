#!/usr/bin/env bash
# Multi-process D_aug generation with torchrun (each process writes its own shard); works on GPUs (NCCL) and on CPU-only machines (gloo).
# Usage: bash tools/dist_generate.sh CONFIG CHECKPOINT NUM_PROCESSES [generate_daug.py args...]
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1).
set -e
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
if [ -z "$CONFIG" ] || [ -z "$GPUS" ] || [ -z "$CHECKPOINT" ]; then
    echo "usage: bash tools/dist_generate.sh CONFIG CHECKPOINT NUM_PROCESSES [args...]" >&2
    exit 2
fi
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
TOOLS=$(dirname "$0")
PYTHONPATH="$TOOLS/..":$PYTHONPATH \
$PYTHON -m torch.distributed.run \
    --nnodes="$NNODES" --node_rank="$NODE_RANK" --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" --master_port="$PORT" \
    "$TOOLS/generate_daug.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
