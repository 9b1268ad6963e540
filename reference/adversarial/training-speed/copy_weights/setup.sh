. ./stash.sh && stash_weights
