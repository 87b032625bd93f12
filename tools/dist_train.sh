#!/usr/bin/env bash
# Train with one process per GPU via torchrun. On a machine without a GPU the
# same command starts CPU processes that talk through gloo.
#
# Usage: bash tools/dist_train.sh CONFIG NPROC [train.py args ...]
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1),
#   PORT (29500), PYTHON (python), CPU_ONLY (0; 1 hides the GPUs),
#   OMP_NUM_THREADS (defaults to 1 per process when running on CPU).

set -e

if [ $# -lt 2 ]; then
    echo "Usage: $0 CONFIG NPROC [train.py args ...]" >&2
    exit 2
fi

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(dirname "$0")

if [ "${CPU_ONLY:-0}" = "1" ]; then
    export CUDA_VISIBLE_DEVICES=-1
fi
if [ "${CPU_ONLY:-0}" = "1" ] || ! nvidia-smi -L >/dev/null 2>&1; then
    # CPU processes: one thread each, or they fight over the same cores.
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi

PYTHONPATH="${TOOLS_DIR}/..":$PYTHONPATH \
"${PYTHON}" -m torch.distributed.run \
    --nnodes="${NNODES}" \
    --node_rank="${NODE_RANK}" \
    --master_addr="${MASTER_ADDR}" \
    --nproc_per_node="${GPUS}" \
    --master_port="${PORT}" \
    "${TOOLS_DIR}/train.py" \
    "${CONFIG}" \
    --launcher pytorch "${@:3}"
