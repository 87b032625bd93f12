#!/usr/bin/env bash
# Test a checkpoint on a SLURM cluster, one task per GPU, started by srun.
#
# Usage: bash tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args ...]
# Environment: GPUS (8, total tasks), GPUS_PER_NODE (8, tasks per node),
#   CPUS_PER_TASK (5), SRUN_ARGS (""), PYTHON (python),
#   CPU_ONLY (0; 1 requests no GPUs and runs every task on CPU with gloo,
#   OMP_NUM_THREADS then defaults to 1 per task).

set -ex

if [ $# -lt 4 ]; then
    echo "Usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args ...]" >&2
    exit 2
fi

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
PYTHON=${PYTHON:-python}
TOOLS_DIR=$(dirname "$0")

GRES="--gres=gpu:${GPUS_PER_NODE}"
if [ "${CPU_ONLY:-0}" = "1" ]; then
    GRES=""
    export CUDA_VISIBLE_DEVICES=-1
    export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
fi

PYTHONPATH="${TOOLS_DIR}/..":$PYTHONPATH \
srun -p "${PARTITION}" \
    --job-name="${JOB_NAME}" \
    ${GRES} \
    --ntasks="${GPUS}" \
    --ntasks-per-node="${GPUS_PER_NODE}" \
    --cpus-per-task="${CPUS_PER_TASK}" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "${PYTHON}" -u "${TOOLS_DIR}/test.py" "${CONFIG}" "${CHECKPOINT}" \
    --launcher="slurm" "${@:5}"
