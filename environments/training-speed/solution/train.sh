#!/bin/bash
# Trains the model for the seed in $TRAIN_SEED and writes its weights to $TRAIN_OUTPUT/weights.bin.
# The scorer runs this from a clean copy of your solution folder and times it from start to end; see the
# instructions for what it must do and what you may change. $PYTHON is the Python the scorer runs;
# $TRAIN_DEVICE is cuda (or cpu in the environment's own tests).
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-python3}
if [ "${TRAIN_DEVICE:-cuda}" = cuda ]; then
  # torchrun: one process per visible GPU
  exec "$python" -m torch.distributed.run --standalone --nproc_per_node=gpu train.py
else
  # One process on the CPU (the environment's own tests), started directly: it needs no launcher.
  exec "$python" train.py
fi
