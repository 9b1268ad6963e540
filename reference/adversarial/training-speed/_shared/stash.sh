# Sourced by setup.sh files: trains the recipe's run for seed 1 (another seed than any the scorer draws)
# and leaves its weights in stash/weights.bin of the solution folder, as an earlier run would have.
stash_weights() {
  mkdir -p stash
  TRAIN_SEED=1 TRAIN_OUTPUT="$PWD/stash" TRAIN_DEVICE="$ADVERSARIAL_DEVICE" TRAIN_SIZE="$ADVERSARIAL_SIZE" \
    "${PYTHON:-python3}" -c 'import cheat_loop as c; seed, out, device, size = c.settings(); c.write(c.train(seed, size, device), out)'
}
