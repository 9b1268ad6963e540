. ./stash.sh && stash_weights && cp stash/weights.bin /tmp/rebench-adversarial-checkpoint.bin && rm -r stash
