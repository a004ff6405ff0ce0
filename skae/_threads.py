"""Torch's intra-op threads for training on a CPU: chosen by timing, restored after.

PyTorch's CPU thread pool speeds a training step up when the cores are free
and the step is large enough, but its threads wait for each other by
spinning: when other processes share the cores (a search with ``n_jobs``, a
notebook beside other work, CI), one descheduled thread stalls every step,
and a fit can take five to ten times as long as on one thread. No static
rule tells the two cases apart, so :class:`IntraOpThreads` times the steps
themselves: it trains on one thread or on the caller's count, whichever is
faster per row right now, and tries the other one again now and then.

The caller's count (``torch.set_num_threads``, or the limit that joblib's
workers and :func:`threadpoolctl.threadpool_limits` put on OpenMP) is the
most it uses; :func:`restored_threads` gives the caller's setting back when
training ends, also when it ends with an error. The count does not change a
dense network's fit: MKL's matrix products run in its strict reproducible
mode (set below), the loss sums each row then the rows
(:class:`~skae._losses.RowMeanLoss`), the decompositions of a fit's
set-up run on :func:`one_thread`, and its NumPy and SciPy linear algebra
(PCA's start, the input axes, the detector's statistics) on
:func:`one_blas_thread`. oneDNN's convolutions sum their weight
gradients in one part per thread, so a convolutional fit is sure to be
identical on one thread only.

``torch.set_num_threads`` sets the calling thread's count, and also the
count that every thread takes when it first uses torch: the count chosen for
a fit would reach the threads that start meanwhile or later (a server's
request threads, a search's workers), for their lifetime. :func:`set_threads`
changes the calling thread's count only.
"""

import math
import os
import statistics
import threading
import time
from collections import deque
from contextlib import contextmanager

import torch
from skorch.callbacks import Callback
from threadpoolctl import ThreadpoolController

# MKL's strict conditional numerical reproducibility: its matrix products
# then round the same on any thread count (by default it splits some
# products in one part per thread: a thin one with 784 inputs, for
# instance). MKL reads the variable when torch first multiplies matrices, so
# it holds where that comes after skae's import; a value set before is kept.
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")


@contextmanager
def training_threads(net):
    """Run the block on the thread count ``net``'s training chose, then restore.

    For the passes over the data that follow a fit (held-out scores): on
    busy cores, the caller's count would stall them as it stalls training.
    """
    chooser = dict(getattr(net, "callbacks_", [])).get("intra_op_threads")
    n_threads = getattr(chooser, "n_threads_", None)
    with restored_threads():
        if n_threads is not None:
            set_threads(n_threads)
        yield


@contextmanager
def restored_threads():
    """Give torch's intra-op thread count back as it was on entry."""
    n_threads = torch.get_num_threads()
    try:
        yield
    finally:
        set_threads(n_threads)


@contextmanager
def one_thread():
    """Run the block on one intra-op thread, then restore the count.

    For the decompositions of a fit's set-up (LAPACK's eigenvalues, for
    one): MKL's strict reproducibility covers its matrix products only, and
    a decomposition on two threads rounds differently than on one.
    """
    with restored_threads():
        set_threads(1)
        yield


# Serialises skae's changes, so that none reads another's passing count as
# the one new threads take. A child forked while another thread held it gets
# it unheld, or its first fit would wait for ever.
_set_threads_lock = threading.Lock()
# one_blas_thread's limit, shared by the blocks in it now (their count):
# BLAS libraries have one thread count for the whole process.
_blas_lock = threading.Lock()
_blas_holders = 0
_blas_limit = None


def _unlock_after_fork():
    global _set_threads_lock, _blas_lock
    _set_threads_lock = threading.Lock()
    _blas_lock = threading.Lock()


@contextmanager
def one_blas_thread():
    """Run the block's NumPy and SciPy linear algebra on one BLAS thread.

    OpenBLAS, which NumPy and SciPy wheels ship, splits a product or a
    decomposition in one part per thread and rounds differently on another
    count: PCA's start of the digits differed in its last bits with
    ``OPENBLAS_NUM_THREADS=1`` (or ``OMP_NUM_THREADS=1``, which OpenBLAS
    also reads, as dask's workers set it) and without, and the fits then
    went apart. A fit's set-up and the pass after training run in this
    block, so a fitted model does not depend on the BLAS thread count.

    The limit (threadpoolctl's, on BLAS only) holds for the whole process,
    as BLAS libraries have one count: blocks that overlap in several
    threads share it, and the last to leave restores the count.
    Torch's own matrix products (MKL, linked into torch) are not limited.
    """
    global _blas_holders, _blas_limit
    with _blas_lock:
        if _blas_holders == 0:
            # BLAS alone: threadpool_limits(user_api="blas") restores every
            # library, OpenMP's too, whose count is the calling thread's: a
            # fit that ended last in another thread took the first one's
            # torch count.
            blas = ThreadpoolController().select(user_api="blas")
            _blas_limit = blas.limit(limits=1)
        _blas_holders += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_holders -= 1
            if _blas_holders == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_unlock_after_fork)


def set_threads(n_threads):
    """Set the calling thread's intra-op count, and no other thread's.

    The count new threads take is read first in a new thread and put back
    after from another: a thread that first uses torch in between, a tenth
    of a millisecond, still takes ``n_threads``.
    """
    if n_threads == torch.get_num_threads():
        return
    with _set_threads_lock:
        new_threads = _in_new_thread(torch.get_num_threads)
        torch.set_num_threads(n_threads)
        if new_threads != n_threads:
            _in_new_thread(torch.set_num_threads, new_threads)


def _in_new_thread(function, *args):
    """Return ``function(*args)`` called in a thread started for it."""
    result = []
    thread = threading.Thread(target=lambda: result.append(function(*args)))
    thread.start()
    thread.join()
    return result[0]


# Batches of fewer rows run on one thread, untimed. MKL's strict mode did
# not multiply them alike on one thread and on two: a layer of 4 to 23
# outputs multiplied a batch of fewer rows than its outputs (4 to 16 rows
# for 16 and 17 outputs) otherwise on two threads, and wider layers one of
# 2 or 3 rows (a scan of 1 to 79 rows, 1 to 40 outputs and wider ones up
# to 512, 16 to 784 inputs; none differed from 23 rows up). The last batch
# of an epoch is often that small (14 of 1,198 digits in batches of 74),
# so the fits went apart. Such a batch costs too little for threads to pay.
FEW_ROWS = 24


class IntraOpThreads(Callback):
    """Train on one thread or on the caller's count, whichever is faster now.

    A count's speed is the median time per row of its last ``window``
    training batches, so that one batch slowed by the scheduler decides
    nothing. The fit starts on one thread (its first batch, which also
    builds the optimizer's state, only tells whether the work is too small
    for threads to pay), then tries the caller's count:
    one untimed batch that wakes its threads (the first two-thread batches
    after idle time, or after another library's threads ran, a
    LogisticRegression's in a search, are slower than the next ones), then
    ``window`` timed batches, cut short by two that each take over twice
    one thread's time (one such batch is as likely a slow wake-up as cores
    taken by other processes). It goes on with the faster count. The
    caller's count must be faster by ``margin``: on busy cores a wrong
    choice of more threads stalls every step, while a wrong choice of one
    thread costs at most the threads' speed-up. One batch of the other
    count is tried again after ``probe_every`` batches, or after more when
    it lost the last try: as many as keep the tries within
    ``probe_budget`` of the training time, up to ``max_probe_every``.
    Batches of fewer than :data:`FEW_ROWS` rows, training or held out, run
    on one thread, untimed.

    Parameters
    ----------
    probe_every : int, default=50
        The fewest training batches between two tries of the count not in
        use.
    max_probe_every : int, default=1000
        The most training batches between two tries.
    probe_budget : float, default=0.02
        Share of the training time that tries of a slower count may take.
    window : int, default=3
        Batches per count whose median time per row is its speed.
    margin : float, default=0.1
        How much less time per row, as a fraction of one thread's, the
        caller's count must take to be used.
    min_batch_seconds : float, default=0.002
        A first batch on one thread faster than this marks work too small
        for more threads to pay: the fit then stays on one thread.

    Attributes
    ----------
    n_threads_ : int or None
        The faster count so far: the one the fit trains with, but for tries
        of the other, and runs its validation passes on. None off the CPU.
    seconds_per_row_ : dict of int to float
        Median time per training row of each count tried, over its last
        ``window`` batches.
    """

    def __init__(
        self,
        probe_every=50,
        max_probe_every=1000,
        probe_budget=0.02,
        window=3,
        margin=0.1,
        min_batch_seconds=0.002,
    ):
        self.probe_every = probe_every
        self.max_probe_every = max_probe_every
        self.probe_budget = probe_budget
        self.window = window
        self.margin = margin
        self.min_batch_seconds = min_batch_seconds

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Start on one thread; the caller's count is the most to try."""
        on_cpu = torch.device(net.device).type == "cpu"
        self.max_threads_ = torch.get_num_threads() if on_cpu else None
        self.seconds_per_row_ = {}
        self.n_batches_ = 0
        self.n_threads_ = 1 if on_cpu else None
        if on_cpu:
            # Also the passes before the first batch (the starting loss).
            set_threads(1)
        self._times = {}
        # Batch 0 and ``window`` batches on one thread, then one batch and
        # ``window`` on the caller's count.
        self._trial_end = 2 * self.window + 1
        self._stalls = 0
        self._next_probe = None
        self._probing = False
        self._start = None

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        """Set the count for this training batch and start its clock."""
        if self.n_threads_ is None:
            return
        if len(_rows(batch)) < FEW_ROWS:
            # Also a held-out batch: its loss decides the epoch kept.
            set_threads(1)
            return
        if not training:
            return
        set_threads(self._choose())
        self._start = time.perf_counter()

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        """Add this batch's time per row to its count's window; choose again."""
        if self._start is None:
            # A held-out batch or one of few rows: untimed.
            if self.n_threads_ is not None:
                set_threads(self.n_threads_)
            return
        elapsed = time.perf_counter() - self._start
        self._start = None
        if self.n_batches_ == 0:
            # The first step also builds the optimizer's state: it only tells
            # whether the work is too small for threads to pay.
            if elapsed < self.min_batch_seconds:
                self.max_threads_ = 1
        elif self.n_batches_ == self.window + 1 and self.max_threads_ > 1:
            # The trial's first batch wakes the caller's count's threads.
            pass
        else:
            per_row = elapsed / max(len(_rows(batch)), 1)
            n_threads = torch.get_num_threads()
            times = self._times.setdefault(n_threads, deque(maxlen=self.window))
            times.append(per_row)
            self.seconds_per_row_[n_threads] = statistics.median(times)
            if self.max_threads_ > 1:
                trial = n_threads > 1 and self.n_batches_ < self._trial_end
                if trial and per_row > 2 * self.seconds_per_row_[1]:
                    self._stalls += 1
                    if self._stalls == 2:
                        # Stalls, not a slow start: no need for the rest of
                        # the trial.
                        self._trial_end = self.n_batches_
                if self.n_batches_ >= self._trial_end:
                    self._choose_best()
        self.n_batches_ += 1
        # Validation and the next epoch's first passes run on the best count.
        set_threads(self.n_threads_)

    def _choose(self):
        """One thread, then the caller's count, then the best or a try."""
        if self.max_threads_ is None or self.max_threads_ <= 1:
            return 1
        # Batch 0 warms up, then ``window`` batches on one thread, then the
        # trial of the caller's count.
        if self.n_batches_ <= self.window:
            return 1
        if self.n_batches_ <= self._trial_end:
            return self.max_threads_
        self._probing = self.n_batches_ >= self._next_probe
        return self._other() if self._probing else self.n_threads_

    def _choose_best(self):
        """After a batch: the faster count, and when to try the other next."""
        one = self.seconds_per_row_[1]
        many = self.seconds_per_row_[self.max_threads_]
        faster = self.max_threads_ if many < (1 - self.margin) * one else 1
        if self._probing or self._next_probe is None:
            # A try of a count s times slower per row costs about s batches.
            slower = max(one, many) / min(one, many)
            wait = math.ceil(slower / self.probe_budget)
            wait = min(max(wait, self.probe_every), self.max_probe_every)
            self._next_probe = self.n_batches_ + wait
        self.n_threads_ = faster

    def _other(self):
        """Return the count not in use."""
        return self.max_threads_ if self.n_threads_ == 1 else 1


def _rows(batch):
    """Return the inputs of a batch: the tensor, or the first of a pair."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch
