"""Pipelines: `@pipeline_process` step types, TOML pipeline files and their runner.

    from uop_engine.pipeline import pipeline_process, load_pipeline, run_pipeline
"""
from .config import PipelineConfig, StepConfig, load_pipeline, loads_pipeline
from .dataset import Dataset
from .process import (REGISTRY, Field, PipelineConfigError, Process, get_process, list_registered, pipeline_process,
                      register, unregister)
from .runner import PipelineResult, PipelineRunError, run_pipeline

__all__ = ["pipeline_process", "register", "unregister", "list_registered", "get_process", "Process", "Field",
           "REGISTRY", "PipelineConfigError", "PipelineRunError", "PipelineConfig", "StepConfig", "PipelineResult",
           "Dataset", "load_pipeline", "loads_pipeline", "run_pipeline"]
