#!/bin/bash
cp "$(dirname "$0")/stash/weights.bin" "$TRAIN_OUTPUT/weights.bin"
