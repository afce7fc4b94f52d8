#!/usr/bin/env bash
# Multi-process training with torchrun; works on GPUs (NCCL) and on CPU-only machines (gloo).
# Usage: bash tools/dist_train.sh CONFIG NUM_PROCESSES [train.py args...]
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1).
set -e
CONFIG=$1
GPUS=$2
if [ -z "$CONFIG" ] || [ -z "$GPUS" ]; then
    echo "usage: bash tools/dist_train.sh CONFIG NUM_PROCESSES [args...]" >&2
    exit 2
fi
source "$(dirname "$0")/dist_launch.sh"
dist_launch "$GPUS" train.py "$CONFIG" --launcher pytorch "${@:3}"
