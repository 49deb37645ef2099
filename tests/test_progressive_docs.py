"""docs/progressive_enhancement.md: every level's example runs (as a user would run it) and
every excerpt on the page is still in its file; untagged Python blocks execute."""
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "progressive_enhancement.md"
EX = ROOT / "examples" / "progressive"
SCRIPTS = ["level0_plain.py", "level1_progress.py", "level2_logging.py", "level3_device.py", "level4_functions.py",
           "level5_pipeline.py"]
BLOCK = re.compile(r"```(python|toml)\n(.*?)```", re.S)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run all levels once, two at a time (each compiles its kernels on a CPU core)."""
    base = tmp_path_factory.mktemp("progressive")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "TINYUOP_PROGRESS": "plain", "TINYUOP_DEVICE": "CPU",
           "TINYUOP_STORE": str(base / "runs.sqlite"), "TINYUOP_WANDB": "0", "TINYUOP_MLFLOW": "0"}

    def one(name: str):
        args = [sys.executable, str(EX / name)] + ([str(base / "out5")] if name == "level5_pipeline.py" else [])
        return subprocess.run(args, capture_output=True, text=True, cwd=base, env=env, timeout=300)
    with ThreadPoolExecutor(2) as pool:
        results = dict(zip(SCRIPTS, pool.map(one, SCRIPTS)))
    return base, results


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_level_runs_and_learns(name, runs):
    base, results = runs
    r = results[name]
    assert r.returncode == 0, f"{name} failed:\n{r.stdout}\n{r.stderr[-3000:]}"
    acc = float(re.search(r"test_accuracy=([0-9.]+)", r.stdout).group(1))
    assert acc > 0.6, r.stdout  # 10 classes: chance is 0.1
    if name != "level0_plain.py":
        assert "epochs" in r.stderr or name == "level5_pipeline.py"  # the plain-text progress lines
    if name == "level5_pipeline.py":
        onnx_path = base / "out5" / "progressive_cnn.onnx"
        assert onnx_path.is_file() and (base / "out5" / "pipeline_summary.json").is_file()
        assert "[progressive] step 2/4: train (train_cnn)" in r.stderr and "epochs: 5/5" in r.stderr


def test_levels_with_a_logger_record_their_runs_in_the_store(runs):
    from uop_engine.store import ExperimentStore
    base, results = runs
    st = ExperimentStore(str(base / "runs.sqlite"))
    for name in ("level2_logging.py", "level3_device.py", "level4_functions.py"):
        out = results[name].stdout
        rid = int(re.search(r"run (\d+)[: ]", out).group(1))
        run = st.get_run(rid)
        assert (run["project"], run["status"]) == ("progressive", "finished"), name
        assert run["params"]["epochs"] == 5 and run["params"]["batch"] == 50, name
        # the printed per-epoch losses are the logged history, one value per epoch at steps 0..4
        printed = re.findall(r"epoch \d+: loss ([0-9.]+)", out)
        hist = st.metric_history(rid, "loss")
        assert [m["step"] for m in hist] == list(range(5)), name
        if printed:
            assert [f"{m['value']:.4f}" for m in hist] == printed, name
        assert hist[-1]["value"] < hist[0]["value"], name  # it learned
        acc = float(re.search(r"test_accuracy=([0-9.]+)", out).group(1))
        assert st.last_metrics(rid)["test_accuracy"] == pytest.approx(acc, abs=5e-4), name
    # level 5 runs as a pipeline: one parent run, one child run per step of the TOML file
    rid5 = int(re.search(r"run (\d+)[: ]", results["level5_pipeline.py"].stdout).group(1))
    parent = st.get_run(rid5)
    assert parent["status"] == "finished" and parent["tags"]["kind"] == "pipeline"
    assert [st.get_run(c)["name"] for c in parent["children"]] == ["data", "train", "evaluate", "export"]


def test_every_excerpt_in_the_doc_is_in_its_example_file():
    text = DOC.read_text()
    tagged = 0
    for lang, body in BLOCK.findall(text):
        first, _, rest = body.partition("\n")
        m = re.match(r"# (examples/progressive/\S+)$", first)
        if not m:
            continue
        tagged += 1
        src = (ROOT / m.group(1)).read_text()
        assert rest in src, f"excerpt for {m.group(1)} is out of date:\n{rest}"
    assert tagged >= 10
    for name in SCRIPTS + ["level5_pipeline.toml"]:
        assert f"`{name}`" in text or name in text, f"{name} is not mentioned in the doc"


def test_untagged_python_blocks_in_the_doc_execute():
    blocks = [b for lang, b in BLOCK.findall(DOC.read_text()) if lang == "python" and not b.startswith("# examples/")]
    assert blocks
    for b in blocks:
        exec(compile(b, str(DOC), "exec"), {})
