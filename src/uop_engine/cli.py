"""The `tinyuop` command line (also `python -m uop_engine.cli`).

    tinyuop run examples/digits.toml --out out/digits      # a pipeline file
    tinyuop train cnn.json --data digits --epochs 5        # train a graph, save a model bundle
    tinyuop eval out/train/train.tuop --data digits        # score a saved model
    tinyuop export out/train/train.tuop --out model.onnx   # ONNX
    tinyuop runs / tinyuop runs compare 3 7                # the experiment store
    tinyuop runs export-mlflow 3 --out mlruns              # a run and its steps for MLflow
    tinyuop inspect cnn.json --kernels                     # shapes, parameters, hash, UOps/kernels

Exit codes: 0 ok; 2 usage or validation error (nothing ran; the message is on stderr);
1 a failure while running (including a `${step.key}` reference that cannot be resolved once
its step has run). Set TINYUOP_DEBUG=1 for tracebacks.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Sequence

from . import cli_commands as cmd
from .cli_commands import UsageError


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean 'fix the input' (exit 2) when raised before anything ran."""
    from .device import DeviceError
    from .errors import DataError, GraphError
    from .model_bundle import BundleError
    from .pipeline import PipelineConfigError
    from .store import StoreError
    from .train import ConfigError
    return (UsageError, PipelineConfigError, GraphError, DataError, ConfigError, DeviceError, BundleError,
            StoreError, FileNotFoundError, IsADirectoryError)


def _add_common(p: argparse.ArgumentParser, out_help: str) -> None:
    p.add_argument("--out", metavar="DIR", help=out_help)
    p.add_argument("--store", metavar="PATH", help="experiment store file (default: $TINYUOP_STORE or the store's default)")
    p.add_argument("--device", metavar="DEV", help="tinygrad device, e.g. CPU, CUDA (default: $TINYUOP_DEVICE or the best available)")
    p.add_argument("--progress", choices=("rich", "tqdm", "plain", "none"), help="progress display (default: $TINYUOP_PROGRESS or rich)")


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="digits", metavar="NAME|FILE",
                   help="'digits' (built in) or a Parquet/CSV/Arrow file (default: digits)")
    p.add_argument("--target", default="label", help="target column of a data file (default: label)")
    p.add_argument("--test-size", type=float, default=0.2, help="share of rows held out for testing (default: 0.2)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N rows (0 = all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and the training (default: 0)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="tinyuop", description="TinyUOp Builder: tinygrad graphs from the command line.",
                                 epilog="Exit codes: 0 ok, 2 usage/validation error, 1 runtime failure.")
    ap.add_argument("--version", action="version", version=f"%(prog)s {cmd.version()}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("run", help="run a pipeline file (TOML)", description="Validate a pipeline file completely, "
                       "then run its steps in dependency order, recording every step in the experiment store.")
    p.add_argument("pipeline", metavar="PIPELINE.toml")
    _add_common(p, "artifacts folder (overrides the file's 'out'; default out/<pipeline name>)")
    p.add_argument("--set", action="append", default=[], metavar="STEP.KEY=VALUE",
                   help="override a step parameter, e.g. --set train.epochs=1 (TOML value syntax; repeatable)")
    p.add_argument("--check", action="store_true", help="only validate the file and print the run order")
    p.set_defaults(func=cmd.run)

    p = sub.add_parser("train", help="train a graph on a dataset and save a model bundle",
                       description="Train GRAPH (graph JSON, spec JSON or layer list JSON) on a dataset. Training "
                       "settings are TrainConfig fields: --epochs, --lr, ... or --set key=value.")
    p.add_argument("graph", metavar="GRAPH.json")
    _data_args(p)
    p.add_argument("--epochs", type=int, help="epochs (TrainConfig default 10)")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--batch-size", type=int, help="batch size")
    p.add_argument("--optimizer", help="sgd | adam | adamw | lamb")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="any TrainConfig field (repeatable)")
    _add_common(p, "artifacts folder (default out/train)")
    p.set_defaults(func=cmd.train)

    p = sub.add_parser("eval", help="score a saved model on a dataset's test split",
                       description="Evaluate MODEL.tuop; use the same --data/--test-size/--seed as for training "
                       "so the test split is the same.")
    p.add_argument("model", metavar="MODEL.tuop")
    _data_args(p)
    p.add_argument("--split", default="test", choices=("test", "train", "all"))
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    _add_common(p, "artifacts folder (default out/eval)")
    p.set_defaults(func=cmd.evaluate)

    p = sub.add_parser("export", help="export a saved model (or a graph) to ONNX",
                       description="Write MODEL.tuop (trained weights) or GRAPH.json (seeded weights) as ONNX.")
    p.add_argument("model", metavar="MODEL.tuop|GRAPH.json")
    p.add_argument("--out", metavar="FILE.onnx", help="output file (default: next to the model, .onnx)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    p.add_argument("--static-batch", type=int, metavar="N", help="fix the batch size to N (default: dynamic)")
    p.set_defaults(func=cmd.export)

    p = sub.add_parser("runs", help="list, show, compare or export runs in the experiment store",
                       description="tinyuop runs [list]  |  tinyuop runs show ID  |  tinyuop runs compare ID ID [...]  "
                       "|  tinyuop runs export-mlflow ID [...] --out DIR: write runs (with their child runs) in "
                       "MLflow's file-store layout; view them with MLFLOW_ALLOW_FILE_STORE=true mlflow ui "
                       "--backend-store-uri DIR")
    p.add_argument("action", nargs="?", default="list", choices=("list", "show", "compare", "export-mlflow"))
    p.add_argument("ids", nargs="*", metavar="ID")
    p.add_argument("--store", metavar="PATH", help="experiment store file")
    p.add_argument("--out", metavar="DIR", default="mlruns", help="export-mlflow: the MLflow folder (default mlruns)")
    p.add_argument("--no-children", action="store_true", help="export-mlflow: leave out the child runs (pipeline "
                   "steps)")
    p.add_argument("--project", help="only runs of this project (pipeline name)")
    p.add_argument("--limit", type=int, default=20, help="newest N runs (default 20)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd.runs)

    p = sub.add_parser("inspect", help="summarise a graph: shapes, parameters, hash (and UOps/kernels)",
                       description="Shapes of every node (N = batch), parameter counts and the content hash of a "
                       "graph JSON or model bundle; --kernels compiles it and reports UOps and kernels.")
    p.add_argument("graph", metavar="GRAPH.json|MODEL.tuop")
    p.add_argument("--kernels", action="store_true", help="compile with tinygrad and list UOps and kernels")
    p.add_argument("--batch", type=int, default=1, help="batch size for --kernels (default 1)")
    p.add_argument("--device", metavar="DEV", help="device for --kernels")
    p.add_argument("--source", type=int, metavar="K", help="with --kernels: print the source of kernel K")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd.inspect)

    p = sub.add_parser("steps", help="list pipeline step types and their parameters")
    p.add_argument("name", nargs="?", help="one step type")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE|FILE.py",
                   help="import a module with @pipeline_process functions first")
    p.set_defaults(func=cmd.steps)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on usage errors, 0 for --help
    debug = os.environ.get("TINYUOP_DEBUG", "") not in ("", "0")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("tinyuop: interrupted", file=sys.stderr)
        return 130
    except BaseException as e:  # map to the documented exit codes; SystemExit passes through
        if isinstance(e, SystemExit):
            raise
        if debug:
            traceback.print_exc()
        if isinstance(e, _usage_errors()):
            print(f"tinyuop {args.command}: error: {e}", file=sys.stderr)
            return 2
        print(f"tinyuop {args.command}: failed: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
