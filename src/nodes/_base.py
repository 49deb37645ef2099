"""Categories, icons and shared checks for every TinyUOp node."""
from __future__ import annotations

import knime.extension as knext

from uop_engine.errors import GraphError
from uop_engine.optable import CATEGORIES

EXTENSION_ID = "org.tinyuop.builder"

main_category = knext.category(
    path="/community", level_id="tinyuop", name="TinyUOp Builder",
    description="Build, train, run, evaluate and export tinygrad neural networks.", icon="icons/tinyuop.png")

# one palette sub-category per op-table category, plus the lifecycle ones
op_categories = {key: knext.category(path=main_category, level_id=key, name=label, description=desc,
                                     icon=f"icons/{key}.png") for key, (label, desc) in CATEGORIES.items()}
graph_category = knext.category(path=main_category, level_id="graph", name="Graph Tools",
                                description="Inspect, save and load graphs.", icon="icons/graph.png")
# lifecycle categories: each node module picks one of these
train_category = knext.category(path=main_category, level_id="train", name="Train & Run",
                                description="Train models, run inference, read and write models.",
                                icon="icons/train.png")
evaluation_category = knext.category(path=main_category, level_id="evaluation", name="Evaluation",
                                     description="Score predictions: classification, ROC, regression, "
                                                 "cross-validation, detection mAP.", icon="icons/evaluation.png")
experiments_category = knext.category(path=main_category, level_id="experiments", name="Experiments",
                                      description="Browse and compare runs recorded in the experiment store.",
                                      icon="icons/experiments.png")
onnx_category = knext.category(path=main_category, level_id="onnx", name="ONNX",
                               description="Export, quantise and import ONNX models.", icon="icons/onnx.png")
automation_category = knext.category(path=main_category, level_id="automation", name="Automation",
                                     description="LLM-assisted nodes: Import Paper, Generate Block.",
                                     icon="icons/llm.png")


def check_canceled(ctx) -> None:
    if hasattr(ctx, "is_canceled") and ctx.is_canceled():
        raise RuntimeError("Execution canceled.")


def user_error(e: GraphError) -> Exception:
    """Turn an engine error into what KNIME shows: parameter problems as invalid settings."""
    if e.param is not None:
        return knext.InvalidParametersError(str(e))
    return ValueError(str(e))
