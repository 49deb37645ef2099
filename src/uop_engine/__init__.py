"""TinyUOp engine: graph IR, op table, shape inference and compilation over tinygrad.

Pure Python; tinygrad is imported only when a graph is compiled or run.
"""
from .errors import GraphError, DataError
from .graph import Graph, Node, merge, split_ref
from .optable import OPS, OpDef, TT, CATEGORIES, get_op, list_ops, register
from .params import Param
from .infer import analyze, summarize, fmt_shape
from .builder import GraphBuilder
from .compile import compile_graph, CompiledModel
from .losses import LOSSES
from .optim import OPTIMIZERS, SCHEDULES
from .train import TrainConfig, TrainResult, Trainer, train, ConfigError, TrainingError, TrainingCancelled
from .predict import (Predictor, predict, iter_predict, predict_table, iter_predict_table, outputs_to_columns,
                      fold_batchnorm)
from .model_bundle import ModelBundle, BundleError
from .checkpoint import (CheckpointError, save_checkpoint, load_checkpoint, list_checkpoints, latest_checkpoint,
                         inspect_checkpoint)
from .onnx_export import export_onnx, export_onnx_bytes, save_onnx, onnx_metadata
from .onnx_import import import_onnx, unsupported_ops
from .data import FeatureSpec, infer_feature_spec, iter_arrays, table_to_arrays
from .table_train import train_table
from .datasets import digits_table, split_table
from .metrics import classification_report, roc_report, regression_report
from .detection import detection_metrics
from .crossval import cross_validate, cross_validate_table, CVResult
from .store import ExperimentStore, record_training, record_evaluation
from .compare import RunCurves, summary_rows, grouped_rows, curves_png

__all__ = ["GraphError", "DataError", "Graph", "Node", "merge", "split_ref", "OPS", "OpDef", "TT", "CATEGORIES",
           "get_op", "list_ops", "register", "Param", "analyze", "summarize", "fmt_shape", "GraphBuilder",
           "compile_graph", "CompiledModel", "LOSSES", "OPTIMIZERS", "SCHEDULES", "TrainConfig", "TrainResult",
           "Trainer", "train", "ConfigError", "TrainingError", "TrainingCancelled", "Predictor", "predict",
           "iter_predict", "predict_table", "iter_predict_table", "outputs_to_columns", "fold_batchnorm",
           "ModelBundle", "BundleError", "CheckpointError", "save_checkpoint", "load_checkpoint", "list_checkpoints",
           "latest_checkpoint", "inspect_checkpoint", "export_onnx", "export_onnx_bytes", "save_onnx", "onnx_metadata",
           "import_onnx", "unsupported_ops", "FeatureSpec", "infer_feature_spec", "iter_arrays", "table_to_arrays",
           "train_table", "digits_table", "split_table", "classification_report", "roc_report", "regression_report",
           "detection_metrics", "cross_validate", "cross_validate_table", "CVResult", "ExperimentStore",
           "record_training", "record_evaluation", "RunCurves", "summary_rows", "grouped_rows", "curves_png"]
