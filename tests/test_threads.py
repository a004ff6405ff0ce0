import pytest
import torch
from numpy.testing import assert_array_equal
from skorch.callbacks import Callback

from skae import AutoencoderTransformer, TrainingDivergedError
from skae._threads import IntraOpThreads, restored_threads

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def caller_threads():
    """Let a test set the caller's count; the session's comes back after."""
    with restored_threads():
        yield


class RecordThreads(Callback):
    """Torch's thread count at the end of each training batch."""

    def on_train_begin(self, net, **kwargs):
        self.counts_ = []

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            self.counts_.append(torch.get_num_threads())


def fit(X, **params):
    return AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(8,), random_state=0, device="cpu", **params
    ).fit(X)


def test_the_callers_count_comes_back(caller_threads, curved):
    torch.set_num_threads(2)
    fit(curved, max_iter=3)
    assert torch.get_num_threads() == 2


def test_the_callers_count_comes_back_after_an_error(caller_threads, curved):
    torch.set_num_threads(2)
    with pytest.raises(TrainingDivergedError):
        fit(curved, learning_rate_init=1e6, init="random", max_iter=3)
    assert torch.get_num_threads() == 2


def test_a_small_fit_trains_on_one_thread(caller_threads, curved):
    torch.set_num_threads(2)
    model = fit(curved, max_iter=3, callbacks=[("record", RecordThreads())])
    counts = dict(model.net_.callbacks_)["record"].counts_
    assert counts and set(counts) == {1}


def test_the_fit_does_not_depend_on_the_callers_count(caller_threads, digits):
    X = digits[0][:600]
    models = []
    for n_threads in (1, 2):
        torch.set_num_threads(n_threads)
        models.append(
            AutoencoderTransformer(
                n_components=2, max_iter=8, random_state=0, device="cpu"
            ).fit(X)
        )
    first, second = models
    assert first.n_iter_ == second.n_iter_
    assert_array_equal(first.transform(X), second.transform(X))
    for a, b in zip(
        first.module_.state_dict().values(),
        second.module_.state_dict().values(),
        strict=True,
    ):
        assert torch.equal(a, b)


class FakeNet:
    device = "cpu"


@pytest.mark.parametrize(
    "seconds, best",
    [({1: 0.010, 2: 0.006}, 2), ({1: 0.010, 2: 0.050}, 1)],
    ids=["quiet cores: more threads", "busy cores: one thread"],
)
def test_the_faster_count_wins_and_the_other_is_tried_again(
    caller_threads, monkeypatch, seconds, best
):
    torch.set_num_threads(2)
    clock = [0.0]
    monkeypatch.setattr("skae._threads.time.perf_counter", lambda: clock[0])
    callback = IntraOpThreads(probe_every=10)
    callback.on_train_begin(FakeNet())
    used = []
    for _ in range(40):
        callback.on_batch_begin(FakeNet(), batch=torch.zeros(10, 2), training=True)
        used.append(torch.get_num_threads())
        clock[0] += seconds[torch.get_num_threads()]
        callback.on_batch_end(FakeNet(), batch=torch.zeros(10, 2), training=True)
    other = 3 - best
    # One thread for the first two batches, then the caller's count, then the
    # faster one, with one batch of the other every probe_every batches.
    assert used[:3] == [1, 1, 2]
    probes = [i for i in range(3, 40) if i % 10 == 0]
    assert [used[i] for i in probes] == [other] * len(probes)
    rest = [used[i] for i in range(3, 40) if i not in probes]
    assert set(rest) == {best}
    assert callback.seconds_per_row_[best] == pytest.approx(seconds[best] / 10)


def test_a_caller_on_one_thread_is_kept_there(caller_threads, monkeypatch):
    torch.set_num_threads(1)
    callback = IntraOpThreads()
    callback.on_train_begin(FakeNet())
    for _ in range(5):
        callback.on_batch_begin(FakeNet(), batch=torch.zeros(4, 2), training=True)
        assert torch.get_num_threads() == 1
        callback.on_batch_end(FakeNet(), batch=torch.zeros(4, 2), training=True)


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
