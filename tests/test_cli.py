"""The `tinyuop` command line as CI uses it: subprocesses, exit codes (0 ok, 2 usage or
validation error on stderr, 1 runtime failure), files parsed back."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from uop_engine import Graph, specs

ROOT = Path(__file__).resolve().parent.parent
EXE = Path(sys.executable).with_name("tinyuop")


def tinyuop(*args, cwd=None, env=None, timeout=300):
    cmd = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "uop_engine.cli"]
    e = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TINYUOP_PROGRESS": "plain", **(env or {})}
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, cwd=cwd or ROOT, env=e,
                          timeout=timeout)


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    net = specs.Sequential([specs.ConvBlock(out_channels=4), specs.Flatten(), specs.Linear(out_features=10)])
    p = tmp_path_factory.mktemp("g") / "cnn.json"
    p.write_text(net.to_graph(input_shape=(1, 8, 8), name="cnn", output_name="logits").to_json())
    return p


def test_help_everywhere_and_module_entry_point():
    r = tinyuop("--help")
    assert r.returncode == 0 and "run" in r.stdout and "Exit codes" in r.stdout
    for sub in ("run", "train", "eval", "export", "runs", "inspect", "steps"):
        r = tinyuop(sub, "--help")
        assert r.returncode == 0 and "usage: tinyuop " + sub in r.stdout, sub
    m = subprocess.run([sys.executable, "-m", "uop_engine.cli", "inspect", "--help"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert m.returncode == 0 and "--kernels" in m.stdout


def test_usage_errors_exit_2_with_the_message_on_stderr(graph_file, tmp_path):
    r = tinyuop("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = tinyuop("inspect", tmp_path / "missing.json")
    assert r.returncode == 2 and "missing.json' does not exist" in r.stderr and r.stdout == ""
    r = tinyuop("runs", "compare", "1")
    assert r.returncode == 2 and "at least two run ids" in r.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[[steps]]\nname = 'a'\ntype = 'nope'\n")
    r = tinyuop("run", bad, "--out", tmp_path / "o")
    assert r.returncode == 2 and "step 'a', key 'type': unknown step type 'nope'" in r.stderr
    assert not (tmp_path / "o").exists()  # nothing ran
    r = tinyuop("train", graph_file, "--set", "lr")
    assert r.returncode == 2 and "key=value" in r.stderr


def test_inspect_prints_shapes_params_and_the_graph_hash(graph_file):
    g = Graph.from_json(graph_file.read_text())
    r = tinyuop("inspect", graph_file)
    assert r.returncode == 0, r.stderr
    assert f"hash {g.hash()}" in r.stdout and "(N, 4, 8, 8)" in r.stdout and "output logits: (N, 10)" in r.stdout
    info = json.loads(tinyuop("inspect", graph_file, "--json").stdout)
    assert info["hash"] == g.hash() and info["outputs"] == {"logits": [None, 10]}
    assert info["n_params"] == sum(n["params"] for n in info["nodes"]) == (4 * 9 + 4 + 4) + 256 * 10 + 10
    r = tinyuop("inspect", graph_file, "--kernels", "--batch", "2", "--json")
    k = json.loads(r.stdout)["kernels"]
    assert r.returncode == 0 and k["summary"]["kernel_count"] >= 1 and len(k["kernels"]) >= 1


def test_export_a_graph_to_onnx_runs_in_onnxruntime(graph_file, tmp_path):
    import onnxruntime as ort
    from uop_engine import compile_graph
    out = tmp_path / "m.onnx"
    r = tinyuop("export", graph_file, "--out", out)
    assert r.returncode == 0, r.stderr
    x = np.random.default_rng(0).standard_normal((3, 1, 8, 8)).astype(np.float32)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    ref = compile_graph(Graph.from_json(graph_file.read_text()), seed=0)(x).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)


def test_steps_lists_built_in_step_types_with_their_parameters():
    r = tinyuop("steps")
    assert r.returncode == 0
    for name in ("dataset (built-in)", "train (built-in)", "evaluate (built-in)", "export_onnx (built-in)",
                 "cross_validate (built-in)", "infer (built-in)", "epochs: int (default 10)"):
        assert name in r.stdout
    r = tinyuop("steps", "trian")
    assert r.returncode == 2 and "did you mean train" in r.stderr


def _check_digits_run(out: Path, r, min_accuracy: float):
    import onnxruntime as ort
    from uop_engine.model_bundle import ModelBundle
    from uop_engine.predict import predict
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    for f in ("train.tuop", "evaluate_metrics.json", "digits_cnn.onnx", "pipeline_summary.json"):
        assert (out / f).is_file(), f
    summary = json.loads((out / "pipeline_summary.json").read_text())
    assert summary["status"] == "finished" and summary["order"] == ["data", "train", "evaluate", "export"]
    metrics = json.loads((out / "evaluate_metrics.json").read_text())
    assert metrics["accuracy"] >= min_accuracy and len(metrics["confusion_matrix"]) == 10
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["n"]
    bundle = ModelBundle.load(out / "train.tuop")
    assert bundle.classes == list(range(10)) and bundle.graph.inputs()[0].params["shape"] == [1, 8, 8]
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    sess = ort.InferenceSession(str(out / "digits_cnn.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x})[0], predict(bundle, x),
                               rtol=1e-4, atol=1e-4)
    assert "evaluate" in r.stdout and "accuracy=" in r.stdout


def test_digits_pipeline_fast_variant_trains_evaluates_and_exports_reproducibly(tmp_path):
    from uop_engine.model_bundle import ModelBundle
    runs = []
    for k in range(2):  # the README's main command, shortened: the same seed gives the same bits
        out = tmp_path / f"out{k}"
        r = tinyuop("run", ROOT / "examples" / "digits.toml", "--out", out, "--store", tmp_path / "s.sqlite",
                    "--set", "data.limit=400", "--set", "train.epochs=2", cwd=tmp_path)
        _check_digits_run(out, r, 0.3)
        runs.append((json.loads((out / "evaluate_metrics.json").read_text()), ModelBundle.load(out / "train.tuop")))
    (m0, b0), (m1, b1) = runs
    assert m0 == m1
    assert b0.weights.keys() == b1.weights.keys()
    for k in b0.weights:
        np.testing.assert_array_equal(b0.weights[k], b1.weights[k])


@pytest.mark.slow
def test_digits_pipeline_full_reaches_high_accuracy(tmp_path):
    r = tinyuop("run", ROOT / "examples" / "digits.toml", "--out", tmp_path / "out", "--store", tmp_path / "s.sqlite",
                cwd=tmp_path, timeout=900)
    _check_digits_run(tmp_path / "out", r, 0.97)  # the bar; the run reaches ~0.989


def test_train_eval_commands_share_the_split_and_a_failing_step_exits_1(graph_file, tmp_path):
    common = ["--limit", "300", "--store", tmp_path / "s.sqlite"]
    r = tinyuop("train", graph_file, "--epochs", "1", "--out", tmp_path / "t", *common, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    acc_train_cmd = float(re.search(r"evaluate \(.*?accuracy=([0-9.]+)", r.stdout).group(1))
    r = tinyuop("eval", tmp_path / "t" / "train.tuop", "--json", "--out", tmp_path / "e", *common, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)["accuracy"] == pytest.approx(acc_train_cmd, abs=1e-3)
    # a graph whose output does not fit the 10 classes fails while running: exit 1, step named
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"op": "flatten"}, {"op": "linear", "out_features": 3}]))
    r = tinyuop("train", bad, "--epochs", "1", "--out", tmp_path / "b", *common, cwd=tmp_path)
    assert r.returncode == 1 and "step 'train' failed" in r.stderr


# ---- the experiment store from the command line ------------------------------------------------------
def _table(text: str) -> list[dict]:
    """A `runs` text table parsed back by its column positions (the dashes line under the header)."""
    lines = text.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("--"))
    header, dashes = lines[i - 1], lines[i]
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", dashes)]
    spans[-1] = (spans[-1][0], None)  # the last column may run past its dashes

    def cells(line):
        return [line[a:b].strip() for a, b in spans]
    names = cells(header)
    rows = []
    for line in lines[i + 1:]:
        if not line.strip():
            break
        rows.append(dict(zip(names, cells(line))))
    return rows


@pytest.fixture
def runs_store(tmp_path):
    from uop_engine.store import ExperimentStore
    path = tmp_path / "runs.sqlite"
    st = ExperimentStore(path)
    ids = {}
    for name, lr, seed, losses in (("slow", 0.01, 0, [2.0, 1.5, 1.2]), ("fast", 0.1, 0, [2.0, 0.9, 0.5]),
                                   ("fast_s1", 0.1, 1, [2.1, 1.0, 0.7])):
        rid = st.start_run("cmp", name=name, params={"lr": lr, "seed": seed}, seed=seed)
        for step, loss in enumerate(losses):
            st.log_metrics(rid, {"loss": loss, "accuracy": 1 - loss / 4}, step=step)
        st.end_run(rid)
        ids[name] = rid
    other = st.start_run("elsewhere", name="failed_one")
    st.end_run(other, "failed")
    return path, ids


def test_runs_list_show_and_compare(runs_store):
    path, ids = runs_store
    r = tinyuop("runs", "list", "--store", path)
    assert r.returncode == 0, r.stderr
    rows = _table(r.stdout)
    assert [row["name"] for row in rows] == ["failed_one", "fast_s1", "fast", "slow"]  # newest first
    assert [row["status"] for row in rows] == ["failed", "finished", "finished", "finished"]
    slow = next(row for row in rows if row["name"] == "slow")
    assert slow["id"] == str(ids["slow"]) and slow["project"] == "cmp" and slow["last metrics"] == \
        "accuracy=0.7, loss=1.2"
    listed = json.loads(tinyuop("runs", "--store", path, "--project", "cmp", "--json").stdout)
    assert [x["id"] for x in listed] == [ids["fast_s1"], ids["fast"], ids["slow"]]
    assert listed[0]["metrics"] == {"accuracy": pytest.approx(0.825), "loss": 0.7}

    r = tinyuop("runs", "show", ids["fast"], "--store", path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"run {ids['fast']}: fast (project cmp, finished)")
    assert "params {\"lr\": 0.1, \"seed\": 0}" in r.stdout and "seed 0" in r.stdout
    assert "loss: last 0.5, best 0.5 at step 2, min 0.5, max 2 (3 values)" in r.stdout
    shown = json.loads(tinyuop("runs", "show", ids["fast"], "--store", path, "--json").stdout)
    assert shown["history"]["loss"] == [[0, 2.0], [1, 0.9], [2, 0.5]] and shown["status"] == "finished"

    r = tinyuop("runs", "compare", ids["slow"], ids["fast"], ids["fast_s1"], "--store", path)
    assert r.returncode == 0, r.stderr
    table = {(row["run"], row["metric"]): row for row in _table(r.stdout)}
    assert table[(str(ids["slow"]), "loss")]["best is"] == "min" and table[(str(ids["slow"]), "loss")]["best"] == "1.2"
    assert table[(str(ids["fast"]), "accuracy")]["best is"] == "max"
    assert float(table[(str(ids["fast"]), "accuracy")]["best"]) == pytest.approx(0.875)
    assert "across seeds (best value per run):" in r.stdout  # fast and fast_s1 differ only in seed
    data = json.loads(tinyuop("runs", "compare", ids["slow"], ids["fast"], ids["fast_s1"], "--store", path,
                              "--json").stdout)
    (group,) = [g for g in data["groups"] if g["n"] == 2 and g["metric"] == "loss"]
    assert group["runs"] == f"{ids['fast']},{ids['fast_s1']}"
    assert group["mean"] == pytest.approx(0.6) and group["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    r = tinyuop("runs", "show", 999, "--store", path)
    assert r.returncode == 2 and "no run 999" in r.stderr


def test_a_reference_failing_after_steps_ran_exits_1(tmp_path):
    """The file validates (`items` is a declared output); only after `make` ran does it show that
    `items` has no key `first`: a run failure (exit 1), not 'fails before anything runs' (2)."""
    (tmp_path / "late_steps.py").write_text(
        "from uop_engine.pipeline import pipeline_process\n\n"
        "@pipeline_process(name='cli_make', outputs=('items',))\n"
        "def make(n: int = 2, ctx=None) -> dict:\n"
        "    (ctx.out_dir / 'make_ran.txt').write_text('yes')\n"
        "    return {'items': list(range(n))}\n\n"
        "@pipeline_process(name='cli_use')\n"
        "def use(value: int = 0) -> dict:\n"
        "    return {'value': value}\n")
    p = tmp_path / "late.toml"
    p.write_text("imports = ['late_steps.py']\n[[steps]]\nname = 'make'\ntype = 'cli_make'\n"
                 "[[steps]]\nname = 'use'\ntype = 'cli_use'\nparams = { value = '${make.items.first}' }\n")
    assert tinyuop("run", p, "--check", cwd=tmp_path).returncode == 0  # valid before running
    r = tinyuop("run", p, "--out", tmp_path / "o", "--store", tmp_path / "s.sqlite", cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert "step 'use' failed: its parameters could not be resolved after the earlier steps ran" in r.stderr
    assert "key 'params.value': step 'make' has no output 'items.first'" in r.stderr
    assert (tmp_path / "o" / "make_ran.txt").read_text() == "yes"
    assert json.loads((tmp_path / "o" / "pipeline_summary.json").read_text())["status"] == "failed"
