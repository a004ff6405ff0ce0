import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.base import clone
from skorch.callbacks import Callback, GradientNormClipping, LRScheduler
from torch import nn

from skae import AutoencoderNet, AutoencoderTransformer, DenseAutoencoder
from skae._graphs import unsupported
from tests.conftest import requires_cuda


def low_rank(n_rows=512, n_features=12, seed=0):
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randn(n_rows, 3, generator=generator)
    mixing = torch.randn(3, n_features, generator=generator)
    return codes @ mixing + 0.01 * torch.randn(n_rows, n_features, generator=generator)


def make_net(device, cuda_graphs=True, precision="float32", **kwargs):
    torch.manual_seed(0)
    params = dict(
        optimizer=torch.optim.Adam,
        lr=1e-3,
        max_epochs=4,
        batch_size=64,
        train_split=None,
        verbose=0,
        device=device,
        cuda_graphs=cuda_graphs,
        precision=precision,
    )
    params.update(kwargs)
    return AutoencoderNet(
        DenseAutoencoder(12, 3, hidden_layer_sizes=(32,)), nn.MSELoss(), **params
    )


def fake_net(**changes):
    """What unsupported() reads of a net, for a CUDA net that can use graphs."""
    attributes = dict(
        device="cuda",
        precision="float32",
        optimizer_=torch.optim.Adam([nn.Parameter(torch.zeros(1))]),
        callbacks_=[("epoch_log", Callback())],
    )
    attributes.update(changes)
    return SimpleNamespace(**attributes)


# ------------------------------------------------------- when graphs are used


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"device": "cpu"}, "not CUDA"),
        ({"precision": "float16"}, "float16"),
        (
            {"optimizer_": torch.optim.LBFGS([nn.Parameter(torch.zeros(1))])},
            "LBFGS cannot keep its state",
        ),
        (
            {"callbacks_": [("clip", GradientNormClipping(1.0))]},
            "'clip' reads the gradients",
        ),
        (
            {"callbacks_": [("lr_scheduler", LRScheduler(step_every="batch"))]},
            "'lr_scheduler' changes the learning rate in each step",
        ),
    ],
)
def test_unsupported_names_why_a_step_trains_eagerly(changes, reason):
    assert reason in unsupported(fake_net(**changes))


def test_unsupported_accepts_bfloat16_and_callbacks_without_gradient_hooks():
    net = fake_net(precision="bfloat16")
    reason = unsupported(net)
    # On a torch built without CUDA only the missing graph support remains.
    if not hasattr(torch.cuda.CUDAGraph, "register_generator_state"):
        assert "this torch cannot record" in reason
    else:
        assert reason is None


def test_cpu_fit_trains_eagerly_and_pickles_without_a_graph():
    net = make_net("cpu").fit(low_rank())
    assert net.graph_replays_ == 0
    assert "_graphed_step" not in net.__dict__
    assert all(not group["capturable"] for group in net.optimizer_.param_groups)
    loaded = pickle.loads(pickle.dumps(net))
    assert loaded.graph_replays_ == 0


# ------------------------------------------------------------- on a GPU


def fitted_pair(**kwargs):
    X = low_rank().to("cuda")
    graphed = make_net("cuda", **kwargs).fit(X)
    eager = make_net("cuda", cuda_graphs=False, **kwargs).fit(X)
    return graphed, eager


def assert_same_training(graphed, eager, rtol=1e-4, atol=1e-5):
    assert_allclose(
        graphed.history[:, "train_loss"], eager.history[:, "train_loss"], rtol=rtol
    )
    pairs = zip(graphed.module_.parameters(), eager.module_.parameters(), strict=True)
    for a, b in pairs:
        assert_allclose(a.detach().cpu(), b.detach().cpu(), rtol=rtol, atol=atol)


@pytest.mark.cuda
@requires_cuda
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_cuda_graphed_fit_trains_as_the_eager_fit(precision):
    graphed, eager = fitted_pair(precision=precision)
    # 512 rows in batches of 64: 8 full batches an epoch, 3 warm-up steps.
    assert graphed.graph_replays_ == 4 * 8 - 3
    assert eager.graph_replays_ == 0
    # bfloat16 rounds each forward pass: the two drift apart a little more.
    tolerance = dict(rtol=1e-3, atol=1e-3) if precision == "bfloat16" else {}
    assert_same_training(graphed, eager, **tolerance)
    # The optimizer's own settings are back after the fit.
    group = graphed.optimizer_.param_groups[0]
    assert not group["capturable"]
    assert not group["fused"]


@pytest.mark.cuda
@requires_cuda
def test_cuda_graph_is_recorded_again_when_the_rate_changes():
    halve = LRScheduler(policy=torch.optim.lr_scheduler.StepLR, step_size=2, gamma=0.1)
    graphed, eager = fitted_pair(callbacks=[("halve", halve)], max_epochs=6)
    # Stepped after each epoch: 1e-3, 1e-4 and 1e-5 trained two epochs each.
    assert graphed.optimizer_.param_groups[0]["lr"] == pytest.approx(1e-6)
    # Each rate gets its warm-up steps and then replays: 3 rates, 2 epochs each.
    assert graphed.graph_replays_ == 6 * 8 - 3 * 3
    assert_same_training(graphed, eager)


@pytest.mark.cuda
@requires_cuda
def test_cuda_per_batch_schedule_goes_on_eagerly():
    cycle = LRScheduler(
        policy=torch.optim.lr_scheduler.OneCycleLR,
        max_lr=1e-2,
        total_steps=4 * 8,
        step_every="batch",
    )
    graphed, eager = fitted_pair(callbacks=[("cycle", cycle)])
    # A per-batch schedule is known to change the rate: no graph is recorded.
    assert graphed.graph_replays_ == 0
    assert_same_training(graphed, eager)


@pytest.mark.cuda
@requires_cuda
def test_cuda_gradient_callbacks_train_eagerly():
    graphed = make_net("cuda", callbacks=[GradientNormClipping(1.0)])
    graphed.fit(low_rank().to("cuda"))
    assert graphed.graph_replays_ == 0


@pytest.mark.cuda
@requires_cuda
def test_cuda_estimator_fit_uses_graphs_and_continues_with_partial_fit():
    X = low_rank(n_rows=1000).numpy()
    ae = AutoencoderTransformer(
        n_components=2,
        hidden_layer_sizes=(16,),
        max_iter=5,
        random_state=0,
        device="cuda",
    ).fit(X)
    assert ae.net_.graph_replays_ > 0
    again = clone(ae).fit(X)
    np.testing.assert_array_equal(ae.transform(X), again.transform(X))
    ae.partial_fit(X)
    assert np.isfinite(ae.transform(X)).all()


@pytest.mark.cuda
@requires_cuda
def test_cuda_ordered_fit_records_its_prefix_lengths_in_the_graph():
    # Batches of at least a row per unit mix in a uniform spread of prefix
    # lengths, computed without reading the device (a recording refuses it).
    X = low_rank(n_rows=1000).numpy()
    ae = AutoencoderTransformer(
        n_components=8,
        hidden_layer_sizes=(16,),
        ordered=True,
        batch_size=64,
        max_iter=3,
        random_state=0,
        device="cuda",
    ).fit(X)
    assert ae.net_.graph_replays_ > 0
    assert np.isfinite(ae.explained_variance_ratio_).all()
