"""Level 3: level 2 plus device management: the best tinygrad device, or the one named by
$TINYUOP_DEVICE (a clear error lists the available devices otherwise).

    TINYUOP_DEVICE=CPU python examples/progressive/level3_device.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))

import numpy as np  # noqa: E402
from tinygrad import Context, Tensor, TinyJit, nn  # noqa: E402

from uop_engine import specs  # noqa: E402
from uop_engine.helpers import device_manager, logger, progress_bar  # noqa: E402   <- new: device_manager
from uop_engine.pipeline.data_source import load_dataset  # noqa: E402

EPOCHS, BATCH, LR = 5, 50, 3e-3


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


if __name__ == "__main__":
    device = device_manager.get_device()  # <- new
    logger.init(project="progressive", config={"epochs": EPOCHS, "batch": BATCH, "lr": LR, "device": device})
    data = load_dataset("digits", limit=600, test_size=0.25)
    model = make_model(device=device)  # <- new: device
    step = make_step(model, nn.optim.Adam(nn.state.get_parameters(model), lr=LR))
    for epoch in progress_bar(range(EPOCHS), desc="epochs"):
        loss = train_epoch(step, data.X_train, data.y_train, epoch, device)  # <- new: device
        print(f"epoch {epoch + 1}: loss {loss:.4f}")
        logger.log({"loss": loss}, step=epoch)
    acc = accuracy(model, data.X_test, data.y_test, device)
    logger.log({"test_accuracy": acc})
    logger.finish()
    print(f"run {logger.last_run_id} on {device}: test_accuracy={acc:.3f}")
