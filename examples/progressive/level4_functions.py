"""Level 4: the level-3 code extracted into functions. `@pipeline_process` makes each one a
pipeline step type (its signature is the step's configuration schema) and leaves it a plain
function, called directly below. Inside a pipeline the helpers attach to the pipeline's
progress display, step run and device; here they work standalone.

    python examples/progressive/level4_functions.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))

import numpy as np  # noqa: E402
from tinygrad import Context, Tensor, TinyJit, nn  # noqa: E402

from uop_engine import specs  # noqa: E402
from uop_engine.helpers import device_manager, logger, progress_bar  # noqa: E402
from uop_engine.model_bundle import ModelBundle  # noqa: E402
from uop_engine.pipeline import Dataset, pipeline_process  # noqa: E402   <- new
from uop_engine.pipeline.data_source import load_dataset  # noqa: E402

BATCH = 50


def make_model(channels=8, device=None):
    net = specs.Sequential([specs.ConvBlock(out_channels=channels, pool="max"), specs.Flatten(),
                            specs.Linear(out_features=10)])
    return net.build(input_shape=(1, 8, 8), seed=0, device=device)


def make_step(model, opt):
    @TinyJit  # compiled once for the (fixed) batch shape, then replayed
    def step(x, y):
        loss = model(x, training=True).sparse_categorical_crossentropy(y)
        opt.zero_grad()
        loss.backward()
        Tensor.realize(loss, *opt.schedule_step(), *model.last_updated)  # + BatchNorm running statistics
        return loss
    return step


def train_epoch(step, X, y, epoch, device=None):
    """One pass over the data in full batches; returns the mean loss."""
    order = np.random.default_rng(epoch).permutation(len(y))
    losses = []
    with Context(TRAINING=1):  # tinygrad's optimizers only step in training mode
        for i in range(0, len(y) - BATCH + 1, BATCH):
            idx = order[i:i + BATCH]
            loss = step(Tensor(X[idx], device=device), Tensor(y[idx].astype(np.int32), device=device))
            losses.append(loss.item())
    return float(np.mean(losses))


def accuracy(model, X, y, device=None):
    return float((model(Tensor(X, device=device)).argmax(axis=1).numpy() == y).mean())


@pipeline_process(outputs=("data",))  # <- new
def load_digits(limit: int = 600, test_size: float = 0.25, seed: int = 0) -> dict:
    """The bundled digits: a seeded subset split into train and test."""
    return {"data": load_dataset("digits", limit=limit, test_size=test_size, seed=seed)}


@pipeline_process(outputs=("model", "metrics"))  # <- new
def train_cnn(data: Dataset, epochs: int = 5, lr: float = 3e-3, channels: int = 8) -> dict:
    """Train the small CNN with the level-3 loop; returns the model as a bundle and its metrics."""
    device = device_manager.get_device()
    logger.init(project="progressive", config={"epochs": epochs, "batch": BATCH, "lr": lr, "channels": channels,
                                               "device": device})
    model = make_model(channels, device=device)
    step = make_step(model, nn.optim.Adam(nn.state.get_parameters(model), lr=lr))
    for epoch in progress_bar(range(epochs), desc="epochs"):
        loss = train_epoch(step, data.X_train, data.y_train, epoch, device)
        logger.log({"loss": loss}, step=epoch)
    acc = accuracy(model, data.X_test, data.y_test, device)
    logger.log({"test_accuracy": acc})
    bundle = ModelBundle.from_model(model, classes=data.classes, task="classification",
                                    feature_spec=data.feature_spec)
    return {"model": bundle, "metrics": {"loss": loss, "test_accuracy": acc}}


if __name__ == "__main__":
    data = load_digits()["data"]  # plain calls, as before
    result = train_cnn(data, epochs=5)
    logger.finish()
    print(f"run {logger.last_run_id}: test_accuracy={result['metrics']['test_accuracy']:.3f}")
