import itertools
import os
import signal
import threading
import time

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback
from threadpoolctl import threadpool_info, threadpool_limits

from skae import (
    AutoencoderNet,
    AutoencoderOutlierDetector,
    AutoencoderTransformer,
    DenoisingAutoencoder,
    TrainingDivergedError,
    VariationalAutoencoder,
    _threads,
)
from skae._ordering import nested_dropout
from skae._threads import (
    FEW_ROWS,
    IntraOpThreads,
    one_blas_thread,
    restored_threads,
    set_threads,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def caller_threads():
    """Let a test set the caller's count; the session's comes back after."""
    with restored_threads():
        yield


class RecordThreads(Callback):
    """Torch's thread count for each training batch.

    Read as the batch begins: at its end IntraOpThreads has already set the
    count back to the one chosen, whatever the batch ran on.
    """

    def on_train_begin(self, net, **kwargs):
        self.counts_ = []

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.counts_.append(torch.get_num_threads())


def fit(X, estimator=AutoencoderTransformer, **params):
    defaults = dict(n_components=2, hidden_layer_sizes=(8,), random_state=0)
    return estimator(device="cpu", **{**defaults, **params}).fit(X)


def test_the_callers_count_comes_back(caller_threads, curved):
    torch.set_num_threads(2)
    fit(curved, max_iter=3)
    assert torch.get_num_threads() == 2


def test_the_callers_count_comes_back_after_an_error(caller_threads, curved):
    torch.set_num_threads(2)
    with pytest.raises(TrainingDivergedError):
        fit(curved, learning_rate_init=1e6, init="random", max_iter=3)
    assert torch.get_num_threads() == 2


@pytest.fixture
def quick_steps(monkeypatch):
    """Time each training step at a microsecond, whatever the machine's load.

    On a busy machine a tiny fit's first step can take over the 2 ms that
    keep it on one thread: it then tries two, and may keep them.
    """
    clock = itertools.count()
    monkeypatch.setattr("skae._threads.time.perf_counter", lambda: next(clock) * 1e-6)


def test_a_small_fit_trains_on_one_thread(caller_threads, quick_steps, curved):
    torch.set_num_threads(2)
    model = fit(curved, max_iter=3, callbacks=[("record", RecordThreads())])
    counts = dict(model.net_.callbacks_)["record"].counts_
    assert counts and set(counts) == {1}


def test_the_held_out_scores_run_on_the_trained_count(
    caller_threads, quick_steps, curved, monkeypatch
):
    # On busy cores the caller's count would stall the passes after training
    # as it stalls training; a small fit settles on one thread.
    torch.set_num_threads(2)
    counts = []
    training_pass = AutoencoderTransformer._training_pass

    def record(self, *args):
        counts.append(torch.get_num_threads())
        return training_pass(self, *args)

    monkeypatch.setattr(AutoencoderTransformer, "_training_pass", record)
    fit(curved, max_iter=3)
    assert counts == [1]
    assert torch.get_num_threads() == 2


@pytest.fixture
def on_the_callers_count(monkeypatch):
    """Train every batch on the caller's count, whatever the timings say."""
    begin = IntraOpThreads.on_train_begin

    def on_train_begin(self, net, **kwargs):
        begin(self, net, **kwargs)
        # No batch on one thread to compare with: the caller's count wins,
        # also where the first step is too quick for threads to pay.
        self.seconds_per_row_[1] = float("inf")
        self.min_batch_seconds = 0.0

    monkeypatch.setattr(IntraOpThreads, "on_train_begin", on_train_begin)
    monkeypatch.setattr(IntraOpThreads, "_choose", lambda self: self.max_threads_)
    monkeypatch.setattr(
        IntraOpThreads,
        "_choose_best",
        lambda self: setattr(self, "n_threads_", self.max_threads_),
    )


def test_a_fit_on_the_callers_count_keeps_it_from_step_to_step(
    caller_threads, on_the_callers_count, curved, monkeypatch
):
    # Each change of the count starts two threads (set_threads): the weight
    # average's update put each step on one thread and back, which made a
    # default digits fit slower on two threads than on one.
    torch.set_num_threads(2)
    changes = []
    set_num_threads = torch.set_num_threads

    def record(n_threads):
        if threading.current_thread() is threading.main_thread():
            changes.append(n_threads)
        set_num_threads(n_threads)

    monkeypatch.setattr(torch, "set_num_threads", record)
    changes_per_fit = []
    for max_iter in (5, 10):
        changes.clear()
        # 360 training rows in 9 batches of 40, 40 held out: no few-row batch.
        model = fit(
            curved,
            max_iter=max_iter,
            batch_size=40,
            callbacks=[("record", RecordThreads())],
        )
        callbacks = dict(model.net_.callbacks_)
        assert "weight_average" in callbacks
        assert callbacks["record"].counts_ == [2] * 9 * max_iter
        changes_per_fit.append(len(changes))
    # The trial's and the fit's own changes, not one more for each step.
    assert changes_per_fit[0] == changes_per_fit[1] < 20


@pytest.mark.skipif(
    not torch.backends.mkl.is_available(), reason="torch's matrix products use MKL"
)
@pytest.mark.parametrize(
    "estimator, params",
    [
        (AutoencoderTransformer, {"ordered": True}),
        (DenoisingAutoencoder, {"noise_level": 0.3}),
        (VariationalAutoencoder, {}),
        (AutoencoderOutlierDetector, {"trim_fraction": 0.1}),
    ],
    ids=["ordered", "denoising", "variational", "outlier"],
)
def test_the_fit_does_not_depend_on_the_callers_count(
    caller_threads, on_the_callers_count, estimator, params
):
    # 784 features, as Fashion-MNIST's: MKL's default mode multiplies a batch
    # by the first layer's 784 inputs in one part per thread, and PyTorch
    # sums a batch's 200,704 squared errors so too (user guide).
    rng = np.random.RandomState(0)
    X = (rng.normal(size=(400, 8)) @ rng.normal(size=(8, 784))).astype(np.float32)
    X += 0.1 * rng.normal(size=X.shape).astype(np.float32)
    if estimator is not AutoencoderOutlierDetector:
        params["n_components"] = 8
    models = []
    # Four threads too: on two cores they take turns, with the same sums.
    for n_threads in (1, 2, 4):
        torch.set_num_threads(n_threads)
        model = estimator(max_iter=3, random_state=0, device="cpu", **params).fit(X)
        assert dict(model.net_.callbacks_)["intra_op_threads"].n_threads_ == n_threads
        models.append(model)
    first = models[0]
    for other in models[1:]:
        assert_array_equal(
            first.net_.history[:, "valid_loss"], other.net_.history[:, "valid_loss"]
        )
        for a, b in zip(
            first.module_.state_dict().values(),
            other.module_.state_dict().values(),
            strict=True,
        ):
            assert torch.equal(a, b)
        if estimator is AutoencoderOutlierDetector:
            # The same model, scored by float64 products on the caller's
            # count: on an AMD EPYC one score of 400 differed in its last bit.
            assert_allclose(first.score_samples(X), other.score_samples(X), rtol=1e-14)
        else:
            assert_array_equal(first.transform(X), other.transform(X))


@pytest.mark.skipif(
    not torch.backends.mkl.is_available(), reason="torch's matrix products use MKL"
)
@pytest.mark.parametrize(
    "n_components, batch_size, n_full",
    # 1,198 rows in batches of 74 leave 14 for the last, in batches of 118
    # 18: MKL multiplied them by a code layer of 16 (20) units otherwise on
    # two threads than on one.
    [(16, 74, 16), (20, 118, 10)],
)
def test_a_small_last_batch_does_not_make_the_fit_depend_on_the_count(
    caller_threads, on_the_callers_count, digits, n_components, batch_size, n_full
):
    X = digits[0][:1198]
    states = []
    for n_threads in (1, 2):
        torch.set_num_threads(n_threads)
        model = fit(
            X,
            n_components=n_components,
            hidden_layer_sizes=(32,),
            batch_size=batch_size,
            early_stopping=False,
            max_iter=2,
            callbacks=[("record", RecordThreads())],
        )
        counts = dict(model.net_.callbacks_)["record"].counts_
        # The full batches, then the last on one thread, in each epoch.
        assert counts == ([n_threads] * n_full + [1]) * 2
        states.append(model.module_.state_dict())
    for name, weight in states[0].items():
        assert torch.equal(weight, states[1][name]), name


class FakeNet:
    device = "cpu"


def run_batches(callback, seconds, n_batches, begin=True):
    """Train ``n_batches`` fake batches of 30 rows; return the counts used.

    ``seconds`` maps a thread count to the seconds of one batch on it; with
    ``begin=False`` the callback's training goes on. After each batch the
    count must be the best one, for the validation passes.
    """
    clock = [0.0]
    used = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("skae._threads.time.perf_counter", lambda: clock[0])
        if begin:
            callback.on_train_begin(FakeNet())
        for _ in range(n_batches):
            callback.on_batch_begin(FakeNet(), batch=torch.zeros(30, 2), training=True)
            used.append(torch.get_num_threads())
            clock[0] += seconds[torch.get_num_threads()]
            callback.on_batch_end(FakeNet(), batch=torch.zeros(30, 2), training=True)
            assert torch.get_num_threads() == callback.n_threads_
    return used


@pytest.mark.parametrize(
    "seconds, best, trial",
    [
        ({1: 0.010, 2: 0.006}, 2, [1, 1, 1, 1, 2, 2, 2, 2]),
        # Four times slower: the trial of two threads ends after two timed
        # batches.
        ({1: 0.010, 2: 0.040}, 1, [1, 1, 1, 1, 2, 2, 2]),
    ],
    ids=["quiet cores: more threads", "busy cores: one thread"],
)
def test_the_faster_count_wins_and_the_other_is_tried_again(
    caller_threads, seconds, best, trial
):
    torch.set_num_threads(2)
    callback = IntraOpThreads(probe_every=10, probe_budget=0.5)
    used = run_batches(callback, seconds, 40)
    # A warm-up batch and three on one thread, then the caller's count for
    # one untimed batch and up to three, then the faster one, with one batch
    # of the other every probe_every batches (the budget allows that many
    # here).
    assert used[: len(trial)] == trial
    probes = list(range(len(trial) + 9, 40, 10))
    assert [used[i] for i in probes] == [3 - best] * len(probes)
    rest = [used[i] for i in range(len(trial), 40) if i not in probes]
    assert set(rest) == {best}
    assert callback.n_threads_ == best
    assert callback.seconds_per_row_[best] == pytest.approx(seconds[best] / 30)


def test_slow_first_batches_do_not_end_the_trial_of_more_threads(caller_threads):
    # The first batches on two threads after idle time, or after another
    # library's threads ran (a LogisticRegression's, in a search), can take
    # many times as long: the first one ended the trial, and the fit stayed
    # on one thread for hundreds of batches.
    torch.set_num_threads(2)
    callback = IntraOpThreads(probe_every=10, probe_budget=0.5)
    clock = [0.0]
    used = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("skae._threads.time.perf_counter", lambda: clock[0])
        callback.on_train_begin(FakeNet())
        for _ in range(12):
            batch = torch.zeros(30, 2)
            callback.on_batch_begin(FakeNet(), batch=batch, training=True)
            n_threads = torch.get_num_threads()
            waking = n_threads == 2 and used.count(2) < 2
            used.append(n_threads)
            clock[0] += 0.050 if waking else {1: 0.010, 2: 0.006}[n_threads]
            callback.on_batch_end(FakeNet(), batch=batch, training=True)
    assert used == [1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2]
    assert callback.n_threads_ == 2
    # The first batch is not timed; the second is in the window, outvoted.
    assert callback.seconds_per_row_[2] == pytest.approx(0.006 / 30)


def test_tries_of_a_slower_count_keep_within_the_budget(caller_threads):
    torch.set_num_threads(2)
    # Two threads stall to 20 times one thread's time: a try costs about
    # 20 batches, so 2% of the time allows one try every 1,000 batches.
    callback = IntraOpThreads(probe_budget=0.02)
    seconds = {1: 0.010, 2: 0.200}
    used = run_batches(callback, seconds, 2500)
    probes = [i for i, n in enumerate(used) if n == 2]
    # The trial's untimed batch and two stalled ones, then a try every 1,000.
    assert probes == [4, 5, 6, 1006, 2006]
    spent_on_tries = sum(seconds[2] for _ in probes[3:])
    assert spent_on_tries / sum(seconds[n] for n in used) < 0.02 + 1e-9


def test_more_threads_come_back_when_the_load_goes(caller_threads):
    torch.set_num_threads(2)
    callback = IntraOpThreads(probe_every=10, probe_budget=0.02)
    used = run_batches(callback, {1: 0.010, 2: 0.050}, 100)
    assert used[4:7] == [2, 2, 2] and set(used[7:]) == {1}
    # Two threads now win their tries: once two of the three batches in
    # their median are tries (the trial's two stalls drop out one by one).
    used = run_batches(callback, {1: 0.010, 2: 0.004}, 800, begin=False)
    assert used.count(2) > 100
    assert used[-1] == 2 and callback.n_threads_ == 2


def test_a_caller_on_one_thread_is_kept_there(caller_threads, monkeypatch):
    torch.set_num_threads(1)
    callback = IntraOpThreads()
    callback.on_train_begin(FakeNet())
    for _ in range(5):
        callback.on_batch_begin(FakeNet(), batch=torch.zeros(4, 2), training=True)
        assert torch.get_num_threads() == 1
        callback.on_batch_end(FakeNet(), batch=torch.zeros(4, 2), training=True)


def test_a_batch_of_few_rows_runs_on_one_thread_untimed(caller_threads):
    torch.set_num_threads(2)
    callback = IntraOpThreads()
    callback.on_train_begin(FakeNet())
    callback.n_threads_ = 2  # as chosen after the trials
    for training in (True, False):
        batch = torch.zeros(FEW_ROWS - 1, 2)
        callback.on_batch_begin(FakeNet(), batch=batch, training=training)
        assert torch.get_num_threads() == 1
        callback.on_batch_end(FakeNet(), batch=batch, training=training)
        # Back to the count chosen, for what follows.
        assert torch.get_num_threads() == 2
    assert callback.n_batches_ == 0
    assert callback.seconds_per_row_ == {}


def test_restored_threads_restores_on_error(caller_threads):
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError), restored_threads():
        torch.set_num_threads(1)
        raise RuntimeError
    assert torch.get_num_threads() == 2


def test_validation_batches_do_not_count(caller_threads):
    torch.set_num_threads(2)
    callback = IntraOpThreads()
    callback.on_train_begin(FakeNet())
    callback.on_batch_begin(FakeNet(), batch=torch.zeros(4, 2), training=False)
    callback.on_batch_end(FakeNet(), batch=torch.zeros(4, 2), training=False)
    assert callback.n_batches_ == 0
    assert callback.seconds_per_row_ == {}


def new_thread_count():
    """Return the count that a thread starting now takes."""
    counts = []
    thread = threading.Thread(target=lambda: counts.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    return counts[0]


class RecordNewThreads(Callback):
    """This thread's count and a new thread's, at the end of each epoch."""

    def __init__(self, set_elsewhere=None):
        self.set_elsewhere = set_elsewhere

    def on_train_begin(self, net, **kwargs):
        self.counts_ = []

    def on_epoch_end(self, net, **kwargs):
        if self.set_elsewhere is not None:
            # Another thread of the program sets its count meanwhile.
            thread = threading.Thread(
                target=torch.set_num_threads, args=(self.set_elsewhere,)
            )
            thread.start()
            thread.join()
        self.counts_.append((torch.get_num_threads(), new_thread_count()))


@pytest.fixture
def trains_on_one_thread(monkeypatch):
    """Make fits choose one thread, whatever the timings on a busy machine."""
    monkeypatch.setattr(IntraOpThreads, "_choose", lambda self: 1)
    monkeypatch.setattr(IntraOpThreads, "_choose_best", lambda self: None)


def test_threads_starting_during_a_fit_take_the_process_count(
    caller_threads, trains_on_one_thread, curved
):
    # torch.set_num_threads also sets the count that threads take when they
    # first use torch: a thread started during a fit (a server's request, a
    # search's worker) used to take the fit's one thread, for its lifetime.
    torch.set_num_threads(2)
    model = fit(curved, max_iter=2, callbacks=[("record", RecordNewThreads())])
    assert dict(model.net_.callbacks_)["record"].counts_ == [(1, 2), (1, 2)]
    assert torch.get_num_threads() == 2
    assert new_thread_count() == 2


def test_a_fit_keeps_a_count_another_thread_set_meanwhile(
    caller_threads, trains_on_one_thread, curved
):
    # The fit's restore used to put back its caller's count for new threads
    # too, over the one another thread had set during the fit.
    torch.set_num_threads(2)
    fit(curved, max_iter=2, callbacks=[("record", RecordNewThreads(3))])
    assert torch.get_num_threads() == 2
    assert new_thread_count() == 3


def test_a_fit_under_a_limit_leaves_new_threads_the_process_count(
    caller_threads, curved
):
    # The limit is this thread's; a fit under it used to set one thread for
    # every thread started after it, the limit long gone.
    torch.set_num_threads(2)
    with threadpool_limits(limits=1, user_api="openmp"):
        if torch.get_num_threads() != 1:  # pragma: no cover
            pytest.skip("threadpoolctl does not limit torch's OpenMP here")
        fit(curved, max_iter=2)
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    assert new_thread_count() == 2


@pytest.fixture
def slow_steps(monkeypatch):
    """Time each training step at 10 ms: work worth trying more threads on."""
    clock = itertools.count()
    monkeypatch.setattr("skae._threads.time.perf_counter", lambda: next(clock) * 0.01)


@pytest.mark.parametrize("limited", [False, True])
def test_every_batch_keeps_within_a_threadpool_limit(
    caller_threads, slow_steps, curved, limited
):
    # Under the limit the caller's count is one: nothing else to try.
    torch.set_num_threads(2)
    torch.ones(64, 64) @ torch.ones(64, 64)  # threadpoolctl reaches torch after
    with threadpool_limits(limits=1 if limited else None, user_api="openmp"):
        if limited and torch.get_num_threads() != 1:  # pragma: no cover
            pytest.skip("threadpoolctl does not limit torch's OpenMP here")
        # Batches of 24: fewer rows would run on one thread whatever the limit.
        model = fit(
            curved, max_iter=3, batch_size=24, callbacks=[("record", RecordThreads())]
        )
    counts = dict(model.net_.callbacks_)["record"].counts_
    assert set(counts) == ({1} if limited else {1, 2})


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_while_a_count_is_set_can_set_its_own(caller_threads):
    # As if another thread were setting its count when the process forked
    # (joblib's multiprocessing backend): the child's first fit used to wait
    # for ever on a lock nobody in the child would release.
    torch.set_num_threads(2)
    with _threads._set_threads_lock:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                set_threads(1)
                os._exit(0 if torch.get_num_threads() == 1 else 1)
            finally:
                os._exit(2)
    for _ in range(200):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:  # pragma: no cover
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung on setting its count")
    assert os.waitstatus_to_exitcode(status) == 0


# Fits and inference in threads of one process. torch's thread count, grad
# mode and flush-denormal mode belong to each thread; its RNG and default
# dtype to the process.


def in_threads(*targets, names=None):
    """Run each target in a thread of its own; return their results in order.

    An exception in a thread is raised again here.
    """
    results = [None] * len(targets)
    errors = []

    def run(i):
        try:
            results[i] = targets[i]()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    names = names or [None] * len(targets)
    threads = [
        threading.Thread(target=run, args=(i,), name=names[i])
        for i in range(len(targets))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("seeds", [(0, 0), (0, 1)], ids=["same seed", "two seeds"])
def test_fits_in_threads_equal_fits_one_after_the_other(caller_threads, curved, seeds):
    torch.set_num_threads(2)
    barrier = threading.Barrier(len(seeds))

    def fit_on(seed, n_threads):
        def target():
            # Each thread's own count, which its fit must give back. Read
            # first: torch sets a thread's count from the process's value
            # when the thread first asks for it, undoing an earlier set.
            torch.get_num_threads()
            torch.set_num_threads(n_threads)
            barrier.wait(timeout=10)
            model = fit(curved, max_iter=3, random_state=seed)
            return model.transform(curved), torch.get_num_threads()

        return target

    results = in_threads(
        *(fit_on(seed, n) for seed, n in zip(seeds, (1, 2), strict=True))
    )
    for seed, (codes, n_threads), expected_count in zip(
        seeds, results, (1, 2), strict=True
    ):
        assert n_threads == expected_count
        assert_array_equal(
            codes, fit(curved, max_iter=3, random_state=seed).transform(curved)
        )
    assert torch.get_num_threads() == 2


def test_a_prefix_decode_changes_nothing_other_threads_see(curved, monkeypatch):
    # inverse_transform of the first k columns of an ordered code used to
    # set the shared network's kept width for its decode and put it back
    # after: meanwhile other threads scored with the prefix, and two such
    # calls restoring in the wrong order left the prefix for good.
    model = fit(curved, n_components=4, ordered=True, max_iter=2)
    codes = model.transform(curved)
    expected = {k: model.inverse_transform(codes[:, :k]) for k in (2, 3)}
    score = model.score(curved)
    paused = {name: threading.Event() for name in ("two", "three")}
    resume = {name: threading.Event() for name in ("two", "three")}
    map_batches = AutoencoderNet.map_batches

    def pausing(self, *args, **kwargs):
        name = threading.current_thread().name
        if name in paused:
            paused[name].set()
            assert resume[name].wait(timeout=10)
        return map_batches(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderNet, "map_batches", pausing)
    threads = {
        name: threading.Thread(
            target=lambda k=k: results.__setitem__(
                k, model.inverse_transform(codes[:, :k])
            ),
            name=name,
        )
        for name, k in (("two", 2), ("three", 3))
    }
    results = {}
    try:
        threads["two"].start()
        assert paused["two"].wait(timeout=10)
        threads["three"].start()
        assert paused["three"].wait(timeout=10)
        # Both decodes are under way: the model is as fitted for the others.
        assert model.score(curved) == score
        assert nested_dropout(model.module_).kept == 4
    finally:
        # The first to start ends first.
        for name in ("two", "three"):
            resume[name].set()
            threads[name].join(timeout=10)
    for k in (2, 3):
        assert_array_equal(results[k], expected[k])
    assert nested_dropout(model.module_).kept == 4
    assert model.score(curved) == score


@pytest.fixture
def float64_default():
    """Make float64 torch's default dtype for the test, float32 again after."""
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


class Hold(Callback):
    """Call ``pause()`` at the end of each epoch.

    A function, which skorch's copies of the callbacks share, rather than
    the events it waits on, which do not copy.
    """

    def __init__(self, pause):
        self.pause = pause

    def on_epoch_end(self, net, **kwargs):
        self.pause()


def test_a_fit_ending_leaves_float32_to_fits_still_running(
    float64_default, curved, monkeypatch
):
    # The default dtype is the process's. The first fit used to put the
    # caller's float64 back when it ended, while a second fit in another
    # thread was still to build its network: built in float64, it failed on
    # the float32 rows ('mat1 and mat2 must have the same dtype').
    expected = fit(curved, max_iter=2).transform(curved)
    first_training, first_done = threading.Event(), threading.Event()
    second_started = threading.Event()
    setup = AutoencoderTransformer._setup

    def waiting_setup(self, *args, **kwargs):
        # The second fit has entered its fit, and builds its network only
        # once the first has ended.
        if threading.current_thread().name == "second":
            second_started.set()
            assert first_done.wait(timeout=10)
        return setup(self, *args, **kwargs)

    monkeypatch.setattr(AutoencoderTransformer, "_setup", waiting_setup)

    def first():
        try:

            def pause():
                first_training.set()
                assert second_started.wait(timeout=10)

            fit(curved, max_iter=2, random_state=1, callbacks=[("hold", Hold(pause))])
        finally:
            first_done.set()

    def second():
        assert first_training.wait(timeout=10)
        return fit(curved, max_iter=2).transform(curved)

    _, codes = in_threads(first, second, names=["first", "second"])
    assert_array_equal(codes, expected)
    assert torch.get_default_dtype() == torch.float64


@pytest.mark.parametrize(
    "estimator", [AutoencoderTransformer, AutoencoderOutlierDetector]
)
def test_a_search_on_threads_equals_one_on_one_thread(
    caller_threads, curved, estimator
):
    torch.set_num_threads(2)
    scores = []
    for n_jobs in (1, 2):
        search = GridSearchCV(
            estimator(
                hidden_layer_sizes=(8,), max_iter=2, random_state=0, device="cpu"
            ),
            {"n_components": [1, 2]},
            # The detector has no score: any scoring shows whether the runs
            # on threads and on one thread agree.
            scoring=lambda model, X, y=None: float(model.score_samples(X).mean()),
            cv=2,
            n_jobs=n_jobs,
        )
        with joblib.parallel_config(backend="threading"):
            search.fit(curved)
        scores.append(search.cv_results_["mean_test_score"])
    assert_array_equal(*scores)
    assert torch.get_num_threads() == 2


# --- NumPy's and SciPy's BLAS threads ---


@pytest.mark.parametrize(
    "estimator", [AutoencoderTransformer, AutoencoderOutlierDetector]
)
def test_a_fit_does_not_depend_on_the_blas_thread_count(digits, estimator):
    # OpenBLAS rounded PCA's start of these rows differently on one thread
    # and on two (OPENBLAS_NUM_THREADS=1 or OMP_NUM_THREADS=1 and not), and
    # the fits went apart; the detector's statistics come from it too.
    X = digits[0]
    fitted = []
    for limit in (1, 2):
        with threadpool_limits(limits=limit, user_api="blas"):
            fitted.append(fit(X, estimator, max_iter=2, early_stopping=True))
    one, two = fitted
    for name, value in vars(one).items():
        if name.endswith("_") and isinstance(value, np.ndarray):
            assert_array_equal(value, getattr(two, name), err_msg=name)
    for (name, weight), other in zip(
        one.net_.module_.state_dict().items(),
        two.net_.module_.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(weight, other), name


def blas_counts():
    return {
        info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"
    }


def test_the_callers_blas_count_comes_back(curved):
    with threadpool_limits(limits=2, user_api="blas"):
        fit(curved, max_iter=2)
        assert blas_counts() == {2}


def test_overlapping_blas_blocks_restore_the_count_when_the_last_leaves():
    first, second = one_blas_thread(), one_blas_thread()
    with threadpool_limits(limits=2, user_api="blas"):
        first.__enter__()
        second.__enter__()
        assert blas_counts() == {1}
        # A fit in another thread that ends first leaves the count at one
        # for the one still setting up.
        first.__exit__(None, None, None)
        assert blas_counts() == {1}
        second.__exit__(None, None, None)
        assert blas_counts() == {2}


def test_the_last_blas_block_to_leave_keeps_its_threads_torch_count(caller_threads):
    # torch's count is the calling thread's OpenMP count: restoring the BLAS
    # count must not set it to the count of the thread that entered first.
    torch.set_num_threads(1)
    first, second = one_blas_thread(), one_blas_thread()
    entered, left = threading.Event(), threading.Event()
    counts = []

    def other():
        torch.get_num_threads()
        torch.set_num_threads(2)
        with second:
            entered.set()
            left.wait(timeout=10)
        counts.append(torch.get_num_threads())

    first.__enter__()
    thread = threading.Thread(target=other)
    thread.start()
    entered.wait(timeout=10)
    first.__exit__(None, None, None)
    left.set()
    thread.join(timeout=10)
    assert counts == [2]
    assert torch.get_num_threads() == 1
