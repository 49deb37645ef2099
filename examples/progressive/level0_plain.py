"""Level 0: a plain script. A small CNN from specs, compiled by the engine, trained with an
ordinary tinygrad loop on 600 handwritten digits; results printed.

    python examples/progressive/level0_plain.py
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src"))

import numpy as np  # noqa: E402
from tinygrad import Context, Tensor, TinyJit, nn  # noqa: E402

from uop_engine import specs  # noqa: E402
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
    data = load_dataset("digits", limit=600, test_size=0.25)
    model = make_model()
    step = make_step(model, nn.optim.Adam(nn.state.get_parameters(model), lr=LR))
    for epoch in range(EPOCHS):
        loss = train_epoch(step, data.X_train, data.y_train, epoch)
        print(f"epoch {epoch + 1}: loss {loss:.4f}")
    print(f"test_accuracy={accuracy(model, data.X_test, data.y_test):.3f}")
