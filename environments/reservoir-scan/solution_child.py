"""The child side of the process split: runs the participant's solution for the scorer (see sandbox.py).

    python3 -I solution_child.py --mode solution|sweep --device cuda|cpu --solution-dir DIR [--sweep] [--private DIR]

It talks to the scorer over file descriptors 0 and 1, which it moves out of the way first: the
solution's own prints go to stderr, which the scorer passes on to the participant. Nothing here is
trusted by the scorer once the solution is loaded: the solution can replace any of it, and the
scorer checks what comes back.

- mode solution: loads solution.py from the solution folder and calls the function the scorer names,
  on the input buffer the scorer lends (CUDA IPC) or on inline CPU tensors. Before each call its stream
  waits for the scorer's gate event (the scorer records it once the input is in place), so that the
  kernels queued by the call start on the GPU the moment the input is ready, whatever launching them
  cost on the CPU. After the call it records an interprocess CUDA event on the caller's stream, as
  PyTorch's stream semantics promise a caller that the result is ready there, and lends the result
  back at once, without waiting for the GPU; the scorer's stream waits for that event, then reads the
  whole result. Waiting here would add this process's wake-up and reply to the time of every honest
  solution, and a solution could skip it.
  Until the scorer asks it to load the solution, each call returns a buffer of its own instead: the
  scorer times such calls to learn what the split itself costs on the GPU, before any participant
  code is in the process.
- mode sweep: ends every process of this user but itself and removes its leftover private folders
  (used as the dedicated solution user only).
"""
import argparse
import base64
import importlib.util
import json
import os
import signal
import struct
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))


def sweep(remove_folders=False):
    if os.geteuid() == 0:
        raise SystemExit("refusing to end every process as root")
    try:
        os.kill(-1, signal.SIGKILL)  # every process of this user but the caller (Linux)
    except ProcessLookupError:
        pass
    if remove_folders:
        import glob
        import shutil

        for folder in glob.glob("/tmp/rebench-solution-*"):
            try:
                if os.lstat(folder).st_uid == os.geteuid():
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass


class Channel:
    def __init__(self):
        # Move the scorer's two descriptors out of the way: fd 1 becomes stderr, fd 0 /dev/null.
        self.fd_in = os.dup(0)
        self.fd_out = os.dup(1)
        os.set_inheritable(self.fd_in, False)
        os.set_inheritable(self.fd_out, False)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def send(self, obj):
        data = json.dumps(obj, separators=(",", ":")).encode()
        data = struct.pack(">I", len(data)) + data
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd_out, view):]

    def _read(self, n):
        out = b""
        while len(out) < n:
            chunk = os.read(self.fd_in, n - len(out))
            if not chunk:
                raise EOFError
            out += chunk
        return out

    def receive(self):
        (length,) = struct.unpack(">I", self._read(4))
        return json.loads(self._read(length).decode())


def private_folder(given):
    """A fresh folder of this user's own for HOME and the compilers' caches (the solution user has no home):
    the one the scorer made (same user), or a new one."""
    folder = given or tempfile.mkdtemp(prefix="rebench-solution-", dir="/tmp")
    for key, sub in (("HOME", ""), ("TMPDIR", "tmp"), ("TRITON_CACHE_DIR", "triton"),
                     ("TORCHINDUCTOR_CACHE_DIR", "inductor"), ("XDG_CACHE_HOME", "cache")):
        path = os.path.join(folder, sub) if sub else folder
        os.makedirs(path, exist_ok=True)
        os.environ[key] = path
    tempfile.tempdir = os.environ["TMPDIR"]
    return folder


class Child:
    def __init__(self, args, channel):
        self.args = args
        self.channel = channel
        self.cuda = args.device == "cuda"
        self.function = None
        self.input = None
        self.last = None
        self.kept = {}
        self.event = None
        self.gate = None
        self.dummy = None

    def start(self):
        import torch

        self.torch = torch
        info = {"ready": True, "pid": os.getpid(), "uid": os.geteuid(), "torch": torch.__version__}
        if self.cuda:
            if not torch.cuda.is_available():
                return {"ready": False, "error": "The solution's process sees no CUDA GPU."}
            torch.cuda.init()
            torch.zeros(1, device="cuda")
            sys.path.insert(0, HERE)
            import sandbox

            self.driver = sandbox.CudaDriver()
            self.sandbox = sandbox
            info["gpu"] = torch.cuda.get_device_name(0)
            self.event = torch.cuda.Event(interprocess=True)
            self.event.record()
            torch.cuda.synchronize()
            info["event"] = bytes(self.event.ipc_handle()).hex()
        return info

    def load(self, name):
        folder = self.args.solution_dir
        path = os.path.join(folder, "solution.py")
        if not os.path.isfile(path):
            return {"error": "There is no solution.py in %s." % folder}
        os.chdir(folder)
        sys.path.insert(0, folder)  # lets the solution import its own modules
        try:
            spec = importlib.util.spec_from_file_location("participant_solution", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules["participant_solution"] = module
            spec.loader.exec_module(module)
        except BaseException as e:  # the participant's code: any failure is theirs to see
            traceback.print_exc()
            return {"error": "Could not load your solution: %s: %s" % (type(e).__name__, e)}
        function = getattr(module, name, None)
        if not callable(function):
            return {"error": "solution.py does not define a function %s." % name}
        self.function = function
        return {"ok": True}

    def argument(self, a):
        torch = self.torch
        if isinstance(a, dict) and "$input" in a:
            return self.input[:int(a["$input"])]
        if isinstance(a, dict) and "$tensor" in a:
            dtype = {"torch.int32": torch.int32, "torch.int64": torch.int64}[a["dtype"]]
            raw = bytearray(base64.b64decode(a["$tensor"]))
            return torch.frombuffer(raw, dtype=dtype).reshape(a["shape"]) if raw else torch.empty(a["shape"], dtype=dtype)
        return a

    def describe(self, result):
        torch = self.torch
        if not isinstance(result, torch.Tensor):
            d = {"kind": type(result).__name__}
            if isinstance(result, dict) and len(result) <= 1000:
                try:  # plain data, for scorers whose function returns some (never trusted)
                    if len(json.dumps(result)) <= 65536:
                        d["value"] = result
                except (TypeError, ValueError):
                    pass
            return d
        d = {"kind": "tensor", "dtype": str(result.dtype), "shape": list(result.shape), "device": str(result.device)}
        if result.dtype not in (torch.int32, torch.int64) or result.dim() != 1:
            return d
        if self.cuda and result.is_cuda:
            if result.numel():
                ptr = result.data_ptr()
                start, end = self.input.data_ptr(), self.input.data_ptr() + 4 * self.input.numel()
                if start <= ptr < end:
                    d["aliases_input"] = True
                    return d
                try:
                    handle, offset, size = self.driver.export(ptr)
                except RuntimeError as e:
                    d["not_lendable"] = str(e)
                    return d
                d.update(handle=handle, offset=offset, size=size)
        elif not result.is_cuda:
            d["data"] = base64.b64encode(result.contiguous().numpy().tobytes()).decode()
        return d

    def call(self, message):
        torch = self.torch
        args = [self.argument(a) for a in message.get("args", [])]
        if self.cuda:
            torch.cuda.current_stream().wait_event(self.gate)  # the input is in place once the gate is passed
        try:
            result = self.function(*args) if self.function is not None else self.dummy[:args[0].numel()]
            if isinstance(result, torch.Tensor) and result.is_cuda and result.dim() == 1 \
                    and not result.is_contiguous():
                result = result.contiguous()
        except BaseException as e:  # the participant's code
            traceback.print_exc()
            return {"error": "%s raised %s: %s" % (message.get("label", "your function"), type(e).__name__, e)}
        if self.cuda:
            self.event.record()  # on the caller's current stream, after the work queued there
        self.last = result
        reply = self.describe(result)
        reply["seq"] = message.get("seq")
        return reply

    def serve(self):
        torch = self.torch
        while True:
            message = self.channel.receive()
            op = message.get("op")
            if op == "exit":
                return
            if op == "map":
                base, _ = self.driver.open(message["handle"])
                self.input = self.sandbox.wrap_device_pointer(torch, base + message["offset"], message["numel"])
                self.gate = torch.cuda.Event.from_ipc_handle(torch.cuda.current_device(), bytes.fromhex(message["gate"]))
                self.dummy = torch.zeros(message["numel"], dtype=torch.int32, device="cuda")
                reply = {"ok": True}
            elif op == "load":
                self.dummy = self.last = None
                if self.cuda:
                    torch.cuda.empty_cache()
                reply = self.load(message["function"])
            elif op == "call":
                try:
                    reply = self.call(message)
                except BaseException as e:
                    traceback.print_exc()
                    reply = {"error": "The solution's process failed after the call: %s: %s" % (type(e).__name__, e)}
            elif op == "keep":
                self.kept[message["seq"]] = self.last
                reply = {"ok": True}
            elif op == "describe":
                kept = self.kept.get(message["seq"])
                reply = self.describe(kept) if kept is not None else {"kind": "missing"}
            elif op == "release":
                self.kept.clear()
                self.last = None
                reply = {"ok": True}
            else:
                reply = {"error": "unknown request %r" % op}
            self.channel.send(reply)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("solution", "sweep"), required=True)
    parser.add_argument("--device", choices=("cuda", "cpu"), required=True)
    parser.add_argument("--solution-dir", required=True)
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--private")
    args = parser.parse_args()
    if args.mode == "sweep":
        sweep(remove_folders=True)
        return
    channel = Channel()
    if args.sweep:
        sweep(remove_folders=True)
    private_folder(args.private)
    child = Child(args, channel)
    try:
        info = child.start()
    except BaseException as e:
        traceback.print_exc()
        info = {"ready": False, "error": "%s: %s" % (type(e).__name__, e)}
    channel.send(info)
    if info.get("ready"):
        try:
            child.serve()
        except EOFError:
            pass


if __name__ == "__main__":
    main()
