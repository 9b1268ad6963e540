"""Checks and timings of the GPU environments on a machine with an NVIDIA GPU (run from the repository root).

    python3 reference/device_check.py machine
    python3 reference/device_check.py reservoir      reference solution: exactness, block-size variants
    python3 reference/device_check.py throughput     compute-forecast: training speed by model size
    python3 reference/device_check.py sweep BUDGET   compute-forecast: held-out loss of sizes at a budget
"""
import importlib.util
import json
import os
import platform
import random
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def machine():
    import torch

    record = {"date": time.strftime("%Y-%m-%d"), "python": platform.python_version(), "torch": torch.__version__}
    try:
        import triton

        record["triton"] = triton.__version__
    except ImportError:
        record["triton"] = None
    record["cuda"] = torch.version.cuda
    record["gpu"] = torch.cuda.get_device_name(0)
    smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version,memory.total,clocks.max.sm",
                          "--format=csv,noheader"], capture_output=True, text=True)
    record["driver"], record["memory"], record["max_sm_clock"] = [s.strip() for s in smi.stdout.split(",")]
    return record


def reservoir():
    import torch

    env = os.path.join(ROOT, "environments", "reservoir-scan")
    sys.path.insert(0, env)
    checker = load(os.path.join(env, "checker.py"), "checker")
    ref = load(os.path.join(ROOT, "reference", "reservoir-scan", "solution.py"), "reference_solution")
    rng = random.Random(5)
    for n in [0, 1, 2, 3, 31, 4095, 4096, 4097, 8191, 12289, 70001]:
        for c in [1, 7, 1000, 2**30 - 1]:
            xs = [rng.randint(-3000, 3000) for _ in range(n)] if c < 2**30 - 1 else \
                [rng.randint(-(2**30 - 1), 2**30 - 1) for _ in range(n)]
            got = ref.reservoir_levels(torch.tensor(xs, dtype=torch.int32, device="cuda"), c).tolist()
            assert got == checker.levels_by_definition(xs, c), (n, c)
    print("reference equals the definition on short inputs", flush=True)
    g = torch.Generator(device="cuda").manual_seed(11)
    for label, n, kind, c in checker.correctness_cases():
        x = checker.make_inflow(kind, n, g, "cuda")
        problem = checker.describe_mismatch(ref.reservoir_levels(x, c), checker.levels_trusted(x, c), x, c)
        print("%-60s %s" % (label, problem or "ok"), flush=True)
        assert problem is None
    x = checker.make_inflow("uniform_full", checker.FULL_SIZE, g, "cuda")
    want = checker.levels_trusted(x, checker.FULL_CAPACITY)
    import triton.testing

    flush = torch.empty(256 * 2**20 // 4, dtype=torch.int32, device="cuda")
    rows = []
    for block in (1024, 2048, 4096, 8192):
        for warps in (4, 8, 16):
            ref.BLOCK, ref.WARPS = block, warps
            try:
                assert torch.equal(ref.reservoir_levels(x, checker.FULL_CAPACITY), want)
                ms = triton.testing.do_bench(lambda: ref.reservoir_levels(x, checker.FULL_CAPACITY),
                                             warmup=100, rep=500, return_mode="median")
            except Exception as e:  # a variant that does not compile is reported, not fatal
                print("BLOCK %d warps %d failed: %s" % (block, warps, str(e).split("\n")[0]), flush=True)
                continue
            rows.append((ms, block, warps))
            print("BLOCK %5d warps %2d  %.4f ms  (%.0f GB/s for 12 bytes/element)"
                  % (block, warps, ms, 12 * checker.FULL_SIZE / ms / 1e6), flush=True)
    copy = triton.testing.do_bench(lambda: x.clone(), warmup=100, rep=500, return_mode="median")
    print("clone of the input (8 bytes/element moved): %.4f ms = %.0f GB/s" % (copy, 8 * checker.FULL_SIZE / copy / 1e6))
    print("best", min(rows), flush=True)
    del flush


def throughput():
    import torch

    env = os.path.join(ROOT, "environments", "compute-forecast")
    sys.path.insert(0, env)
    lm = load(os.path.join(env, "lm.py"), "lm")
    source = lm.Source("cuda")
    print("entropy rate of the source: %.4f nats/token" % source.entropy_rate(), flush=True)
    for d, layers, steps in [(128, 2, 300), (256, 4, 300), (512, 8, 200), (1024, 16, 60)]:
        r = lm.train(d, layers, steps * lm.BATCH_TOKENS, "cuda", log=lambda line: None, source=source)
        print("d %4d L %2d: %6.0f tokens/s  %.3g FLOP/s (counted)  loss %.4f after %d steps; at the budget: %s tokens, %.0f s"
              % (d, layers, r["tokens"] / r["seconds"], r["flops"] / r["seconds"], r["loss"], steps,
                 format(lm.max_tokens(d, layers), ","), lm.max_tokens(d, layers) / (r["tokens"] / r["seconds"])),
              flush=True)


def sweep(budget, configs):
    env = os.path.join(ROOT, "environments", "compute-forecast")
    sys.path.insert(0, env)
    lm = load(os.path.join(env, "lm.py"), "lm")
    source = lm.Source("cuda")
    out = []
    for d, layers in configs:
        tokens = lm.max_tokens(d, layers, budget)
        if tokens < lm.BATCH_TOKENS * 10:
            continue
        r = lm.train(d, layers, tokens, "cuda", seed=3, eval_seed=99, log=lambda line: None, source=source)
        r.update(d_model=d, n_layers=layers, budget=budget)
        out.append(r)
        print(json.dumps(r), flush=True)
    return out


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "machine":
        print(json.dumps(machine()))
    elif what == "reservoir":
        reservoir()
    elif what == "throughput":
        throughput()
    elif what == "sweep":
        configs = [tuple(int(v) for v in c.split("x")) for c in sys.argv[3:]]
        sweep(float(sys.argv[2]), configs)
