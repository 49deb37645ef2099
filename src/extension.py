"""TinyUOp Builder KNIME extension: the entry module KNIME imports (listed in knime.yml).

Only imports: every node module registers its nodes on import. tinygrad is not imported
here (nodes import it inside execute), so KNIME's node list loads fast.
"""
import nodes.op_nodes  # noqa: F401  one node per op and block, generated from the op table
import nodes.graph_nodes  # noqa: F401  Graph Input, Save as Block, User Block, JSON
import nodes.inspect_node  # noqa: F401  UOp Inspect
import nodes.user_blocks  # noqa: F401  saved user blocks as palette nodes
import nodes.generate_block_node  # noqa: F401  Generate Block (Automation)
import nodes.import_paper_node  # noqa: F401  Import Paper (Automation)
import nodes.onnx_nodes  # noqa: F401  ONNX Writer, Quantizer, Reader
import nodes.train_nodes  # noqa: F401  Train Model
import nodes.inference_node  # noqa: F401  Run Inference
import nodes.model_io_nodes  # noqa: F401  Model Writer, Model Reader
import nodes.experiment_nodes  # noqa: F401  Experiment Runs, Compare Runs
import nodes.eval_nodes  # noqa: F401  Classification Scorer, ROC / Precision-Recall, Regression Scorer
import nodes.detection_node  # noqa: F401  Detection Metrics (COCO mAP)
import nodes.crossval_node  # noqa: F401  Cross-Validation
