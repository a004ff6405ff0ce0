import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from skorch.callbacks import Callback

from skae import (
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    DenoisingAutoencoder,
    VariationalAutoencoder,
)
from skae._callbacks import SKLEARN_CALLBACKS, _NoCallbackSupportMixin

if SKLEARN_CALLBACKS:
    from sklearn.callback import ProgressBar, ScoringMonitor

requires_callbacks = pytest.mark.skipif(
    not SKLEARN_CALLBACKS, reason="needs sklearn.callback (scikit-learn >= 1.9)"
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ESTIMATORS = [AutoencoderTransformer, DenoisingAutoencoder, VariationalAutoencoder]


def make(cls=AutoencoderTransformer, **params):
    """A small, fast, seeded estimator; ``params`` override the defaults."""
    defaults = dict(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    return cls(**{**defaults, **params})


def gaussian(n_samples=40, n_features=5, seed=0):
    return np.random.RandomState(seed).normal(size=(n_samples, n_features))


class Recorder:
    """A FitCallback that records every hook call, and can stop or fail.

    ``stop_at`` ends training after that epoch; ``fail_at`` raises there.
    ``snapshots=True`` asks for ``fitted_estimator`` and keeps it.
    """

    def __init__(self, stop_at=None, fail_at=None, snapshots=False):
        self.stop_at = stop_at
        self.fail_at = fail_at
        self.snapshots = snapshots
        self.calls = []
        self.fitted = {}

    def setup(self, estimator, context):
        self.calls.append(("setup", context.task_name, None))

    def teardown(self, estimator, context):
        self.calls.append(("teardown", context.task_name, None))

    def on_fit_task_begin(self, estimator, context, *, X=None, y=None):
        self.calls.append(("begin", context.task_name, context.task_id))
        self.data = X, y

    def on_fit_task_end(
        self, estimator, context, *, X=None, y=None, fitted_estimator=None
    ):
        self.calls.append(("end", context.task_name, context.task_id))
        if context.task_name != "epoch":
            return False
        epoch = context.task_id + 1
        if self.snapshots:
            self.fitted[epoch] = fitted_estimator
        if epoch == self.fail_at:
            raise RuntimeError("callback failed")
        return epoch == self.stop_at

    def epochs(self, hook):
        return [i for name, task, i in self.calls if name == hook and task == "epoch"]


class EpochBegin:
    """A FitCallback that keeps the model as it stands before each epoch."""

    def __init__(self):
        self.fitted = {}

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, *, fitted_estimator=None):
        if context.task_name == "epoch":
            self.fitted[context.task_id] = fitted_estimator

    def on_fit_task_end(self, estimator, context):
        return False


class CallEnd:
    """A FitCallback that keeps the model as each ``fit`` or ``partial_fit`` ends."""

    def __init__(self):
        self.fitted = []

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if context.task_name == "fit":
            self.fitted.append(fitted_estimator)


class EpochCounter(Callback):
    """A skorch callback that counts the epochs it sees end."""

    def on_train_begin(self, net, **kwargs):
        self.epochs_ = 0

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ += 1


# --------------------------------------------------------- the task tree


@requires_callbacks
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fit_is_a_root_task_with_one_task_per_epoch(cls):
    X, y = gaussian(), np.arange(40) % 2
    recorder = Recorder()
    est = make(cls, max_iter=3, early_stopping=False).set_callbacks(recorder)
    assert est.fit(X, y) is est
    assert recorder.calls == [
        ("setup", "fit", None),
        ("begin", "fit", 0),
        *[(hook, "epoch", i) for i in range(3) for hook in ("begin", "end")],
        ("end", "fit", 0),
        ("teardown", "fit", None),
    ]
    # The hooks get the data as the user passed them, not validated copies.
    assert recorder.data[0] is X
    assert recorder.data[1] is y


@requires_callbacks
@pytest.mark.parametrize("max_iter", [4, "auto"])
def test_root_task_expects_max_iter_epochs(max_iter):
    # A progress bar reads the count when the root task begins: max_iter='auto'
    # must be resolved by then.
    contexts = []

    class Contexts(Recorder):
        def on_fit_task_begin(self, estimator, context, *, X=None, y=None):
            contexts.append((context, context.max_subtasks))

    est = make(max_iter=max_iter).set_callbacks(Contexts()).fit(gaussian())
    planned = est.training_plan_["max_iter"]
    assert planned == (4 if max_iter == 4 else 200)
    (root, root_count), *epochs = contexts
    assert (root.task_name, root_count, root.parent) == ("fit", planned, None)
    assert [ctx.parent for ctx, _ in epochs] == [root] * est.n_iter_
    assert [count for _, count in epochs] == [0] * est.n_iter_


@requires_callbacks
def test_partial_fit_is_a_root_task_per_call():
    # As scikit-learn's own partial_fit: each call, one epoch, is a leaf task.
    X = gaussian()
    recorder = Recorder()
    make().set_callbacks(recorder).partial_fit(X[:20]).partial_fit(X[20:])
    call = [
        ("setup", "fit", None),
        ("begin", "fit", 0),
        ("end", "fit", 0),
        ("teardown", "fit", None),
    ]
    assert recorder.calls == call * 2
    assert_array_equal(recorder.data[0], X[20:])


@requires_callbacks
def test_sklearn_callback_in_callbacks_points_to_set_callbacks():
    est = make(callbacks=[ProgressBar()])
    with pytest.raises(TypeError, match=r"set with set_callbacks\(\)"):
        est.fit(gaussian())


@requires_callbacks
def test_without_callbacks_the_net_is_unchanged():
    est = make().fit(gaussian())
    assert "sklearn_epoch_tasks" not in dict(est.net_.callbacks_)
    assert not hasattr(est, "_epoch_tasks")


# ------------------------------------------------ the model at each epoch


@requires_callbacks
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fitted_estimator_is_the_model_at_each_epoch(cls):
    X = gaussian()
    before, after = EpochBegin(), Recorder(snapshots=True)
    est = make(cls, init="random", max_iter=3, early_stopping=False)
    est.set_callbacks(before, after).fit(X)

    models = {0: before.fitted[0], **after.fitted}
    for epoch, model in models.items():
        assert model is not est
        assert model.n_iter_ == epoch
        assert model.best_epoch_ == epoch
        assert len(model.loss_curve_) == epoch
        assert model.module_ is not est.module_
        codes = model.transform(X)
        assert codes.shape == (40, est.n_components_)
        assert model.inverse_transform(codes).shape == X.shape
        assert np.isfinite(model.score(X))
    # Snapshots, not views of the live network: each epoch has its own codes.
    assert not np.allclose(models[1].transform(X), models[3].transform(X))
    # The fitted model has the weights of best_epoch_, restored by early stopping.
    assert_allclose(models[est.best_epoch_].transform(X), est.transform(X))
    # Epoch 1 begins with the model that epoch 0 ended with.
    assert_allclose(before.fitted[1].transform(X), after.fitted[1].transform(X))


@requires_callbacks
@pytest.mark.parametrize(
    "cls, params",
    [
        (AutoencoderTransformer, {"ordered": True}),
        (AutoencoderTransformer, {"ordered": True, "n_components": 0.8}),
        (DenoisingAutoencoder, {"ordered": True, "skip": None}),
        (AutoencoderOutlierDetector, {}),
    ],
)
def test_fitted_estimator_has_what_the_pass_after_training_sets(cls, params):
    # An ordered network decodes each row twice until a width is kept, and a
    # detector scores with the error scales of its training rows.
    X = gaussian()
    after = Recorder(snapshots=True)
    est = make(cls, **{"n_components": 3, "early_stopping": False, **params})
    est.set_callbacks(after).fit(X)
    # The fitted model has the weights of best_epoch_ (a denoiser's noisy
    # training loss need not fall every epoch).
    last = after.fitted[est.best_epoch_]
    assert last.n_components_ == est.n_components_
    assert_allclose(last.explained_variance_score_, est.explained_variance_score_)
    assert_allclose(last.score_samples(X), est.score_samples(X))
    if cls is AutoencoderOutlierDetector:
        assert_array_equal(last.predict(X), est.predict(X))
    else:
        assert_allclose(last.explained_variance_ratio_, est.explained_variance_ratio_)
    # The snapshot's width, kept on its own copy of the network.
    assert after.fitted[1].transform(X).shape == (len(X), est.n_components_)


@requires_callbacks
@pytest.mark.parametrize("learning_rate", ["adaptive", "one_cycle"])
def test_a_snapshot_trains_on_its_own_weights(learning_rate):
    # A one-cycle snapshot goes on at the rate the cycle started from, which
    # its fresh optimizer must get.
    X = gaussian()
    after = Recorder(snapshots=True)
    est = make(init="random", early_stopping=False, learning_rate=learning_rate)
    est.set_callbacks(after).fit(X)
    snapshot = after.fitted[3]
    weights = [p.detach().clone() for p in est.module_.parameters()]
    before = snapshot.score(X)
    snapshot.partial_fit(X)
    assert snapshot.score(X) != before
    # The fitted model it was taken from is untouched.
    for p, q in zip(est.module_.parameters(), weights, strict=True):
        assert torch.equal(p, q)


@requires_callbacks
@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_the_model_a_call_ends_with_is_a_copy(method):
    # It shared the network with the estimator: the next partial_fit trained
    # a model kept from an earlier call, and training that model trained the
    # estimator.
    X = gaussian()
    call_end = CallEnd()
    est = make(init="random").set_callbacks(call_end)
    getattr(est, method)(X)
    model = call_end.fitted[0]
    codes = est.transform(X)
    assert_array_equal(model.transform(X), codes)
    est.partial_fit(X)
    assert_array_equal(model.transform(X), codes)
    codes = est.transform(X)
    model.partial_fit(X)
    assert_array_equal(est.transform(X), codes)
    assert not np.allclose(model.transform(X), codes)


@requires_callbacks
def test_snapshots_do_not_change_training():
    X = gaussian()
    plain = make(init="random").fit(X)
    watched = make(init="random").set_callbacks(Recorder(snapshots=True)).fit(X)
    assert_array_equal(plain.transform(X), watched.transform(X))
    assert plain.loss_curve_ == watched.loss_curve_


# ------------------------------------------------------------- stopping


@requires_callbacks
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_callback_stops_training_cleanly(cls):
    X = gaussian()
    counter = EpochCounter()
    recorder = Recorder(stop_at=2)
    est = make(cls, max_iter=5, callbacks=[("counter", counter)])
    est.set_callbacks(recorder).fit(X)
    assert est.n_iter_ == 2
    assert len(est.loss_curve_) == len(est.validation_loss_curve_) == 2
    assert recorder.epochs("begin") == recorder.epochs("end") == [0, 1]
    assert recorder.calls[-2:] == [("end", "fit", 0), ("teardown", "fit", None)]
    # skorch's callbacks saw the same epochs, the last one included.
    assert dict(est.net_.callbacks_)["counter"].epochs_ == 2
    assert est.transform(X).shape == (40, 2)


@requires_callbacks
def test_stopped_fit_restores_the_best_weights():
    # Training from random weights improves every epoch, so the epoch that the
    # callback stops at is the best: early stopping must have counted it.
    X = gaussian()
    recorder = Recorder(stop_at=2, snapshots=True)
    est = make(init="random", learning_rate_init=1e-2, early_stopping=False)
    est.set_params(max_iter=5).set_callbacks(recorder).fit(X)
    assert est.n_iter_ == est.best_epoch_ == 2
    assert_allclose(recorder.fitted[2].transform(X), est.transform(X))


@requires_callbacks
@pytest.mark.parametrize("stop_at", [1, 5])
def test_stop_does_not_warn_about_max_iter(stop_at):
    # Also a stop requested after the last epoch: the callback ended it.
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        make(max_iter=5).set_callbacks(Recorder(stop_at=stop_at)).fit(gaussian())


@requires_callbacks
def test_early_stopping_ends_the_same_loop():
    # Patience 1 and a tolerance no epoch can meet: skorch stops after epoch 1.
    recorder = Recorder()
    est = make(max_iter=5, n_iter_no_change=1, tol=10.0).set_callbacks(recorder)
    est.fit(gaussian())
    assert est.n_iter_ == 1
    assert recorder.epochs("begin") == recorder.epochs("end") == [0]
    assert recorder.calls[-1] == ("teardown", "fit", None)


@requires_callbacks
def test_refit_after_a_stop_trains_again():
    recorder = Recorder(stop_at=1)
    est = make(max_iter=3).set_callbacks(recorder).fit(gaussian())
    assert est.n_iter_ == 1
    recorder.stop_at = None
    assert est.fit(gaussian()).n_iter_ == 3


# ------------------------------------------------------------- failures


@requires_callbacks
def test_teardown_runs_when_fit_raises():
    recorder = Recorder()
    # n_components=9 > 5 features: fit raises after the root task began.
    est = make(n_components=9).set_callbacks(recorder)
    with pytest.raises(ValueError, match="n_components=9 must be <= "):
        est.fit(gaussian())
    assert recorder.calls[0] == ("setup", "fit", None)
    assert recorder.calls[-1] == ("teardown", "fit", None)
    assert not hasattr(est, "_callback_fit_ctx")


@requires_callbacks
def test_teardown_runs_when_a_callback_raises():
    recorder = Recorder(fail_at=2)
    est = make(max_iter=4).set_callbacks(recorder)
    with pytest.raises(RuntimeError, match="callback failed"):
        est.fit(gaussian())
    assert recorder.calls[-1] == ("teardown", "fit", None)
    with pytest.raises(NotFittedError):
        est.transform(gaussian())


class InterruptFirstEpoch(Callback):
    """A skorch callback that interrupts training before the first epoch ends."""

    def on_epoch_begin(self, net, **kwargs):
        raise KeyboardInterrupt


@requires_callbacks
def test_a_refit_interrupted_before_an_epoch_ends_leaves_it_unfitted():
    # As any fit that raises: not the model of the earlier fit.
    recorder = Recorder()
    est = make().fit(gaussian()).set_callbacks(recorder)
    est.set_params(callbacks=[InterruptFirstEpoch()])
    with pytest.raises(KeyboardInterrupt):
        est.fit(gaussian())
    assert recorder.calls[-3:] == [
        ("begin", "epoch", 0),
        ("end", "epoch", 0),
        ("teardown", "fit", None),
    ]
    with pytest.raises(NotFittedError):
        est.transform(gaussian())


class FailsAtTheEnd(Recorder):
    """A Recorder whose hook raises when the root task ends."""

    def on_fit_task_end(self, estimator, context, **kwargs):
        raise RuntimeError("callback failed at the end")


@requires_callbacks
def test_a_partial_fit_whose_callback_fails_at_its_end_changes_nothing():
    # The hook runs once the call has trained: a retry of the chunk then
    # trained on it twice.
    X = gaussian()
    est = make().partial_fit(X[:20])
    untouched = pickle.loads(pickle.dumps(est))
    est.set_callbacks(FailsAtTheEnd())
    with pytest.raises(RuntimeError, match="callback failed at the end"):
        est.partial_fit(X[20:])
    assert est.n_iter_ == len(est.net_.history) == 1
    assert est.n_samples_seen_ == 20
    assert_array_equal(est.transform(X), untouched.transform(X))
    first = make().set_callbacks(FailsAtTheEnd())
    with pytest.raises(RuntimeError, match="callback failed at the end"):
        first.partial_fit(X)
    with pytest.raises(NotFittedError):
        first.transform(X)


class FailsInSetup(Recorder):
    """A Recorder whose setup raises."""

    def setup(self, estimator, context):
        raise RuntimeError("callback failed in setup")


@requires_callbacks
@pytest.mark.parametrize("callback", [FailsInSetup(), FailsAtTheEnd()])
def test_a_refit_whose_callback_fails_leaves_it_unfitted(callback):
    # A refit on rows of other features whose callback failed in setup kept
    # the old 5-feature network with n_features_in_ = 3: transform crashed
    # in torch on 3 features and refused 5. Failing at the end of the fit,
    # as in an epoch's hook, it leaves no model either.
    X = gaussian()
    est = make().fit(X).set_callbacks(callback)
    with pytest.raises(RuntimeError, match="callback failed"):
        est.fit(X[:, :3])
    with pytest.raises(NotFittedError):
        est.transform(X[:, :3])


@requires_callbacks
def test_fitted_estimator_keeps_no_reference_to_the_data():
    X = gaussian()
    est = make().set_callbacks(Recorder()).fit(X)
    bridge = dict(est.net_.callbacks_)["sklearn_epoch_tasks"]
    assert bridge.X is bridge.y is bridge.estimator is bridge.context is None
    assert bridge.training_pass is None
    assert not hasattr(est, "_epoch_tasks")
    clone = pickle.loads(pickle.dumps(est))
    assert_allclose(clone.transform(X), est.transform(X))


class Checkpoint:
    """A FitCallback that pickles ``fitted_estimator`` at the end of each epoch."""

    def __init__(self):
        self.saved = {}

    def setup(self, estimator, context):
        pass

    def teardown(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if context.task_name == "epoch":
            self.saved[context.task_id + 1] = pickle.dumps(fitted_estimator)


@requires_callbacks
@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fitted_estimator_pickles_inside_the_hook(cls):
    # A checkpoint per epoch failed with "Can't pickle local object
    # '_BaseAutoencoder._fit.<locals>.<lambda>'": the copy's net shares the
    # live bridge, which holds the fit's data, task tree and estimator.
    X = gaussian()
    checkpoint, after = Checkpoint(), Recorder(snapshots=True)
    make(cls, early_stopping=False).set_callbacks(checkpoint, after).fit(X)
    assert sorted(checkpoint.saved) == [1, 2, 3]
    for epoch, saved in checkpoint.saved.items():
        model = pickle.loads(saved)
        assert_allclose(model.transform(X), after.fitted[epoch].transform(X))
        bridge = dict(model.net_.callbacks_)["sklearn_epoch_tasks"]
        assert bridge.X is bridge.estimator is bridge.context is None


# ----------------------------------------- scikit-learn's ready callbacks


@requires_callbacks
def test_progress_bar_nests_epochs_inside_a_search(digits, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich truncates long descriptions
    X, y = digits
    X, y = X[:120], y[:120]
    pipe = make_pipeline(
        make(max_iter=2, hidden_layer_sizes=(4,)), LogisticRegression(max_iter=20)
    )
    search = GridSearchCV(pipe, {"autoencodertransformer__n_components": [2]}, cv=2)
    search.set_callbacks(ProgressBar(max_propagation_depth=None))
    search.fit(X, y)
    out = capsys.readouterr().out
    assert "GridSearchCV - fit" in out
    assert (
        "Pipeline - fit-transform-autoencodertransformer | AutoencoderTransformer - fit"
    ) in out


@requires_callbacks
def test_propagated_callback_sees_epochs_under_the_search(digits):
    class Propagated(Recorder):
        max_propagation_depth = None

        def on_fit_task_end(self, estimator, context, *, X=None, y=None):
            if context.task_name == "epoch":
                path = []
                while context is not None:
                    path.append(context.estimator_name)
                    context = context.parent
                self.paths.append(path[::-1])
            return False

    X, y = digits
    X, y = X[:120], y[:120]
    recorder = Propagated()
    recorder.paths = []
    pipe = make_pipeline(
        make(max_iter=2, hidden_layer_sizes=(4,)), LogisticRegression()
    )
    search = GridSearchCV(pipe, {"autoencodertransformer__n_components": [2]}, cv=2)
    search.set_callbacks(recorder).fit(X, y)
    # 2 splits and the refit, 2 epochs each.
    assert len(recorder.paths) == 6
    assert recorder.paths[0][0] == "GridSearchCV"
    assert recorder.paths[0][-2:] == ["AutoencoderTransformer"] * 2


def reconstruction(estimator, X, y):
    return estimator.score(X)


@requires_callbacks
def test_scoring_monitor_logs_the_score_per_epoch():
    X, y = gaussian(), np.arange(40) % 2
    monitor = ScoringMonitor(scoring={"reconstruction": reconstruction})
    est = make(max_iter=3, early_stopping=False).set_callbacks(monitor)
    est.fit(X, y)
    rows = monitor.get_logs().data
    epochs = [row for row in rows if row["task_name"] == "epoch"]
    assert [row["task_id"] for row in epochs] == [0, 1, 2]
    (fit,) = [row for row in rows if row["task_name"] == "fit"]
    assert fit["reconstruction"] == pytest.approx(est.score(X))
    assert all(np.isfinite(row["reconstruction"]) for row in epochs)


@requires_callbacks
def test_scoring_monitor_scores_nothing_without_y():
    # scikit-learn's monitor skips the scorer when fit gets no y; skae's fit
    # ignores y, so passing one (labels, or any placeholder) turns scoring on.
    monitor = ScoringMonitor(scoring={"reconstruction": reconstruction})
    make().set_callbacks(monitor).fit(gaussian())
    assert all("reconstruction" not in row for row in monitor.get_logs().data)


@requires_callbacks
def test_verbose_log_and_callbacks_see_the_same_epochs(capsys):
    make(max_iter=4, verbose=1).set_callbacks(Recorder(stop_at=2)).fit(gaussian())
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("epoch")]
    assert [row.split()[1] for row in rows] == ["1/4", "2/4"]


# ------------------------------------------ scikit-learn without callbacks


if SKLEARN_CALLBACKS:

    class OldSklearnAutoencoder(_NoCallbackSupportMixin, AutoencoderTransformer):
        """AutoencoderTransformer as it is where sklearn.callback is missing."""

else:
    OldSklearnAutoencoder = AutoencoderTransformer


def test_without_sklearn_callbacks_set_callbacks_warns_and_is_a_no_op():
    est = OldSklearnAutoencoder(hidden_layer_sizes=(8,), max_iter=2, random_state=0)
    recorder = Recorder()
    with pytest.warns(UserWarning, match=r"set_callbacks needs scikit-learn >= 1\.9"):
        assert est.set_callbacks(recorder) is est
    est.fit(gaussian())
    assert recorder.calls == []
    assert est.n_iter_ == 2
    assert "sklearn_epoch_tasks" not in dict(est.net_.callbacks_)
