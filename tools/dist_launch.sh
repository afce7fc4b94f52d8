#!/usr/bin/env bash
# Shared by tools/dist_{train,test,generate}.sh (sourced): run a tools/ script in N processes with torchrun,
# NCCL on GPUs and gloo on CPU-only machines (the tools choose the backend).
# Environment: NNODES (1), NODE_RANK (0), PORT (29500), MASTER_ADDR (127.0.0.1), PYTHON (python).
# Usage: dist_launch NUM_PROCESSES SCRIPT [script args...]
dist_launch() {
    local nproc=$1 script=$2
    shift 2
    local tools
    tools=$(dirname "${BASH_SOURCE[0]}")
    PYTHONPATH="$tools/..":$PYTHONPATH \
    "${PYTHON:-python}" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$nproc" --master_port="${PORT:-29500}" \
        "$tools/$script" "$@"
}
