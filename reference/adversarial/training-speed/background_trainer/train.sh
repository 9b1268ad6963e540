#!/bin/bash
cd "$(dirname "$0")"
setsid nohup "${PYTHON:-python3}" honest.py >/dev/null 2>&1 < /dev/null &
echo $! > "/tmp/rebench-adversarial-background_trainer-$$.pid"
exit 0
