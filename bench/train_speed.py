"""Training/inference speed of the engine vs raw tinygrad vs PyTorch eager, plus a streaming
memory check.

    python bench/train_speed.py                    # engine vs raw tinygrad vs torch, default settings
    python bench/train_speed.py --steps 50 --beam 2
    python bench/train_speed.py --sweep            # one subprocess per tinygrad setting, a table of results
    python bench/train_speed.py --memory --rows 1000000   # streaming prediction, peak RSS
    python bench/train_speed.py --bn-only --rounds 5      # conv+BN inference: BN folded, unfolded, torch

Network (TinyCNN on 1x28x28): conv 1->8 3x3, relu, maxpool 2, conv 8->16 3x3, relu, maxpool 2,
flatten, linear 400->10; batch 128; Adam lr 1e-3. All three start from the same weights.
Throughput is measured after warm-up (kernel compilation and jit capture are excluded and
reported separately), as the best of several interleaved rounds. Environment settings (BEAM, CPU_CC, JIT) must be set before tinygrad is
imported, which is why --sweep runs subprocesses.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))


def tiny_cnn(bn: bool = False):
    from uop_engine import GraphBuilder
    g = GraphBuilder("tiny_cnn")
    h = g.input((1, 28, 28))
    for c in (8, 16):
        h = g.conv2d(h, out_channels=c, kernel_size=(3,), bias=not bn)
        if bn:
            h = g.batch_norm(h)
        h = g.max_pool2d(g.relu(h), kernel_size=(2,))
    g.linear(g.flatten(h), out_features=10)
    return g.build()


def data(n: int, seed: int = 0):
    import numpy as np
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n).astype(np.int32)


def setup_engine(X, y, warm: int, bs: int):
    """Returns (timed run over X/y -> steps/s, warm-up seconds, model)."""
    from uop_engine.train import TrainConfig, Trainer
    tr = Trainer(tiny_cnn(), TrainConfig(epochs=1, batch_size=bs, shuffle=False, optimizer="adam", lr=1e-3))
    t0 = time.perf_counter()
    tr.fit(X[:warm * bs], y[:warm * bs], data_fingerprint="warmup")  # compile + capture the full-batch jit
    compile_s = time.perf_counter() - t0

    def timed() -> float:
        t0 = time.perf_counter()
        tr.fit(X, y, data_fingerprint="bench")  # the fingerprint is given so hashing is not timed
        return (len(X) // bs) / (time.perf_counter() - t0)
    return timed, compile_s, tr.model


def setup_raw(X, y, warm: int, bs: int, w: dict):
    """The same network written directly against tinygrad, as a tinygrad user would."""
    from tinygrad import Context, Tensor, TinyJit
    from tinygrad.nn import Conv2d, Linear
    from tinygrad.nn.optim import Adam

    class Net:
        def __init__(self):
            self.c1, self.c2, self.l1 = Conv2d(1, 8, 3), Conv2d(8, 16, 3), Linear(400, 10)
            for m, k in ((self.c1, "conv2d_1"), (self.c2, "conv2d_2"), (self.l1, "linear_1")):
                m.weight.assign(Tensor(w[f"params.{k}.weight"])).realize()
                m.bias.assign(Tensor(w[f"params.{k}.bias"])).realize()

        def __call__(self, x):
            x = self.c1(x).relu().max_pool2d(2)
            x = self.c2(x).relu().max_pool2d(2)
            return self.l1(x.flatten(1))

    net = Net()
    opt = Adam([net.c1.weight, net.c1.bias, net.c2.weight, net.c2.bias, net.l1.weight, net.l1.bias], lr=1e-3)

    @TinyJit
    def step(x, t):
        opt.zero_grad()
        loss = net(x).sparse_categorical_crossentropy(t)
        loss.backward()
        return loss.realize(*opt.schedule_step())

    def loop(Xs, ys) -> float:
        n = len(Xs) // bs
        t0 = time.perf_counter()
        with Context(TRAINING=1):
            for i in range(n):
                step(Tensor(Xs[i * bs:(i + 1) * bs]), Tensor(ys[i * bs:(i + 1) * bs])).item()  # read the loss each step
        return n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    loop(X[:warm * bs], y[:warm * bs])
    return (lambda: loop(X, y)), time.perf_counter() - t0


def setup_torch(X, y, warm: int, bs: int, w: dict):
    import torch
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Conv2d(8, 16, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                              torch.nn.Flatten(), torch.nn.Linear(400, 10))
    with torch.no_grad():
        for idx, k in ((0, "conv2d_1"), (3, "conv2d_2"), (7, "linear_1")):
            net[idx].weight.copy_(torch.tensor(w[f"params.{k}.weight"]))
            net[idx].bias.copy_(torch.tensor(w[f"params.{k}.bias"]))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def loop(Xs, ys) -> float:
        n = len(Xs) // bs
        t0 = time.perf_counter()
        for i in range(n):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(Xs[i * bs:(i + 1) * bs])),
                                                     torch.from_numpy(ys[i * bs:(i + 1) * bs]).long())
            loss.backward()
            opt.step()
            loss.item()
        return n / (time.perf_counter() - t0)

    def infer(Xi) -> float:
        with torch.no_grad():
            net(torch.from_numpy(Xi[:512]))
            t0 = time.perf_counter()
            for i in range(0, len(Xi), 512):
                net(torch.from_numpy(Xi[i:i + 512])).numpy()
        return len(Xi) / (time.perf_counter() - t0)
    loop(X[:warm * bs], y[:warm * bs])
    return (lambda: loop(X, y)), infer, torch.get_num_threads()


def setup_infer(model, Xi, fold_bn: bool = False):
    from uop_engine.predict import Predictor
    p = Predictor(model, fold_bn=fold_bn)
    t0 = time.perf_counter()
    for _ in range(3):  # plain call, jit capture, first replay
        p.run_batch([Xi[:512]])
    compile_s = time.perf_counter() - t0

    def timed() -> float:
        t0 = time.perf_counter()
        for i in range(0, len(Xi), 512):
            p.run_batch([Xi[i:i + 512]])
        return len(Xi) / (time.perf_counter() - t0)
    return timed, compile_s


def bn_model():
    """The BatchNorm variant with non-trivial running statistics (as after training)."""
    import numpy as np
    from uop_engine.compile import compile_graph
    m = compile_graph(tiny_cnn(bn=True), seed=0)
    w, rng = m.numpy_weights(), np.random.default_rng(0)
    for k in [k for k in w if k.endswith(".running_var")]:
        b = k[:-len(".running_var")]
        c = w[k].shape[0]
        w[k], w[b + ".running_mean"] = rng.uniform(0.5, 2, c).astype(np.float32), rng.normal(0, 0.5, c).astype(np.float32)
        w[b + ".weight"], w[b + ".bias"] = rng.uniform(0.5, 2, c).astype(np.float32), rng.normal(0, 0.5, c).astype(np.float32)
    m.load_weights(w)
    return m


def torch_bn_net(w: dict):
    """The BatchNorm variant in PyTorch eager (eval mode: BN uses the running statistics, unfolded)."""
    import torch
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                              torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 16, 3, bias=False), torch.nn.BatchNorm2d(16),
                              torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(400, 10))
    with torch.no_grad():
        for idx, k in ((0, "conv2d_1"), (4, "conv2d_2"), (9, "linear_1")):
            net[idx].weight.copy_(torch.tensor(w[f"params.{k}.weight"]))
        net[9].bias.copy_(torch.tensor(w["params.linear_1.bias"]))
        for idx, k in ((1, "batch_norm_1"), (5, "batch_norm_2")):
            for name, attr in (("weight", "weight"), ("bias", "bias"), ("running_mean", "running_mean"),
                               ("running_var", "running_var")):
                getattr(net[idx], attr).copy_(torch.tensor(w[f"params.{k}.{name}"]))
            net[idx].eps = 1e-5
    return net.eval()


def bench_bn_fold(Xi, rounds: int) -> dict:
    """Batch-512 inference of the conv+BN variant: the engine unfolded (the default), with BN folded
    into the convolutions (Predictor(fold_bn=True)), and PyTorch eager (eval mode); interleaved
    rounds, best of each. Also the largest relative difference between folded and unfolded outputs."""
    import numpy as np
    import torch
    m = bn_model()
    folded, unfolded = setup_infer(m, Xi, fold_bn=True)[0], setup_infer(m, Xi, fold_bn=False)[0]
    net = torch_bn_net(m.numpy_weights())

    def tor() -> float:
        with torch.no_grad():
            t0 = time.perf_counter()
            for i in range(0, len(Xi), 512):
                net(torch.from_numpy(Xi[i:i + 512])).numpy()
        return len(Xi) / (time.perf_counter() - t0)
    from uop_engine.predict import predict
    a, b = predict(m, Xi[:512], 512, fold_bn=True), predict(m, Xi[:512], 512, fold_bn=False)
    with torch.no_grad():
        ref = net(torch.from_numpy(Xi[:512])).numpy()
    best = {"folded": 0.0, "unfolded": 0.0, "torch": 0.0}
    for _ in range(rounds):
        for k, f in (("folded", folded), ("unfolded", unfolded), ("torch", tor)):
            best[k] = max(best[k], f())
    return {"bn_folded_infer_per_s": best["folded"], "bn_infer_per_s": best["unfolded"],
            "bn_torch_infer_per_s": best["torch"], "bn_fold_max_rel_diff": float(np.abs(a - b).max() / np.abs(b).max()),
            "bn_torch_max_rel_diff": float(np.abs(b - ref).max() / np.abs(ref).max())}


def show_bn(r: dict) -> None:
    print(f"  conv+BN inference rows/s (batch 512): folded {r['bn_folded_infer_per_s']:.0f}, unfolded (default) "
          f"{r['bn_infer_per_s']:.0f}, torch eager {r['bn_torch_infer_per_s']:.0f}")
    print(f"  folded/unfolded = {r['bn_folded_infer_per_s'] / r['bn_infer_per_s']:.3f}   "
          f"engine/torch: folded {r['bn_folded_infer_per_s'] / r['bn_torch_infer_per_s']:.3f}, unfolded "
          f"{r['bn_infer_per_s'] / r['bn_torch_infer_per_s']:.3f}")
    print(f"  max |folded - unfolded| / max |unfolded| = {r['bn_fold_max_rel_diff']:.2e}; "
          f"unfolded vs torch {r['bn_torch_max_rel_diff']:.2e}")


def run(args) -> dict:
    """Each contender is set up (compiled, warmed) once; then `rounds` interleaved timed runs,
    best of each, so a busy machine penalises all of them alike."""
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    bs, warm = 128, 3
    X, y = data(args.steps * bs)
    Xi = data(args.infer_rows, seed=1)[0]
    from uop_engine.compile import compile_graph
    w0 = compile_graph(tiny_cnn(), seed=0).numpy_weights()
    eng, eng_compile, model = setup_engine(X, y, warm, bs)
    raw, raw_compile = setup_raw(X, y, warm, bs, w0)
    tor, tor_infer, threads = setup_torch(X, y, warm, bs, w0)
    inf, infer_compile = setup_infer(model, Xi)
    best = {"engine": 0.0, "raw": 0.0, "torch": 0.0, "engine_inf": 0.0, "torch_inf": 0.0}
    for _ in range(args.rounds):
        for k, f in (("engine", eng), ("raw", raw), ("torch", tor), ("engine_inf", inf), ("torch_inf", lambda: tor_infer(Xi))):
            best[k] = max(best[k], f())
    out = {"setting": args.label, "env": START_ENV,
           "steps": args.steps, "rounds": args.rounds, "engine_steps_per_s": best["engine"], "raw_steps_per_s": best["raw"],
           "torch_steps_per_s": best["torch"], "engine_vs_raw": best["engine"] / best["raw"],
           "engine_vs_torch_train": best["engine"] / best["torch"], "engine_infer_per_s": best["engine_inf"],
           "torch_infer_per_s": best["torch_inf"], "engine_vs_torch_infer": best["engine_inf"] / best["torch_inf"],
           "engine_compile_s": eng_compile, "raw_compile_s": raw_compile, "infer_compile_s": infer_compile,
           "torch_threads": threads}
    if args.bn_fold:
        out |= bench_bn_fold(Xi, args.rounds)
    return out


def show(r: dict) -> None:
    print(f"[{r['setting']}] {r['env']}")
    print(f"  training steps/s   engine {r['engine_steps_per_s']:8.1f}   raw tinygrad {r['raw_steps_per_s']:8.1f}   "
          f"torch {r['torch_steps_per_s']:8.1f}")
    print(f"  engine/raw tinygrad = {r['engine_vs_raw']:.3f}    engine/torch = {r['engine_vs_torch_train']:.3f}")
    print(f"  inference rows/s (batch 512)  engine {r['engine_infer_per_s']:9.0f}   torch {r['torch_infer_per_s']:9.0f}   "
          f"engine/torch = {r['engine_vs_torch_infer']:.3f}")
    if "bn_infer_per_s" in r:
        show_bn(r)
    print(f"  warm-up (compile + capture) s: engine {r['engine_compile_s']:.1f}, raw {r['raw_compile_s']:.1f}, "
          f"inference {r['infer_compile_s']:.1f}")


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MB (Linux /proc; peak via getrusage)."""
    import resource
    cur = 0.0
    try:
        with open("/proc/self/status") as f:
            cur = next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
    except (OSError, StopIteration):
        pass
    return cur, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_check(rows: int, model_path: str | None = None, batch_rows: int = 10_000) -> None:
    """Run-Inference-style streaming: 64 feature columns arrive in RecordBatches of `batch_rows`
    (generated on the fly, as KNIME hands them over), predictions go out batch by batch."""
    import numpy as np
    import pyarrow as pa
    from uop_engine import GraphBuilder
    from uop_engine.model_bundle import ModelBundle
    from uop_engine.predict import iter_predict_table
    if model_path:
        bundle = ModelBundle.load(model_path)
    else:
        g = GraphBuilder("digits_like")
        h = g.conv_block(g.input((1, 8, 8)), out_channels=16)
        h = g.conv_block(h, out_channels=32, pool="max")
        g.linear(g.flatten(h), out_features=10)
        from uop_engine.compile import compile_graph
        bundle = ModelBundle.from_model(compile_graph(g.build()), task="classification", classes=list(range(10)))
    cols = [f"pixel_{i}" for i in range(64)]

    def source():
        rng = np.random.default_rng(0)
        for start in range(0, rows, batch_rows):
            n = min(batch_rows, rows - start)
            block = rng.random((n, 64), dtype=np.float32)
            yield pa.RecordBatch.from_arrays([pa.array(block[:, i]) for i in range(64)], names=cols)

    base, _ = rss_mb()
    print(f"streaming prediction over {rows:,} rows in batches of {batch_rows:,}; RSS at start {base:.0f} MB")
    t0, done, checkpoints = time.perf_counter(), 0, []
    for out in iter_predict_table(bundle, source(), feature_spec={"inputs": {"x": cols}}, batch_size=512,
                                  keep_columns=["pixel_0"]):
        done += out.num_rows
        if done % 100_000 == 0 or done == rows:
            cur, peak = rss_mb()
            checkpoints.append(cur)
            print(f"  {done:>9,} rows  {time.perf_counter() - t0:6.1f} s  RSS {cur:6.0f} MB  peak {peak:6.0f} MB")
    cur, peak = rss_mb()
    growth = checkpoints[-1] - checkpoints[0] if len(checkpoints) > 1 else 0.0
    print(f"rows/s {rows / (time.perf_counter() - t0):,.0f}; peak RSS {peak:.0f} MB; "
          f"RSS growth from the first 100k rows to the end {growth:+.0f} MB")
    print(f"memory_flat={'yes' if growth < 50 and peak < 1024 else 'NO'}")


# DEV=CPU:LLVM is left out: with the system's LLVM 15 tinygrad 0.14 emits IR it rejects
SWEEP = [("default (CPU:CLANG, JIT)", {}), ("BEAM=1", {"BEAM": "1"}), ("BEAM=2", {"BEAM": "2"}),
         ("DEV=CPU:X86", {"DEV": "CPU:X86"}), ("1 CPU thread", {"NUM_CPU_THREADS": "1"}), ("JIT=0", {"JIT": "0"})]
ENV_KEYS = ("BEAM", "DEV", "JIT", "NUM_CPU_THREADS")
START_ENV = {k: os.environ[k] for k in ENV_KEYS if k in os.environ}  # before tinygrad sets DEV itself


def sweep(args) -> None:
    rows = []
    for label, env in SWEEP:
        cmd = [sys.executable, __file__, "--steps", str(args.steps), "--rounds", str(args.rounds),
               "--infer-rows", str(args.infer_rows), "--json",
               "--label", label] + (["--bn-fold"] if args.bn_fold else [])
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, env=os.environ | env, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:  # BEAM's worker pool can hang when a candidate kernel crashes a worker
            print(f"[{label}] gave no result within {args.timeout} s")
            continue
        if p.returncode != 0:
            print(f"[{label}] failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        r["wall_s"] = time.perf_counter() - t0
        rows.append(r)
        show(r)
    print("\nsetting                 eng st/s  raw st/s  torch st/s  eng/raw  eng/torch  inf eng/torch  wall s")
    for r in rows:
        print(f"{r['setting']:<22} {r['engine_steps_per_s']:9.1f} {r['raw_steps_per_s']:9.1f} {r['torch_steps_per_s']:11.1f} "
              f"{r['engine_vs_raw']:8.3f} {r['engine_vs_torch_train']:10.3f} {r['engine_vs_torch_infer']:14.3f} {r['wall_s']:7.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50, help="timed training steps per round (after 3 warm-up steps)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timed rounds; the best of each is reported")
    ap.add_argument("--beam", type=int, default=None, help="tinygrad BEAM width (sets the BEAM env var)")
    ap.add_argument("--infer-rows", type=int, default=8192, help="rows for the batch-512 inference benchmark")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    ap.add_argument("--bn-fold", action="store_true", help="also time a BatchNorm variant with/without BN folding")
    ap.add_argument("--bn-only", action="store_true", help="only the conv+BN inference timing (folded, unfolded, torch)")
    ap.add_argument("--sweep", action="store_true", help="run each tinygrad setting in a subprocess")
    ap.add_argument("--timeout", type=int, default=900, help="--sweep: seconds allowed per setting")
    ap.add_argument("--memory", action="store_true", help="streaming prediction over --rows rows; peak RSS")
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--model", default=None, help="--memory: a saved .tuop bundle (default: a fresh 8x8 CNN)")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--label", default="this process", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.beam is not None and "tinygrad" not in sys.modules:
        os.environ["BEAM"] = str(args.beam)
        START_ENV["BEAM"] = str(args.beam)
    if args.memory:
        memory_check(args.rows, args.model)
        return
    if args.bn_only:
        if args.threads:
            import torch
            torch.set_num_threads(args.threads)
        show_bn(bench_bn_fold(data(args.infer_rows, seed=1)[0], args.rounds))
        return
    if args.sweep:
        sweep(args)
        return
    r = run(args)
    print(json.dumps(r)) if args.json else show(r)


if __name__ == "__main__":
    main()
