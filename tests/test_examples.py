"""The quick-start example (build, infer shapes, compile, forward pass on real digits, UOp/kernel
diagnostics) runs as a user would run it and prints what it promises."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_quickstart_prints_shapes_forward_pass_and_kernels():
    p = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "quickstart.py")], capture_output=True,
                       text=True, timeout=300, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert re.search(r"graph 'digits_cnn' hash=[0-9a-f]+ nodes=\d+ parameters=\d+", out)
    assert "input  image: (N, 1, 8, 8) float32" in out
    assert "output logits: (N, 10) float32" in out
    m = re.search(r"forward pass on 32 real digits -> logits \(32, 10\), finite=True", out)
    assert m, out
    n_uops, n_kernels = map(int, re.search(r"tinygrad: (\d+) UOps -> (\d+) kernels", out).groups())
    assert n_uops > 0 and n_kernels > 0
    assert len(re.findall(r"^  kernel \d+: ", out, re.M)) == n_kernels
    assert "source of kernel" in out
