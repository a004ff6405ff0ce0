import os
import pickle
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from copy import deepcopy

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback, EarlyStopping, LRScheduler
from skorch.dataset import ValidSplit
from skorch.helper import predefined_split
from torch import nn
from torch.optim.lr_scheduler import LinearLR, ReduceLROnPlateau, StepLR

from skae import (
    AutoencoderNet,
    AutoencoderTransformer,
    DenoisingAutoencoder,
    DenseAutoencoder,
    TrainingDivergedError,
    _training,
)
from skae._training import (
    TensorBatches,
    _BestOfRunEarlyStopping,
    _callbacks,
    _flushing_denormals,
    split_rows,
    training_plan,
)

CPU = torch.device("cpu")


def row_ids(n_rows):
    """Rows whose first column is their index, so batches show which rows came."""
    return torch.arange(n_rows, dtype=torch.float32)[:, None].repeat(1, 3)


def ids_of(batches):
    return [batch[:, 0].long().tolist() for batch, _ in batches]


def low_rank(n_rows=200, seed=0):
    generator = torch.Generator().manual_seed(seed)
    codes = torch.randn(n_rows, 2, generator=generator)
    mixing = torch.randn(2, 6, generator=generator)
    return codes @ mixing + 0.01 * torch.randn(n_rows, 6, generator=generator)


def make_net(n_features=6, **params):
    torch.manual_seed(0)
    defaults = dict(
        module=DenseAutoencoder(n_features, 2, hidden_layer_sizes=(8,)),
        criterion=nn.MSELoss,
        optimizer=torch.optim.Adam,
        lr=1e-2,
        max_epochs=5,
        batch_size=32,
        train_split=None,
        verbose=0,
        device="cpu",
    )
    return AutoencoderNet(**{**defaults, **params})


# ------------------------------------------------------------ TensorBatches


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize(
    "n_rows, batch_size, sizes",
    [(10, 3, [3, 3, 3, 1]), (9, 3, [3, 3, 3]), (2, 5, [2]), (1, 1, [1]), (7, 7, [7])],
)
def test_batches_cover_every_row_once(shuffle, n_rows, batch_size, sizes):
    batches = TensorBatches(
        row_ids(n_rows),
        batch_size,
        CPU,
        shuffle=shuffle,
        generator=torch.Generator().manual_seed(0),
    )
    assert len(batches) == len(sizes)
    ids = ids_of(batches)
    assert [len(batch) for batch in ids] == sizes
    assert sorted(sum(ids, [])) == list(range(n_rows))


def test_batches_are_pairs_of_the_same_rows():
    for X, y in TensorBatches(row_ids(5), 2, CPU):
        assert X is y


def test_unshuffled_batches_keep_row_order():
    assert ids_of(TensorBatches(row_ids(5), 2, CPU)) == [[0, 1], [2, 3], [4]]


def test_shuffle_draws_a_fresh_permutation_each_pass():
    batches = TensorBatches(
        row_ids(50),
        50,
        CPU,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    first, second = ids_of(batches), ids_of(batches)
    assert first != second
    assert sorted(first[0]) == sorted(second[0]) == list(range(50))


def test_same_seed_gives_same_sequence_of_permutations():
    def passes(seed):
        batches = TensorBatches(
            row_ids(20),
            6,
            CPU,
            shuffle=True,
            generator=torch.Generator().manual_seed(seed),
        )
        return [ids_of(batches) for _ in range(3)]

    assert passes(0) == passes(0)
    assert passes(0) != passes(1)


def test_shuffle_leaves_global_rng_alone():
    state = torch.get_rng_state()
    list(TensorBatches(row_ids(20), 6, CPU, shuffle=True, generator=torch.Generator()))
    assert torch.equal(torch.get_rng_state(), state)


# ----------------------------------------------------------- AutoencoderNet


def test_net_records_losses_once_per_epoch():
    X = low_rank()
    net = make_net(max_epochs=4, train_split=predefined_split(low_rank(40, seed=1)))
    net.fit(X)
    history = net.history
    assert len(history) == 4
    assert history[:, "epoch"] == [1, 2, 3, 4]
    for key in ("train_loss", "valid_loss"):
        losses = history[:, key]
        assert len(losses) == 4
        assert all(isinstance(loss, float) and np.isfinite(loss) for loss in losses)
        # "_best" marks a new lowest value.
        best = [loss < min(losses[:i], default=np.inf) for i, loss in enumerate(losses)]
        assert history[:, key + "_best"] == best
    assert history[:, "train_batch_count"] == [7] * 4  # ceil(200 / 32)
    assert history[:, "valid_batch_count"] == [2] * 4  # ceil(40 / 32)


def test_net_train_loss_is_mean_over_rows():
    # One batch per epoch, lr tiny: the epoch's loss is the initial MSE.
    X = low_rank(50)
    net = make_net(lr=1e-12, max_epochs=1, batch_size=50)
    net.initialize()
    with torch.no_grad():
        expected = nn.functional.mse_loss(net.module_(X), X).item()
    net.partial_fit(X)
    assert net.history[-1, "train_loss"] == pytest.approx(expected, rel=1e-5)


def test_net_loss_falls_on_simple_data():
    net = make_net(max_epochs=30).fit(low_rank())
    losses = net.history[:, "train_loss"]
    assert losses[-1] < 0.5 * losses[0]


def test_net_evaluate_loss():
    X = low_rank(50)
    net = make_net().initialize()
    with torch.no_grad():
        expected = nn.functional.mse_loss(net.module_(X), X).item()
    assert net.evaluate_loss(X) == pytest.approx(expected, rel=1e-5)


def test_net_fit_needs_no_target_and_seeds_batch_order():
    X = low_rank()
    first = make_net(random_seed=3).fit(X).history[:, "train_loss"]
    second = make_net(random_seed=3).fit(X).history[:, "train_loss"]
    other = make_net(random_seed=4).fit(X).history[:, "train_loss"]
    assert first == second
    assert first != other


def test_net_takes_skorch_train_split_and_arrays():
    X = low_rank()
    # skorch's default train_split holds out a fifth of the rows.
    net = make_net(train_split=ValidSplit(5)).fit(X)
    assert np.isfinite(net.history[:, "valid_loss"]).all()
    as_array = make_net().fit(X.numpy().astype(np.float64))
    assert (
        as_array.history[:, "train_loss"] == make_net().fit(X).history[:, "train_loss"]
    )
    assert net.predict(X.numpy()).shape == tuple(X.shape)


def test_net_batch_size_minus_one_is_all_rows():
    X = low_rank()
    net = make_net(batch_size=-1).fit(X)
    assert [len(epoch["batches"]) for epoch in net.history] == [1] * 5


def test_net_unseeded_random_seed_draws_from_torch():
    X = low_rank()
    torch.manual_seed(1)
    first = make_net(random_seed=None).fit(X).history[:, "train_loss"]
    torch.manual_seed(1)
    assert make_net(random_seed=None).fit(X).history[:, "train_loss"] == first


@pytest.mark.parametrize(
    "params, error, message",
    [
        ({"precision": "float64"}, ValueError, r"precision must be 'float32'"),
        ({"batch_size": 0}, ValueError, r"batch_size must be >= 1, or -1"),
        ({"batch_size": 2.5}, TypeError, r"batch_size must be an int"),
        ({"random_seed": "a"}, TypeError, r"random_seed must be an int or None"),
    ],
)
def test_net_checks_its_own_parameters(params, error, message):
    with pytest.raises(error, match=message):
        make_net(**params).fit(low_rank())


def test_net_refuses_no_rows():
    with pytest.raises(ValueError, match=r"got no rows"):
        make_net().fit(low_rank()[:0])


def test_net_raises_when_training_diverges():
    X = low_rank()
    with torch.no_grad():
        X[0, 0] = torch.inf
    with pytest.raises(
        TrainingDivergedError,
        match=r"Training diverged: the train loss is (nan|inf) at epoch 1\. Lower "
        r"learning_rate_init \(the optimizer's lr is 0\.01\)\.",
    ):
        make_net().fit(X)


def test_training_diverged_error_is_a_value_error():
    assert issubclass(TrainingDivergedError, ValueError)


# ------------------------------------------------------------ early stopping


def stopper(monitor, patience=2, initial_state=True):
    return _BestOfRunEarlyStopping(
        monitor=monitor,
        patience=patience,
        threshold=1e-4,
        threshold_mode="rel",
        load_best=True,
        initial_state=initial_state,
    )


@pytest.mark.parametrize("monitor", ["train_loss", "valid_loss"])
def test_early_stopping_keeps_initial_state_when_training_only_hurts(monitor):
    X = low_rank()
    train_split = (
        predefined_split(low_rank(40, seed=1)) if monitor == "valid_loss" else None
    )
    net = make_net(
        lr=10.0,
        max_epochs=20,
        train_split=train_split,
        callbacks=[("early_stopping", stopper(monitor))],
    )
    net.initialize()
    initial = {k: v.clone() for k, v in net.module_.state_dict().items()}
    net.partial_fit(X)
    callback = dict(net.callbacks_)["early_stopping"]
    assert callback.best_epoch_ == 0
    assert len(net.history) == 2  # patience
    for key, value in net.module_.state_dict().items():
        assert torch.equal(value, initial[key])


def test_early_stopping_without_initial_state_never_scores_it(monkeypatch):
    # initial_state=False (a random start): no pass over the data before
    # training, and the best epoch is a trained one even when training hurts.
    X = low_rank()
    net = make_net(
        lr=10.0,
        max_epochs=20,
        train_split=predefined_split(low_rank(40, seed=1)),
        callbacks=[("early_stopping", stopper("valid_loss", initial_state=False))],
    )
    net.initialize()
    calls = []
    monkeypatch.setattr(net, "evaluate_loss", lambda *a, **k: calls.append(a))
    net.partial_fit(X)
    callback = dict(net.callbacks_)["early_stopping"]
    assert calls == []
    losses = net.history[:, "valid_loss"]
    assert callback.best_epoch_ == int(np.argmin(losses)) + 1 >= 1


def test_early_stopping_counts_improvement_over_the_initial_state():
    X = low_rank()
    net = make_net(
        max_epochs=10,
        train_split=predefined_split(low_rank(40, seed=1)),
        callbacks=[("early_stopping", stopper("valid_loss", patience=3))],
    )
    net.fit(X)
    callback = dict(net.callbacks_)["early_stopping"]
    losses = net.history[:, "valid_loss"]
    assert callback.best_epoch_ == int(np.argmin(losses)) + 1
    assert net.evaluate_loss(low_rank(40, seed=1)) == pytest.approx(min(losses))


class ConstantLoss(nn.Module):
    """A loss of ``level`` with zero gradients: a plateau from the start."""

    def __init__(self, level):
        super().__init__()
        self.level = level

    def forward(self, y_pred, y_true):
        return (y_pred * 0).sum() + self.level


@pytest.mark.parametrize("level", [1.0, -1.0])
def test_a_plateau_is_a_plateau_whatever_the_sign_of_the_loss(level):
    # A VAE's loss can be negative, where a relative threshold of tol * loss
    # counted a flat (or worse) loss as progress: the rate never fell and
    # early stopping never stopped.
    estimator = AutoencoderTransformer(learning_rate="adaptive", n_iter_no_change=8)
    plan = training_plan(estimator, 200, CPU)
    net = make_net(
        criterion=ConstantLoss,
        criterion__level=level,
        max_epochs=30,
        train_split=predefined_split(low_rank(40, seed=1)),
        callbacks=_callbacks(
            estimator, plan, stopping=True, epoch_tasks=None, held_out=True
        ),
    )
    net.fit(low_rank())
    # Stopped after n_iter_no_change epochs no better than the initial state.
    assert len(net.history) == 8
    assert dict(net.callbacks_)["early_stopping"].best_epoch_ == 0
    # The rate falls by 0.3 once more than n_iter_no_change // 4 = 2 epochs
    # after the best one have not improved on it.
    assert_allclose(net.history[:, "event_lr"], [1e-2] * 4 + [3e-3] * 3 + [9e-4])


def test_the_plateau_schedule_stops_the_fit_at_its_floor(monkeypatch, capsys):
    # Cut after cut, the held-out loss crept down a little after each one,
    # which reset early stopping's patience: a default fit on all 1,797
    # digits at k = 16 trained at rates down to 2e-8 until max_iter=200, then
    # warned. The schedule now ends the fit when a plateau cuts the rate
    # below a fraction of the initial rate (here 0.5, so the first cut).
    monkeypatch.setattr(_training, "_ADAPTIVE_MIN_FRACTION", 0.5)
    estimator = AutoencoderTransformer(learning_rate="adaptive", n_iter_no_change=8)
    plan = training_plan(estimator, 200, CPU)
    net = make_net(
        criterion=ConstantLoss,
        criterion__level=1.0,
        max_epochs=30,
        verbose=1,
        train_split=predefined_split(low_rank(40, seed=1)),
        callbacks=_callbacks(
            estimator, plan, stopping=True, epoch_tasks=None, held_out=True
        ),
    )
    net.fit(low_rank())
    # Four epochs at 1e-2, the cut to 3e-3 at the end of the fourth, and no
    # epoch at the cut rate; early stopping alone would have run eight.
    assert_allclose(net.history[:, "event_lr"], [1e-2] * 4)
    assert _training.converged(net)
    stopper = dict(net.callbacks_)["early_stopping"]
    assert stopper.misses_ < stopper.patience
    assert "Stopping: a plateau cut the rate to 0.003, below 0.5 times" in (
        capsys.readouterr().out
    )


def test_a_fit_stopped_by_the_plateau_floor_keeps_its_best_epoch(monkeypatch):
    monkeypatch.setattr(_training, "_ADAPTIVE_MIN_FRACTION", 0.5)
    X = low_rank(200).numpy()
    model = AutoencoderTransformer(
        hidden_layer_sizes=(8,),
        learning_rate="adaptive",
        n_iter_no_change=4,
        tol=0.5,
        max_iter=50,
        device="cpu",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(X)
    # tol=0.5: no epoch after the first counts as better, the first cut
    # (after more than n_iter_no_change // 4 = 1 such epochs) falls below
    # half the rate, and the kept weights are the best epoch's (the PCA
    # start's, epoch 0), before early stopping's patience of 4 ran out.
    assert model.n_iter_ == 3
    assert model.best_epoch_ == 0


class EpochsSeen(Callback):
    def on_train_begin(self, net, **kwargs):
        self.epochs = []

    def on_epoch_end(self, net, **kwargs):
        self.epochs.append(net.history[-1, "epoch"])


@pytest.mark.parametrize("max_iter", [2, 5])
def test_a_callback_that_stops_at_the_last_epoch_does_not_warn(max_iter):
    # skorch's EarlyStopping ends the loop by raising KeyboardInterrupt, which
    # skorch swallows: a stop at epoch max_iter warned that the fit reached
    # max_iter before the loss stopped improving, one epoch earlier did not.
    stop = EarlyStopping(monitor="train_loss", patience=1, threshold=10)
    model = AutoencoderTransformer(
        hidden_layer_sizes=(8,),
        max_iter=max_iter,
        callbacks=[("stop", stop)],
        device="cpu",
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model.fit(low_rank().numpy())
    assert model.n_iter_ == 2


def test_callbacks_after_early_stopping_see_the_last_epoch():
    # The stopper ended the loop by raising in the last epoch's
    # on_epoch_end, before the user's callbacks had seen it.
    model = AutoencoderTransformer(
        hidden_layer_sizes=(8,),
        learning_rate_init=0.1,
        n_iter_no_change=2,
        callbacks=[("seen", EpochsSeen)],
        device="cpu",
        random_state=0,
    ).fit(low_rank().numpy())
    assert model.n_iter_ < 200
    assert dict(model.net_.callbacks_)["seen"].epochs == list(
        range(1, model.n_iter_ + 1)
    )


def one_cycle(**params):
    """A small transformer on a one-cycle schedule from a random start."""
    return AutoencoderTransformer(
        hidden_layer_sizes=(8,),
        init="random",
        learning_rate="one_cycle",
        learning_rate_init=0.01,
        device="cpu",
        random_state=0,
        **params,
    )


def test_one_cycle_keeps_its_best_epoch_whatever_tol():
    # tol applied to the one-cycle run's best epoch: a later, better epoch
    # that did not improve on it by tol was not kept.
    model = one_cycle(max_iter=8, tol=0.5).fit(low_rank().numpy())
    losses = model.validation_loss_curve_
    assert model.best_epoch_ == int(np.argmin(losses)) + 1 > 1


class StepRates(Callback):
    def on_train_begin(self, net, **kwargs):
        self.rates = []

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.rates.append(net.optimizer_.param_groups[0]["lr"])


@pytest.mark.parametrize("max_iter", [1, 2])
def test_a_one_cycle_run_of_one_batch_an_epoch_trains(max_iter):
    # A run of one step took it at the annealed rate, the peak / 250,000,
    # and left the model as it started.
    X = low_rank().numpy()
    model = one_cycle(
        max_iter=max_iter,
        batch_size=len(X),
        early_stopping=False,
        callbacks=[("rates", StepRates)],
    ).fit(X)
    rates = dict(model.net_.callbacks_)["rates"].rates
    assert len(rates) == max_iter
    assert rates[0] > 0.01 / 2


# ------------------------------------------------------------ weight average


class _Recorder(Callback):
    """Record the weights after each training step and at each epoch's ends."""

    def on_train_begin(self, net, **kwargs):
        self.steps, self.begun, self.ended = [], [], []

    def _weights(self, net):
        return [p.detach().clone() for p in net.module_.parameters()]

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.steps.append(self._weights(net))

    def on_epoch_begin(self, net, **kwargs):
        self.begun.append(self._weights(net))

    def on_epoch_end(self, net, **kwargs):
        self.ended.append(self._weights(net))


def _averaged(start, steps, decay):
    average = [w.clone() for w in start]
    for weights in steps:
        average = [
            a + (1 - decay) * (w - a) for a, w in zip(average, weights, strict=True)
        ]
    return average


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_adaptive_schedule_averages_its_weights():
    X = low_rank().numpy()
    ae = AutoencoderTransformer(2, hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    plan = ae.fit(X).training_plan_
    assert (plan["learning_rate"], plan["learning_rate_init"]) == ("adaptive", 2e-3)
    assert plan["ema_decay"] == 0.99
    assert "weight_average" in dict(ae.net_.callbacks_)
    # Off for a planned run, and for partial_fit, which follows no schedule.
    ae.set_params(learning_rate="one_cycle").fit(X)
    assert ae.training_plan_["ema_decay"] == 0.0
    assert "weight_average" not in dict(ae.net_.callbacks_)
    streamed = AutoencoderTransformer(2, hidden_layer_sizes=(8,), ema_decay=0.9)
    plan = streamed.partial_fit(X).training_plan_
    assert (plan["ema_decay"], plan["learning_rate_init"]) == (0.0, 1e-3)
    assert "weight_average" not in dict(streamed.net_.callbacks_)
    # Without held-out rows to score the average, none; and the rate of
    # weights not averaged starts at 1e-3: the previous adaptive run.
    ae.set_params(learning_rate="auto", early_stopping=False).fit(X)
    plan = ae.training_plan_
    assert (plan["ema_decay"], plan["learning_rate_init"]) == (0.0, 1e-3)
    ae.set_params(early_stopping=True, ema_decay=0).fit(X)
    plan = ae.training_plan_
    assert (plan["ema_decay"], plan["learning_rate_init"]) == (0.0, 1e-3)
    assert "weight_average" not in dict(ae.net_.callbacks_)


@pytest.mark.parametrize("early_stopping", [True, False])
def test_the_fit_keeps_the_average_and_trains_on_its_own_weights(early_stopping):
    ae = AutoencoderTransformer(
        2,
        hidden_layer_sizes=(8,),
        init="random",
        learning_rate="constant",
        learning_rate_init=0.01,
        ema_decay=0.7,
        max_iter=2,
        n_iter_no_change=5,
        early_stopping=early_stopping,
        callbacks=[("recorder", _Recorder())],
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ae.fit(low_rank().numpy())
    recorder = dict(ae.net_.callbacks_)["recorder"]
    n_steps = len(recorder.steps) // 2
    first = _averaged(recorder.begun[0], recorder.steps[:n_steps], 0.7)
    # Each epoch ends on the average of every step so far, which the held-out
    # rows score; the next epoch trains on from the weights its steps left.
    for ended, expected in zip(recorder.ended[0], first, strict=True):
        assert_allclose(ended, expected, rtol=1e-5, atol=1e-6)
    for begun, trained in zip(
        recorder.begun[1], recorder.steps[n_steps - 1], strict=True
    ):
        assert_array_equal(begun, trained)
    both = _averaged(recorder.begun[0], recorder.steps, 0.7)
    best = ae.best_epoch_
    kept = first if best == 1 else both
    for weight, expected in zip(ae.net_.module_.parameters(), kept, strict=True):
        assert_allclose(weight.detach(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ema_decay", [1.0, -0.1, "yes"])
def test_ema_decay_is_checked(ema_decay):
    ae = AutoencoderTransformer(2, ema_decay=ema_decay)
    with pytest.raises(ValueError, match="ema_decay"):
        ae.fit(low_rank().numpy())


# ------------------------------------------------------------ mixed precision


@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_trains_in_reduced_precision(precision):
    X = low_rank()
    outputs = []

    def record(module, inputs, output):
        outputs.append(output.dtype)

    net = make_net(precision=precision, max_epochs=20)
    net.module.register_forward_hook(record)
    net.fit(X)
    assert set(outputs) == {getattr(torch, precision)}
    # Weights and the optimizer state stay float32.
    assert all(p.dtype == torch.float32 for p in net.module_.parameters())
    losses = net.history[:, "train_loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0]


def test_estimators_train_with_fused_adam_on_the_cpu():
    # One kernel per step; the same algorithm as the default Adam.
    X = low_rank()
    model = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(8,), max_iter=2, device="cpu"
    ).fit(X)
    assert isinstance(model.net_.optimizer_, torch.optim.Adam)
    assert all(group["fused"] for group in model.net_.optimizer_.param_groups)


def test_float32_does_not_autocast():
    net = make_net().fit(low_rank())
    assert isinstance(net.autocast(), nullcontext)
    with net.autocast():
        assert not torch.is_autocast_enabled("cpu")
    assert not net.grad_scaler_.is_enabled()


@pytest.mark.parametrize(
    "precision, scaled", [("float32", False), ("bfloat16", False), ("float16", True)]
)
def test_only_float16_scales_the_loss(precision, scaled):
    net = make_net(precision=precision).fit(low_rank())
    assert net.grad_scaler_.is_enabled() is scaled


class GradNorms(Callback):
    def initialize(self):
        self.norms = []
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        grads = [p.grad for _, p in named_parameters if p.grad is not None]
        self.norms.append(
            float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])))
        )


def test_float16_callbacks_see_unscaled_gradients():
    X = low_rank()
    norms = {}
    for precision in ("float32", "float16"):
        spy = GradNorms()
        make_net(precision=precision, max_epochs=1, callbacks=[spy]).fit(X)
        norms[precision] = np.array(spy.norms)
    # The loss scale starts at 2**16: scaled gradients would be far larger.
    assert_allclose(norms["float16"], norms["float32"], rtol=0.05)


def test_float16_skips_a_step_whose_gradients_overflow():
    net = make_net(precision="float16", max_epochs=1).initialize()
    before = {k: v.clone() for k, v in net.module_.state_dict().items()}
    # A loss scale so large that the scaled float16 gradients overflow.
    net.grad_scaler_ = torch.amp.GradScaler("cpu", init_scale=2.0**120)
    X = low_rank(32)
    net.train_step((X, X))
    for key, value in net.module_.state_dict().items():
        assert torch.equal(value, before[key])
    assert net.grad_scaler_.get_scale() < 2.0**120


# ---------------------------------------------------------- data parallelism


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("n_rows, world_size", [(10, 2), (11, 2), (10, 3), (2, 3)])
def test_shards_are_equal_and_cover_every_row(shuffle, n_rows, world_size):
    shards = [
        ids_of(
            TensorBatches(
                row_ids(n_rows),
                3,
                CPU,
                shuffle=shuffle,
                generator=torch.Generator().manual_seed(0),
                rank=rank,
                world_size=world_size,
            )
        )
        for rank in range(world_size)
    ]
    rows = [sum(batches, []) for batches in shards]
    per_shard = -(-n_rows // world_size)
    assert all(len(shard) == per_shard for shard in rows)
    assert len({len(batches) for batches in shards}) == 1
    assert set(sum(rows, [])) == set(range(n_rows))
    # Padding repeats as few rows as it can.
    assert len(sum(rows, [])) - n_rows == per_shard * world_size - n_rows


DDP_SCRIPT = """
import pickle
import sys

import numpy as np
import torch
import torch.distributed as dist

from skorch.callbacks import Callback

from skae import (
    AutoencoderNet,
    AutoencoderTransformer,
    DenoisingAutoencoder,
    DenseAutoencoder,
    VariationalAutoencoder,
)

torch.set_num_threads(1)
dist.init_process_group("gloo")
X = np.load(sys.argv[1])
params = dict(n_components=1, hidden_layer_sizes=(16,), device="cpu")
seeded = AutoencoderTransformer(**params, max_iter=40, random_state=0).fit(X)
unseeded = AutoencoderTransformer(**params, max_iter=3).fit(X)
# With loss='bce' the likelihood's variance is not used: DDP must not wait
# for its gradient.
X01 = (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))
vae = VariationalAutoencoder(**params, loss="bce", max_iter=3, random_state=0)
vae.fit(X01)
denoiser = DenoisingAutoencoder(**params, max_iter=3, random_state=0).fit(X)


class RowsSeen(Callback):
    def initialize(self):
        self.rows = []
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training:
            self.rows += batch[0][:, 0].int().tolist()


# An unseeded net draws each epoch's order from torch's generator, seeded
# differently in each process here.
torch.manual_seed(dist.get_rank())
net = AutoencoderNet(
    DenseAutoencoder(1, 1, hidden_layer_sizes=()), torch.nn.MSELoss(),
    optimizer=torch.optim.Adam, max_epochs=2, batch_size=4, train_split=None,
    random_seed=None, callbacks=[("rows", RowsSeen())], verbose=0,
).fit(torch.arange(12.0).reshape(-1, 1))
rows = dict(net.callbacks_)["rows"].rows
with open(f"{sys.argv[2]}/rank{dist.get_rank()}.pkl", "wb") as f:
    pickle.dump((seeded, unseeded, vae, denoiser, rows), f)
dist.destroy_process_group()
"""


def run_torchrun(tmp_path, script):
    """Run ``script`` in two CPU processes under torchrun, with ``tmp_path``.

    The script gets ``tmp_path / "X.npy"`` and ``tmp_path`` as arguments.
    """
    (tmp_path / "train.py").write_text(script)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        str(tmp_path / "train.py"),
        str(tmp_path / "X.npy"),
        str(tmp_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as launcher:
        try:
            _, stderr = launcher.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            # torchrun stops its processes (stuck at a collective) on SIGTERM;
            # killed, it would leave them running.
            launcher.terminate()
            launcher.communicate(timeout=60)
            raise
    assert launcher.returncode == 0, stderr[-3000:]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_torchrun_trains_data_parallel_with_gloo(tmp_path, curved):
    X_train, X_test = curved[:300], curved[300:]
    np.save(tmp_path / "X.npy", X_train)
    run_torchrun(tmp_path, DDP_SCRIPT)
    (
        (seeded, unseeded, vae, denoiser, rows),
        (seeded_1, unseeded_1, vae_1, denoiser_1, rows_1),
    ) = (pickle.loads((tmp_path / f"rank{rank}.pkl").read_bytes()) for rank in (0, 1))
    # Each epoch the processes share out the rows, also when a net draws its
    # order from torch's generator, whose seed differs by process: rank 0's
    # draw is dealt out (the shares had overlapped, and rows went untrained).
    for epoch in range(2):
        shares = rows[epoch * 6 : epoch * 6 + 6] + rows_1[epoch * 6 : epoch * 6 + 6]
        assert sorted(shares) == list(range(12))
    assert vae.n_iter_ == 3
    assert_array_equal(vae.transform(X_test), vae_1.transform(X_test))
    # Each process draws its own training noise and codes for its own rows
    # (they had drawn the same), and the processes keep one model.
    assert_array_equal(denoiser.transform(X_test), denoiser_1.transform(X_test))
    noise, noise_1 = (m.module_.corruption.generator for m in (denoiser, denoiser_1))
    assert not torch.equal(noise.get_state(), noise_1.get_state())
    codes, codes_1 = vae.module_.generator, vae_1.module_.generator
    assert not torch.equal(codes.get_state(), codes_1.get_state())
    # The processes end with the same model, having seen the same losses.
    assert_array_equal(seeded.transform(X_test), seeded_1.transform(X_test))
    assert seeded.loss_curve_ == seeded_1.loss_curve_
    assert seeded.best_epoch_ == seeded_1.best_epoch_
    # Without a seed, rank 0's is shared.
    assert_array_equal(unseeded.transform(X_test), unseeded_1.transform(X_test))

    params = dict(n_components=1, hidden_layer_sizes=(16,), max_iter=40)
    single = AutoencoderTransformer(**params, random_state=0).fit(X_train)
    # Each process ran half the batches of a single-process epoch.
    batches = seeded.net_.history[-1, "train_batch_count"]
    assert batches == -(-single.net_.history[-1, "train_batch_count"] // 2)
    # A step averages the gradients of the two processes' batches of 32 rows,
    # dealt in turn from one shuffled order: on the 270 training rows (even,
    # so no padding) it is a single-process step on 64 consecutive rows of
    # that order. Data-parallel training is the single-process training with
    # twice the batch size, up to the rounding of the averaged gradients.
    assert seeded.net_.batch_size == 32
    doubled = AutoencoderTransformer(**params, batch_size=64, random_state=0)
    doubled.fit(X_train)
    assert type(seeded.module_) is type(doubled.module_)
    # Measured: losses within 2e-7 (relative), codes within 1e-6, after 40
    # epochs; the tolerances leave a factor of 10 to 100 for other platforms.
    assert seeded.best_epoch_ == doubled.best_epoch_
    assert seeded.loss_curve_ == pytest.approx(doubled.loss_curve_, rel=1e-5)
    assert_allclose(
        seeded.transform(X_test), doubled.transform(X_test), rtol=1e-5, atol=1e-5
    )
    assert seeded.score(X_test) == pytest.approx(doubled.score(X_test), rel=1e-5)
    # And the model learned: better than PCA with as many components.
    pca = PCA(n_components=1).fit(X_train)
    pca_error = np.mean((X_test - pca.inverse_transform(pca.transform(X_test))) ** 2)
    assert -seeded.score(X_test) < 0.8 * pca_error


# The refusal scripts: each process records the errors of its fits in
# ``errors``, then fits alike and saves both (argv: the rows' .npy, the
# output folder).
DDP_REFUSAL_HEAD = """
import pickle
import sys
import warnings

import numpy as np
import torch
import torch.distributed as dist

from skae import AutoencoderTransformer, DenoisingAutoencoder

torch.set_num_threads(1)
warnings.simplefilter("ignore")
dist.init_process_group("gloo")
rank = dist.get_rank()
X = np.load(sys.argv[1])
params = dict(n_components=1, hidden_layer_sizes=(8,), max_iter=2, random_state=0)
errors = {}
"""
DDP_REFUSAL_TAIL = """
# The processes are in step after the errors: all the rows train.
model = AutoencoderTransformer(**params).fit(X)
with open(f"{sys.argv[2]}/rank{rank}.pkl", "wb") as f:
    pickle.dump((errors, model), f)
dist.destroy_process_group()
"""
DDP_OTHER_ROWS_SCRIPT = (
    DDP_REFUSAL_HEAD
    + """
# Each process a shard of its own: half the rows, then a tenth for rank 1.
shards = {"halves": X[rank::2], "uneven": X[:100] if rank == 0 else X[100:110]}
for name, rows in shards.items():
    for cls in (AutoencoderTransformer, DenoisingAutoencoder):
        for method in ("fit", "partial_fit"):
            estimator = cls(**params)
            try:
                getattr(estimator, method)(rows)
            except ValueError as error:
                errors[name, cls.__name__, method] = str(error), hasattr(
                    estimator, "net_"
                )
# A NaN in rank 1's rows fails validation there, before any collective; a
# script that catches the error goes on in step. n_iter_ tells whether each
# estimator is left as it was.
nan_rows = X.copy()
if rank:
    nan_rows[0, 0] = np.nan
fitted = AutoencoderTransformer(**params).partial_fit(X)
for name, estimator, method in [
    ("fit", AutoencoderTransformer(**params), "fit"),
    ("first partial_fit", AutoencoderTransformer(**params), "partial_fit"),
    ("later partial_fit", fitted, "partial_fit"),
]:
    try:
        getattr(estimator, method)(nan_rows)
    except ValueError as error:
        errors["nan", name] = str(error), getattr(estimator, "n_iter_", None)
"""
    + DDP_REFUSAL_TAIL
)


def test_torchrun_refuses_other_rows_in_each_process(tmp_path, curved):
    # A shard per process, the usual way of torch's DistributedSampler, had
    # trained models that differed by process; shards of different lengths
    # stopped the processes at mismatched collectives (gloo aborted).
    np.save(tmp_path / "X.npy", curved[:200])
    run_torchrun(tmp_path, DDP_OTHER_ROWS_SCRIPT)
    (errors, model), (errors_1, model_1) = (
        pickle.loads((tmp_path / f"rank{rank}.pkl").read_bytes()) for rank in (0, 1)
    )
    # Rows that failed validation in rank 1 only had left rank 0 at the first
    # collective; a script that caught the error fit again out of step.
    for name, n_iter in [
        ("fit", None),
        ("first partial_fit", None),
        ("later partial_fit", 1),
    ]:
        message, n_iter_0 = errors.pop(("nan", name))
        message_1, n_iter_1 = errors_1.pop(("nan", name))
        assert message_1.startswith("Input X contains NaN.")
        assert message == (
            "Data-parallel training stopped in every process: rank 1's input "
            f"failed validation (ValueError: {message_1})"
        )
        assert n_iter_0 == n_iter_1 == n_iter
    assert errors == errors_1
    assert len(errors) == 8
    for (shards, _, _), (message, fitted) in errors.items():
        assert not fitted
        assert message.startswith(
            "Data-parallel training needs the same rows and parameters in every process"
        )
        assert message.endswith(
            "Pass every process all the rows: fit and partial_fit shard them "
            "themselves."
        )
        expected = "rows of shape" if shards == "uneven" else "on other rows than"
        assert expected in message
    assert_array_equal(model.transform(curved), model_1.transform(curved))


DDP_OTHER_SETTINGS_SCRIPT = (
    DDP_REFUSAL_HEAD
    + """
# The same rows in each process, other settings on rank 1.
others = {
    "network": dict(n_components=1 + rank),
    "seed": dict(random_state=rank, early_stopping=False),
    "optimizer": dict(learning_rate_init=1e-3 * (1 + rank)),
    "stopping": dict(tol=10.0, n_iter_no_change=2 + 3 * rank, max_iter=10),
    "schedule": dict(
        learning_rate="adaptive" if rank else "constant", learning_rate_init=1e-3
    ),
    # The same weights trained, another model kept.
    "averaging": dict(ema_decay=0.9 * rank, learning_rate_init=1e-3),
}
for name, other in others.items():
    for method in ("fit", "partial_fit"):
        try:
            getattr(AutoencoderTransformer(**{**params, **other}), method)(X)
        except ValueError as error:
            errors[name, method] = str(error)
# Rows in [0, 1] for loss='bce' on rank 1, which takes them as they are,
# where loss='mse' on rank 0 centres and scales them.
X01 = (X - X.min(axis=0)) / (X.max(axis=0) - X.min(axis=0))
for method in ("fit", "partial_fit"):
    estimator = AutoencoderTransformer(**params, loss="bce" if rank else "mse")
    try:
        getattr(estimator, method)(X01)
    except ValueError as error:
        errors["loss", method] = str(error)
# What verbose prints, each rank's in a file: a fit's epochs and early
# stopping's line (rows on a line: training does not better the PCA start,
# which is restored), then two partial_fit calls' epochs.
from contextlib import redirect_stdout

with open(f"{sys.argv[2]}/stdout{rank}.txt", "w") as out, redirect_stdout(out):
    AutoencoderTransformer(**params, verbose=1).fit(X[:, :1] * [1, 2])
    AutoencoderTransformer(**params, verbose=1).partial_fit(X).partial_fit(X)
"""
    + DDP_REFUSAL_TAIL
)


def test_torchrun_refuses_other_settings_in_each_process(tmp_path, curved):
    # Another n_components on rank 1 raised torch's RuntimeError in one
    # process while the other waited for ever; another seed dealt out
    # overlapping shares of the rows, and another learning_rate_init trained
    # a different model in each process, both silently. Another patience
    # stopped one process early, leaving the other at a collective, and
    # another learning_rate schedule trained the weights apart, and another
    # ema_decay kept another model; partial_fit neither stops, schedules nor
    # averages, so both train alike there.
    np.save(tmp_path / "X.npy", curved[:100])
    run_torchrun(tmp_path, DDP_OTHER_SETTINGS_SCRIPT)
    (errors, model), (errors_1, model_1) = (
        pickle.loads((tmp_path / f"rank{rank}.pkl").read_bytes()) for rank in (0, 1)
    )
    assert errors == errors_1
    assert set(errors) == {
        (name, method)
        for name in ("network", "seed", "optimizer", "loss")
        for method in ("fit", "partial_fit")
    } | {("stopping", "fit"), ("schedule", "fit"), ("averaging", "fit")}
    expected = {
        "network": "rank 1 trains a network of other shapes than rank 0",
        "seed": "give every process the same int random_state",
        "optimizer": "give every process the same learning_rate_init and alpha",
        "stopping": "rank 1 stops or schedules training otherwise than rank 0",
        "schedule": "rank 1 stops or schedules training otherwise than rank 0",
        "averaging": "rank 1 stops or schedules training otherwise than rank 0",
        # The rows are compared after the loss's scaling: the message had
        # said only that rank 1 trained on other rows.
        "loss": "give every process the same X and the same loss",
    }
    for (name, _), message in errors.items():
        assert message.startswith(
            "Data-parallel training needs the same rows and parameters in every process"
        )
        assert expected[name] in message
    assert_array_equal(model.transform(curved), model_1.transform(curved))
    # verbose prints in rank 0 only (each process had printed every line).
    printed = (tmp_path / "stdout0.txt").read_text().splitlines()
    assert [line.split("  ")[0] for line in printed] == [
        "epoch 1/2",
        "epoch 2/2",
        printed[2],
        "epoch 1",
        "epoch 2",
    ]
    assert printed[2].startswith("Restoring best model from epoch")
    assert (tmp_path / "stdout1.txt").read_text() == ""


DDP_ONE_STOPS_SCRIPT = """
import pickle
import sys
import warnings

import numpy as np
import torch
import torch.distributed as dist
from skorch.callbacks import Callback

from skae import AutoencoderTransformer

torch.set_num_threads(1)
warnings.simplefilter("ignore")
dist.init_process_group("gloo")
rank = dist.get_rank()
X = np.load(sys.argv[1])


class StopRankZero(Callback):
    # A stop decided in one process only, as on a time budget.
    def __init__(self, interrupt=False):
        self.interrupt = interrupt

    def on_epoch_end(self, net, **kwargs):
        if rank == 0 and len(net.history) == 2:
            if self.interrupt:
                raise KeyboardInterrupt
            net.request_stop()


models = [
    AutoencoderTransformer(
        n_components=1, hidden_layer_sizes=(8,), max_iter=5, random_state=0,
        early_stopping=False, callbacks=[StopRankZero(interrupt)],
    ).fit(X)
    for interrupt in (False, True)
]
# The models hold the callback, defined here: their results travel instead.
with open(f"{sys.argv[2]}/rank{rank}.pkl", "wb") as f:
    pickle.dump([(model.n_iter_, model.transform(X)) for model in models], f)
dist.destroy_process_group()
"""


def test_torchrun_stops_every_process_when_one_stops(tmp_path, curved):
    # A callback that stopped one process (request_stop, or skorch's
    # KeyboardInterrupt) left the others training, waiting at the next
    # epoch's collectives for a process that had left the loop.
    np.save(tmp_path / "X.npy", curved[:100])
    run_torchrun(tmp_path, DDP_ONE_STOPS_SCRIPT)
    models, models_1 = (
        pickle.loads((tmp_path / f"rank{rank}.pkl").read_bytes()) for rank in (0, 1)
    )
    for (n_iter, codes), (n_iter_1, codes_1) in zip(models, models_1, strict=True):
        assert n_iter == n_iter_1 == 2
        assert_array_equal(codes, codes_1)


@pytest.mark.parametrize(
    "n_train, expected",
    [
        (1_347, ("adaptive", 2e-3, 200, 84, 0.99)),
        (19_999, ("adaptive", 2e-3, 200, 256, 0.99)),
        (20_000, ("one_cycle", 4e-3, 60, 512, 0.0)),
        (54_000, ("one_cycle", 4e-3, 60, 512, 0.0)),
    ],
)
def test_auto_training_plan_follows_the_number_of_training_rows(n_train, expected):
    plan = training_plan(AutoencoderTransformer(), n_train, CPU)
    keys = ("learning_rate", "learning_rate_init", "max_iter", "batch_size")
    keys += ("ema_decay",)
    assert tuple(plan[key] for key in keys) == expected


@pytest.mark.parametrize(
    "n_train, device, expected",
    [
        # Planned on fewer rows too, in the batches of an adaptive run.
        (1_347, CPU, ("one_cycle", 4e-3, 100, 84)),
        # From PLANNED_RUN_ROWS the plan of any fit.
        (54_000, CPU, ("one_cycle", 4e-3, 60, 512)),
        # CUDA adapts (its steps replay as graphs), as for any fit.
        (1_347, torch.device("cuda"), ("adaptive", 2e-3, 200, 84)),
    ],
)
def test_an_ordered_fit_plans_its_run(n_train, device, expected):
    keys = ("learning_rate", "learning_rate_init", "max_iter", "batch_size")
    plan = training_plan(AutoencoderTransformer(ordered=True), n_train, device)
    assert tuple(plan[key] for key in keys) == expected
    # A rate set by the user keeps its own values.
    ae = AutoencoderTransformer(ordered=True, learning_rate="adaptive")
    assert training_plan(ae, n_train, CPU)["max_iter"] == 200


def test_an_ordered_model_streams_at_the_adaptive_runs_rate():
    # partial_fit follows no schedule: the planned run's peak, 4e-3, would
    # be its constant rate; an unordered model streams at 1e-3.
    X = np.random.RandomState(0).normal(size=(100, 6))
    ae = AutoencoderTransformer(2, ordered=True, hidden_layer_sizes=(8,))
    plan = ae.partial_fit(X).training_plan_
    assert (plan["learning_rate"], plan["learning_rate_init"]) == ("adaptive", 1e-3)
    assert ae.fit(X).training_plan_["learning_rate"] == "one_cycle"


def test_partial_fit_goes_on_with_a_users_schedule_as_one_run():
    # skorch rebuilds the torch scheduler at each call, and torch's
    # constructor stepped StepLR once more: the rate halved twice at every
    # step of the schedule, 0.01, 0.01, 0.0025, 0.0025, 0.000625, ...
    X = np.random.RandomState(0).normal(size=(40, 4))
    schedule = LRScheduler(StepLR, step_size=2, gamma=0.5)
    ae = AutoencoderTransformer(
        2,
        init="random",
        learning_rate="constant",
        learning_rate_init=0.01,
        callbacks=[("schedule", schedule)],
        random_state=0,
    )
    for _ in range(6):
        ae.partial_fit(X)
    expected = [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]
    assert ae.net_.history[:, "event_lr"] == pytest.approx(expected)
    assert ae.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(0.00125)


@pytest.mark.parametrize(
    "schedule",
    [
        # Counted epochs, not batches: after the first call it went on from
        # step 1 at every call.
        LRScheduler(LinearLR, step_every="batch", end_factor=0.1, total_iters=8),
        # Never improved on by 10 times its loss; started afresh at every
        # call, it never lowered the rate.
        LRScheduler(
            ReduceLROnPlateau, patience=1, threshold=10.0, monitor="train_loss"
        ),
    ],
    ids=["every_batch", "plateau"],
)
def test_partial_fit_goes_on_with_a_schedules_progress(schedule):
    X = np.random.RandomState(0).normal(size=(40, 4))
    params = dict(
        init="random",
        learning_rate="constant",
        learning_rate_init=0.01,
        batch_size=20,
        callbacks=[("schedule", schedule)],
        random_state=0,
    )
    streamed = AutoencoderTransformer(2, **params)
    for _ in range(4):
        streamed.partial_fit(X)
    one_run = AutoencoderTransformer(
        2, max_iter=4, early_stopping=False, n_iter_no_change=10, **params
    )
    with pytest.warns(ConvergenceWarning):
        one_run.fit(X)
    lr = one_run.net_.optimizer_.param_groups[0]["lr"]
    assert lr < 0.005
    assert streamed.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(lr)


def test_a_planned_run_on_input_axes_takes_smaller_batches_over_fewer_epochs():
    ae = AutoencoderTransformer()
    keys = ("learning_rate", "learning_rate_init", "max_iter", "batch_size")
    ae.input_components_ = np.eye(300, 784)
    plan = training_plan(ae, 54_000, CPU)
    assert tuple(plan[key] for key in keys) == ("one_cycle", 7e-3, 40, 256)
    ae.input_components_ = None
    plan = training_plan(ae, 54_000, CPU)
    assert tuple(plan[key] for key in keys) == ("one_cycle", 4e-3, 60, 512)


@pytest.mark.parametrize(
    "cls, params",
    [
        (AutoencoderTransformer, {"learning_rate": "one_cycle"}),
        # A planned run by default.
        (DenoisingAutoencoder, {}),
    ],
)
def test_numpy_training_numbers_plan_a_run(cls, params):
    # A search's grid from np.arange gives np.int64: torch's OneCycleLR
    # refused the count of steps ("Expected positive integer total_steps,
    # but got 18").
    model = cls(
        hidden_layer_sizes=(8,),
        max_iter=np.int64(3),
        batch_size=np.int64(64),
        learning_rate_init=np.float32(4e-3),
        device="cpu",
        random_state=0,
        **params,
    ).fit(low_rank().numpy())
    assert model.n_iter_ == 3
    plan = model.training_plan_
    assert [type(plan[key]) for key in ("learning_rate_init", "max_iter")] == [
        float,
        int,
    ]
    assert type(plan["batch_size"]) is int


def test_auto_values_follow_an_explicit_schedule():
    # A chosen one-cycle run gets the planned peak and length, but keeps the
    # small-data batches: 512 rows come only with learning_rate='auto'.
    plan = training_plan(AutoencoderTransformer(learning_rate="one_cycle"), 54_000, CPU)
    assert (plan["learning_rate_init"], plan["max_iter"]) == (4e-3, 60)
    assert plan["batch_size"] == 256
    plan = training_plan(AutoencoderTransformer(learning_rate="constant"), 54_000, CPU)
    assert (plan["learning_rate_init"], plan["max_iter"]) == (1e-3, 200)
    # Explicit values are kept as given (batches no larger than the data).
    explicit = AutoencoderTransformer(
        learning_rate_init=0.01, max_iter=7, batch_size=1024
    )
    plan = training_plan(explicit, 500, CPU)
    assert plan == {
        "learning_rate": "adaptive",
        "learning_rate_init": 0.01,
        "max_iter": 7,
        "batch_size": 500,
        "ema_decay": 0.99,
    }


def test_partial_fit_with_auto_batch_size_again_takes_the_planned_one():
    # A call with an int batch_size wrote it into training_plan_, so that
    # 'auto' set back trained at that int from then on.
    X = low_rank().numpy()
    model = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(8,), device="cpu", random_state=0
    ).partial_fit(X[:100])
    planned = dict(model.training_plan_)
    assert planned["batch_size"] == 32
    model.set_params(batch_size=8).partial_fit(X[100:])
    assert model.net_.history[-1, "train_batch_count"] == 13
    model.set_params(batch_size="auto").partial_fit(X[100:])
    assert model.net_.history[-1, "train_batch_count"] == 4
    assert model.training_plan_ == planned


@pytest.mark.parametrize(
    "n_samples, fraction, n_valid", [(100, 0.001, 1), (100, 0.1, 10), (100, 0.99, 99)]
)
def test_early_stopping_holds_out_at_least_one_row(n_samples, fraction, n_valid):
    train, valid = split_rows(n_samples, True, fraction, np.random.RandomState(0))
    assert (len(train), len(valid)) == (n_samples - n_valid, n_valid)
    assert_array_equal(np.sort(np.r_[train, valid]), np.arange(n_samples))


def test_early_stopping_refuses_a_fraction_that_leaves_no_training_row():
    with pytest.raises(ValueError, match="validation_fraction=0.995 leaves no"):
        split_rows(100, True, 0.995, np.random.RandomState(0))


def test_auto_keeps_the_graphed_adaptive_schedule_on_cuda():
    # A one-cycle rate changes every step, which a CUDA graph cannot replay.
    plan = training_plan(AutoencoderTransformer(), 54_000, torch.device("cuda"))
    assert plan["learning_rate"] == "adaptive"
    assert (plan["learning_rate_init"], plan["max_iter"], plan["batch_size"]) == (
        2e-3,
        200,
        256,
    )


@pytest.fixture(params=[False, True], ids=["caller_unflushed", "caller_flushed"])
def flush_before(request):
    """The caller's denormal mode during the test; unflushed again after."""
    if not torch.set_flush_denormal(request.param):
        pytest.skip("this CPU cannot flush denormals")
    yield request.param
    torch.set_flush_denormal(False)


def test_training_flushes_denormals_and_restores_the_callers_mode(flush_before):
    seen = []

    class Probe(Callback):
        def on_epoch_end(self, net, **kwargs):
            seen.append(_flushing_denormals())

    make_net(n_features=3, max_epochs=2, batch_size=8, callbacks=[Probe()]).fit(
        row_ids(16)
    )
    assert seen == [True, True]
    assert _flushing_denormals() is flush_before


def test_inference_flushes_denormals_and_restores_the_callers_mode(flush_before):
    # Denormal activations slowed a fitted denoiser's transform 45-fold.
    net = make_net(n_features=3, max_epochs=1, batch_size=8).fit(row_ids(16))
    seen = net.map_batches(
        row_ids(4),
        lambda module, batch: torch.full((len(batch),), _flushing_denormals()),
        convert=None,
    )
    assert seen.tolist() == [True] * 4
    assert _flushing_denormals() is flush_before


def _float64_rows(net, X):
    """Each row's float64 reconstruction by the net's cached copy."""
    return net.map_batches(
        X, lambda module, batch: module(batch), convert=None, dtype=torch.float64
    )


def _fresh_float64_rows(net, X):
    """The same from a float64 copy made now, as every call made it before."""
    module = deepcopy(net.module_).double().eval()
    with torch.inference_mode():
        return module(X.double()).numpy()


def test_float64_copy_is_made_once_for_each_state_of_the_weights():
    X = low_rank(64)
    net = make_net(max_epochs=2).fit(X)
    first = net._float64_copy(net.module_)
    assert net._float64_copy(net.module_) is first
    assert_array_equal(_float64_rows(net, X), _fresh_float64_rows(net, X))
    # Training (fused Adam steps bump no version counter), loading weights,
    # new or changed tensors and a setting of a layer each make a new copy.
    first_layer, *_, last_layer = (
        layer for layer in net.module_.modules() if isinstance(layer, nn.Linear)
    )
    changes = [
        lambda: net.partial_fit(X, epochs=1),
        lambda: net.module_.load_state_dict(
            {k: v * 0.5 for k, v in net.module_.state_dict().items()}
        ),
        lambda: setattr(last_layer.bias, "data", last_layer.bias + 1.0),
        lambda: torch.nn.init.zeros_(first_layer.weight),
        lambda: setattr(net.module_.nested_dropout, "kept", 1),
    ]
    for change in changes:
        before = _float64_rows(net, X)
        change()
        after = _float64_rows(net, X)
        assert not np.array_equal(before, after)
        assert_array_equal(after, _fresh_float64_rows(net, X))


def test_float64_copy_is_neither_pickled_nor_copied():
    X = low_rank(64)
    net = make_net(max_epochs=2).fit(X)
    expected = _float64_rows(net, X)
    assert "_float64_module" in vars(net)
    for copied in (pickle.loads(pickle.dumps(net)), deepcopy(net), net.snapshot(2)):
        assert "_float64_module" not in vars(copied)
        assert_array_equal(_float64_rows(copied, X), expected)


def test_no_float64_copy_is_kept_while_training():
    # A copy made by a callback during training would outlive the steps
    # that follow, which a fused optimizer takes without a trace.
    X = low_rank(64)

    class ScoreEachEpoch(Callback):
        def on_epoch_end(self, net, **kwargs):
            assert_array_equal(_float64_rows(net, X), _fresh_float64_rows(net, X))
            assert vars(net)["_float64_module"] is None

    net = make_net(max_epochs=3, callbacks=[ScoreEachEpoch()]).fit(X)
    assert "_float64_module" not in vars(net)
    assert_array_equal(_float64_rows(net, X), _fresh_float64_rows(net, X))


def test_threads_score_alike_with_one_float64_copy():
    X = low_rank(64)
    net = make_net(max_epochs=2).fit(X)
    expected = _fresh_float64_rows(net, X)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: _float64_rows(net, X), range(16)))
    for result in results:
        assert_array_equal(result, expected)


@pytest.mark.parametrize("fit", ["max_epochs", "epochs"])
def test_a_run_of_no_epochs_returns_untrained(fit):
    # skorch trains no epoch and returns; the net raised KeyboardInterrupt
    # ("training interrupted before an epoch ended"), as for a Ctrl-C.
    X = low_rank()
    if fit == "max_epochs":
        net = make_net(max_epochs=0).fit(X)
    else:
        net = make_net().initialize()
        net.partial_fit(X, epochs=0)
    assert net.initialized_
    assert len(net.history) == 0
    assert net.predict(X).shape == X.shape
