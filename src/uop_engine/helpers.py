"""Script helpers that also work inside a pipeline (progressive enhancement):

    from uop_engine.helpers import progress_bar, logger, device_manager
    logger.init(project="digits", config={"epochs": 3})
    device = device_manager.get_device()
    for epoch in progress_bar(range(3), desc="epochs"):
        logger.log({"loss": 1.0 / (epoch + 1)}, step=epoch)
    logger.finish()

Standalone they draw their own bars, start their own run and pick the best device; inside a
pipeline step they attach to the pipeline's shared display, current run and device.
"""
from .device import DeviceError, DeviceManager, device_manager
from .logger import Logger, RunHandle, logger
from .pipeline_context import PipelineContext, current_context, pipeline_context
from .progress import ProgressDisplay, progress_bar, progress_task

__all__ = ["progress_bar", "progress_task", "ProgressDisplay", "logger", "Logger", "RunHandle", "device_manager",
           "DeviceManager", "DeviceError", "PipelineContext", "current_context", "pipeline_context"]
