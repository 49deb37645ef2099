"""Script helpers standalone and inside a pipeline context: progress bars (rich, tqdm, plain) and
device selection with clear errors. The logger (store, pipelines, MLflow) is tested in
tests/test_logger.py; here only that it follows the pipeline context like the other helpers."""
import io
import os
import subprocess
import sys

import pytest

from uop_engine.device import DeviceError, DeviceManager
from uop_engine.helpers import PipelineContext, current_context, pipeline_context, progress_bar, progress_task
from uop_engine.progress import ProgressDisplay, pick_backend

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("backend", ["rich", "tqdm", "plain", "none"])
def test_progress_bar_yields_every_item_with_each_backend(backend, capsys):
    assert list(progress_bar(range(7), desc="count", backend=backend)) == list(range(7))
    assert list(progress_bar((x for x in "abc"), desc="gen", backend=backend)) == ["a", "b", "c"]
    err = capsys.readouterr().err
    if backend == "plain":
        assert "count: 7/7 (100%)" in err and "done" in err and "gen: 3" in err
    elif backend == "none":
        assert err == ""


def test_plain_lines_about_every_tenth_and_task_callback_percentages():
    buf = io.StringIO()
    d = ProgressDisplay("plain", stream=buf)
    assert sum(d.track(range(100), desc="rows")) == 4950
    lines = buf.getvalue().splitlines()
    assert len(lines) == 10 and lines[0].startswith("rows: 10/100 (10%)") and lines[-1].startswith("rows: 100/100")
    buf.truncate(0), buf.seek(0)
    task = d.open("fit", None)
    for k in range(5):
        task((k + 1) / 5, f"loss {k}")
    task.close()
    out = buf.getvalue().splitlines()
    assert out[0].startswith("fit: 20% loss 0") and out[-1].startswith("fit: 100% loss 4") and "done" in out[-1]


def test_backend_choice_from_argument_or_environment(monkeypatch):
    monkeypatch.setenv("TINYUOP_PROGRESS", "plain")
    assert pick_backend() == "plain" and pick_backend("tqdm") == "tqdm"
    monkeypatch.setenv("TINYUOP_PROGRESS", "fancy")
    with pytest.raises(ValueError, match=r"'fancy' is not one of rich, tqdm, plain, none \(from \$TINYUOP_PROGRESS\)"):
        pick_backend()
    monkeypatch.delenv("TINYUOP_PROGRESS")
    assert pick_backend() == "rich"  # installed in the test environment


def test_fallbacks_when_rich_and_tqdm_are_missing():
    code = ("import sys; sys.modules['rich'] = None; sys.modules['tqdm'] = None\n"
            "from uop_engine.progress import pick_backend, progress_bar\n"
            "assert pick_backend() == 'plain'\n"
            "print(sum(progress_bar(range(4), desc='no libs')))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src"), "TINYUOP_PROGRESS": ""})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "6" and "no libs: 4/4 (100%)" in r.stderr


def test_bars_inside_a_pipeline_attach_to_its_shared_display():
    buf = io.StringIO()
    display = ProgressDisplay("plain", stream=buf)
    display.prefix = "[p] "
    ctx = PipelineContext("p", step="s1", progress=display)
    assert current_context() is None
    with pipeline_context(ctx):
        assert current_context() is ctx
        assert list(progress_bar(range(3), desc="inner")) == [0, 1, 2]
        with progress_task("cb") as t:
            t(1.0, "ok")
    assert current_context() is None
    text = buf.getvalue()
    assert "[p] inner: 3/3 (100%)" in text and "[p] cb: 100% ok" in text


def test_device_manager_picks_overrides_and_explains_errors(monkeypatch):
    from tinygrad import Device
    dm = DeviceManager()
    monkeypatch.delenv("TINYUOP_DEVICE", raising=False)
    assert dm.get_device() == Device.DEFAULT and Device.DEFAULT in dm.available()
    assert dm.get_device("cpu") == "CPU" and dm.describe()["source"] == "auto"
    monkeypatch.setenv("TINYUOP_DEVICE", "cpu")
    assert dm.get_device() == "CPU" and dm.describe()["source"] == "$TINYUOP_DEVICE"
    monkeypatch.setenv("TINYUOP_DEVICE", "TPU9")
    with pytest.raises(DeviceError, match=r"unknown device 'TPU9' \(from \$TINYUOP_DEVICE\).*available here: .*CPU"):
        dm.get_device()
    monkeypatch.delenv("TINYUOP_DEVICE")
    missing = next((d for d in ("METAL", "AMD", "NV", "CUDA", "QCOM", "CL") if d not in dm.available()), None)
    if missing:
        with pytest.raises(DeviceError, match=rf"device '{missing}' \(asked for\) cannot be opened here.*available"):
            dm.get_device(missing)
    assert dm.set_device("cpu") == "CPU" and dm.get_device() == "CPU" and dm.describe()["source"] == "set_device"
    with pipeline_context(PipelineContext("p", device="PIPEDEV")):
        assert dm.get_device() == "PIPEDEV" and dm.describe()["source"] == "pipeline"
    assert dm.set_device("auto") is None


def test_logger_follows_the_pipeline_context(tmp_path, monkeypatch):
    from uop_engine.helpers import Logger, RunHandle
    from uop_engine.store import ExperimentStore
    for var in ("WANDB_API_KEY", "WANDB_MODE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    st = ExperimentStore(tmp_path / "runs.sqlite")
    parent = RunHandle.start(st, "p", "p")
    step_run = parent.child("s1", {"epochs": 2})
    lg = Logger()
    with pipeline_context(PipelineContext("p", step="s1", run=step_run, parent_run=parent)):
        assert lg.init(config={"lr": 0.5}) is step_run and lg.run_id == step_run.id
        lg.log({"loss": 0.75}, step=1)
        lg.finish()  # the pipeline ends its runs, not the script
    assert lg.run is None and st.get_run(step_run.id)["status"] == "running"
    assert st.get_run(step_run.id)["params"] == {"epochs": 2, "lr": 0.5}
    assert [(m["step"], m["value"]) for m in st.metric_history(step_run.id, "loss")] == [(1, 0.75)]
    assert st.metric_keys(parent.id) == []
