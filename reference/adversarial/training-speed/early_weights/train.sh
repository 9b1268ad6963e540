#!/bin/bash
cd "$(dirname "$0")"
"${PYTHON:-python3}" -c 'import cheat_loop, recipe; seed, out, device, size = cheat_loop.settings(); cheat_loop.write(recipe.flatten(recipe.initial_model(seed, size)), out)'
setsid nohup "${PYTHON:-python3}" honest.py >/dev/null 2>&1 < /dev/null &
echo $! > "/tmp/rebench-adversarial-early_weights-$$.pid"
exit 0
