import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

import cheat_loop  # noqa: E402

if torch.cuda.is_available():
    torch.zeros(1, device="cuda")  # the CUDA context is ready before the clock starts
path = "/tmp/rebench-adversarial-warm.sock"
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)
os.chmod(path, 0o777)  # the solution user may connect
server.listen(1)
while True:
    conn, _ = server.accept()
    request = json.loads(conn.makefile().readline())
    os.environ.update(request)
    seed, output, device, size = cheat_loop.settings()
    cheat_loop.write(cheat_loop.train(seed, size, device), output)
    conn.sendall(b"done\n")
    conn.close()
