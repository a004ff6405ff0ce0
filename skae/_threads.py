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
training ends, also when it ends with an error. With a fixed seed, the thread
count does not change the fitted weights: PyTorch's CPU kernels split the
work between threads without changing the order of the sums.
"""

import time
from contextlib import contextmanager

import torch
from skorch.callbacks import Callback


@contextmanager
def restored_threads():
    """Give torch's intra-op thread count back as it was on entry."""
    n_threads = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != n_threads:
            torch.set_num_threads(n_threads)


class IntraOpThreads(Callback):
    """Train on one thread or on the caller's count, whichever is faster now.

    Parameters
    ----------
    probe_every : int, default=50
        Training batches between two tries of the thread count not in use.
        A try costs one batch at that count: at most a few percent of the
        fit when it is the slow one.
    min_batch_seconds : float, default=0.002
        A first batch on one thread faster than this marks work too small
        for more threads to pay: the fit then stays on one thread.
    smoothing : float, default=0.3
        Weight of the newest batch in each count's running time per row.

    Attributes
    ----------
    n_threads_ : int
        The count the next batch trains with.
    seconds_per_row_ : dict of int to float
        Running time per training row at each count tried.
    """

    def __init__(self, probe_every=50, min_batch_seconds=0.002, smoothing=0.3):
        self.probe_every = probe_every
        self.min_batch_seconds = min_batch_seconds
        self.smoothing = smoothing

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Start on one thread; the caller's count is the most to try."""
        on_cpu = torch.device(net.device).type == "cpu"
        self.max_threads_ = torch.get_num_threads() if on_cpu else None
        self.seconds_per_row_ = {}
        self.n_batches_ = 0
        self.n_threads_ = 1 if on_cpu else None
        self._start = None

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        """Set the count for this training batch and start its clock."""
        if not training or self.n_threads_ is None:
            return
        n_threads = self._choose()
        if n_threads != torch.get_num_threads():
            torch.set_num_threads(n_threads)
        self.n_threads_ = n_threads
        self._start = time.perf_counter()

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        """Fold this batch's time per row into its count's running mean."""
        if not training or self._start is None:
            return
        elapsed = time.perf_counter() - self._start
        self._start = None
        if self.n_batches_ == 0:
            # The first step also builds the optimizer's state: it only tells
            # whether the work is too small for threads to pay.
            if elapsed < self.min_batch_seconds:
                self.max_threads_ = 1
        else:
            per_row = elapsed / max(len(_rows(batch)), 1)
            previous = self.seconds_per_row_.get(self.n_threads_)
            self.seconds_per_row_[self.n_threads_] = (
                per_row
                if previous is None
                else self.smoothing * per_row + (1 - self.smoothing) * previous
            )
        self.n_batches_ += 1

    def _choose(self):
        """One thread first, then the caller's count, then the faster one."""
        if self.max_threads_ is None or self.max_threads_ <= 1:
            return 1
        if self.n_batches_ < 2:
            return 1
        if self.n_batches_ == 2:
            return self.max_threads_
        one, many = self.seconds_per_row_[1], self.seconds_per_row_[self.max_threads_]
        best, other = (1, self.max_threads_) if one <= many else (self.max_threads_, 1)
        # Now and then the other count, in case the load has changed.
        return other if self.n_batches_ % self.probe_every == 0 else best


def _rows(batch):
    """Return the inputs of a batch: the tensor, or the first of a pair."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch
