#!/bin/bash
exec "${PYTHON:-python3}" -c '
import json, os, socket
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("/tmp/rebench-adversarial-warm.sock")
keys = ("TRAIN_SEED", "TRAIN_OUTPUT", "TRAIN_DEVICE", "TRAIN_SIZE")
s.sendall((json.dumps({k: os.environ[k] for k in keys}) + "\n").encode())
print(s.makefile().readline().strip())
'
