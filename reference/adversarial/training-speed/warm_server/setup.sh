rm -f /tmp/rebench-adversarial-warm.sock
setsid nohup "${PYTHON:-python3}" "$PWD/server.py" >/tmp/rebench-adversarial-warm.log 2>&1 < /dev/null &
echo $! > /tmp/rebench-warm-server.pid  # ended by the suite after the run, not counted as left running
for _ in $(seq 600); do [ -S /tmp/rebench-adversarial-warm.sock ] && exit 0; sleep 0.2; done
echo "the server did not start" >&2; exit 1
