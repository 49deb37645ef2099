"""Level 5: run the pipeline file from Python (the same as `tinyuop run level5_pipeline.toml`).
Every step is validated before any runs, and recorded in the experiment store as a child
run of the pipeline's run.

    python examples/progressive/level5_pipeline.py [OUT_DIR]
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))

from uop_engine.pipeline import run_pipeline  # noqa: E402

if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    result = run_pipeline(os.path.join(here, "level5_pipeline.toml"), out=sys.argv[1] if len(sys.argv) > 1 else None)
    acc = result["evaluate"]["metrics"]["accuracy"]
    print(f"run {result.run_id}: test_accuracy={acc:.3f}, onnx={result['export']['path']}")
