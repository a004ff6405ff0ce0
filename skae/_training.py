"""The skorch net that trains an autoencoder: no targets, tensor batches.

:class:`AutoencoderNet` is a :class:`skorch.NeuralNet` whose data are one
tensor (on the training device when it fits there), sliced into batches in a
seeded order, with the input as its own target. It overrides skorch's
documented steps (``get_dataset``, ``get_iterator``, ``get_loss``,
``run_single_epoch``) and keeps skorch's fit loop, callbacks and history.
:func:`build_net` sets one up from an estimator's parameters.
"""

import math
import numbers
import threading
from contextlib import contextmanager, nullcontext
from copy import deepcopy

import numpy as np
import torch
import torch.distributed as dist
from sklearn.base import clone
from sklearn.utils import check_random_state
from skorch import NeuralNet
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    EpochTimer,
    LRScheduler,
    PrintLog,
)
from skorch.helper import predefined_split
from skorch.history import History
from skorch.utils import TeeGenerator, to_tensor
from torch.optim.lr_scheduler import OneCycleLR, ReduceLROnPlateau

from skae._graphs import GraphedTrainStep, unsupported
from skae._progress import EpochLog, TerminalProgressBar, print_line
from skae._threads import IntraOpThreads, restored_threads
from skae._validation import torch_seed

# The reduced-precision formats of ``precision``, for torch.autocast.
AUTOCAST_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16}
# Rows per forward pass at inference: large enough to keep the device busy,
# small enough that one batch of conv activations stays within a few hundred MB.
INFERENCE_BATCH_SIZE = 4096
# Where torch's Adam has a fused kernel.
_FUSED_ADAM_DEVICES = ("cpu", "cuda")
# learning_rate='adaptive' multiplies the rate by this on each plateau.
_ADAPTIVE_FACTOR = 0.3
# ... and stops the fit when a plateau would cut the rate below this
# fraction of learning_rate_init (the fourth cut, from 1e-3 to 8.1e-6 as
# measured, from 2e-3 to 1.6e-5 now):
# below it the held-out loss crept down by a few tenths of a percent
# while each cut reset early stopping's patience, and a default fit on
# all 1,797 digits at k = 16 ran to max_iter=200 (the rate at 2e-8) and
# warned that it had not converged (user guide, "How the defaults were
# chosen").
_ADAPTIVE_MIN_FRACTION = 0.01
# learning_rate='one_cycle' warms up over this fraction of the steps.
_ONE_CYCLE_WARM_UP = 0.3
# From this many training rows, learning_rate='auto' plans the run on a CPU:
# one cycle to a peak of 4e-3 over 60 epochs of 512 rows (on input axes,
# _PLANNED_ON_AXES). On every feature of Fashion-MNIST's
# 54,000 training rows that took 0.41 to 0.72 of the adaptive schedule's
# epochs for at most 2% more error, on its first 30,000 0.51 to 0.77 of the
# time for at most 1.2% more error; on its first 10,000 it gained little
# time (37-42 s against 39-53 s) for up to 3% more error,
# and on the digits' 1,347 rows it reconstructed up to 14% worse (user guide,
# "How the defaults were chosen"). On CUDA, 'auto' keeps the adaptive
# schedule, whose steps replay as CUDA graphs: a one-cycle schedule changes
# the rate and Adam's momentum every step and trains eagerly, which the GPU
# check measured at 110,000 rows a second against 672,000 through graphs.
PLANNED_RUN_ROWS = 20_000
# What the 'auto' values resolve to, for a planned run and otherwise.
_PLANNED = {"learning_rate_init": 4e-3, "max_iter": 60, "batch_size": 512}
_UNPLANNED = {"learning_rate_init": 1e-3, "max_iter": 200}
# The adaptive schedule starts twice as high where its weights are averaged
# (ema_decay, which 'auto' sets with early stopping): on the digits
# (bench_fit_cost) the averaged weights at 2e-3 reconstructed held-out rows
# 1% to 4% better than the plain ones at 1e-3 at every k from 2 to 32, in
# 13% fewer epochs (user guide, "How the defaults were chosen").
_AVERAGED_ADAPTIVE = {**_UNPLANNED, "learning_rate_init": 2e-3}
_ADAPTIVE_EMA_DECAY = 0.99
# A planned run of a network on input axes (input_components_), whose epochs
# cost about half: smaller batches (more steps an epoch) to a higher peak,
# over fewer epochs. On Fashion-MNIST (bench_fit_cost): held-out MSE over
# PCA's 0.490 / 0.464 / 0.499 at k = 2 / 8 / 32 in 16 / 19 / 23 equivalent
# epochs (the latest results), against 0.483 / 0.452 / 0.498 in 51 to 54 for
# the plan above on every feature; at k = 32, 60 epochs of the plan above on
# 256 axes gave 0.504, and peaks of 2e-3 / 4e-3 / 7e-3 over 45 epochs of 256
# rows 0.507 / 0.502 / 0.501 (bench_fit_cost --ks 32 --set ..., user guide,
# "How the defaults were chosen").
_PLANNED_ON_AXES = {"learning_rate_init": 7e-3, "max_iter": 40, "batch_size": 256}
# An ordered fit on fewer rows plans its run too, over more epochs, in the
# batches of an adaptive one: adapting, it stopped only when its slowest
# prefixes did, up to twice the epochs of an unordered fit (154 against 75
# on the digits). In bench_ordered, the prefixes at k = 2 / 8 / 16 and the
# whole code reach 1.26 / 1.34 / 1.42 and 1.28 times the held-out MSE of
# fits at their width on the digits in 100 epochs (adapting, 1.31 / 1.36 /
# 1.40 and 1.35), and 1.17 / 1.14 / 1.10 and 1.09 on Fashion-MNIST (1.19 /
# 1.16 / 1.12 and 1.04), at 2.07 and 2.53 times an unordered fit's time
# (2.89 and 3.61; user guide, "How the defaults were chosen"). A planned
# run as long as the unordered fit's fell further behind.
_PLANNED_ORDERED = {"learning_rate_init": 4e-3, "max_iter": 100}


@contextmanager
def torch_training_state():
    """Let a fit build and train its network whatever torch state it is in.

    A fit called under ``torch.inference_mode()`` or ``torch.no_grad()`` (a
    notebook's habit around inference code) still needs gradients, and a
    network built after ``torch.set_default_dtype(torch.float64)`` would be
    float64 while skae feeds it float32. Within the block gradients are on,
    inference mode is off and the default dtype is float32; the caller's
    state is theirs again after. The default dtype is the process's: it is
    only changed, for the fit's duration, where the caller changed it, and
    fits in threads share the change (:class:`_Float32Default`).
    """
    with torch.inference_mode(False), torch.enable_grad(), _FLOAT32_DEFAULT:
        yield


class _Float32Default:
    """Torch's default dtype as float32 while any fit of the process runs.

    The default dtype is the process's, not a thread's: fits in threads (a
    search on joblib's threading backend) share one change, made by the
    first to start and undone by the last to end. Each fit undoing its own
    change put the caller's float64 back while a fit in another thread still
    had its network to build, in float64 then, which failed on float32 rows.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._n_fits = 0
        self._callers = None

    def __enter__(self):
        with self._lock:
            if self._n_fits == 0:
                self._callers = torch.get_default_dtype()
                if self._callers != torch.float32:
                    torch.set_default_dtype(torch.float32)
            self._n_fits += 1

    def __exit__(self, *exc_info):
        with self._lock:
            self._n_fits -= 1
            if self._n_fits == 0 and self._callers != torch.float32:
                torch.set_default_dtype(self._callers)


_FLOAT32_DEFAULT = _Float32Default()


@contextmanager
def denormals_flushed():
    """Flush denormal floats to zero on the CPU within the block, then restore.

    Late in training, activations and gradients below float32's normal range
    (1.2e-38) appear, and each operation on one takes the CPU's slow path:
    ``bench_fit_cost --dataset fashion_mnist`` fitted the 2-component
    default in 387 s before the flush (commit d44d65c) and in 230 s with it,
    to the same error. Inference meets them too: ``bench_reconstruction
    --dataset digits`` measured the default denoiser's ``transform`` at
    4,900 to 5,300 rows a second at 16 and 32 components before the flush
    (commit ca1bf36) and 155,000 to 170,000 with it (commit cb37f44), so
    :meth:`AutoencoderNet.map_batches` flushes as well. Values that small
    change nothing the model computes. The mode
    belongs to the calling thread (torch's intra-op workers keep theirs);
    torch has no getter for it, so whether it was on is read from what a
    multiplication makes of a denormal.
    """
    was_on = _flushing_denormals()
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported and not was_on:
            torch.set_flush_denormal(False)


# A denormal float32, made once: the check below is then a quarter of the time.
_DENORMAL = torch.tensor([1e-39])


def _flushing_denormals():
    """Whether the CPU flushes denormal floats to zero in this thread now."""
    return (_DENORMAL * 1.0).item() == 0


def process_group():
    """Return ``(rank, world_size)`` of torch.distributed's default group.

    ``(0, 1)`` when no process group is initialised (a plain single process).
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class TensorBatches:
    """Batches of rows sliced from one tensor, each as ``(X, target)``.

    The autoencoder's input is its own target, so by default the batch is the
    pair skorch expects with the same tensor twice; ``targets`` gives other
    targets row for row (clean rows for corrupted inputs). With ``shuffle=True`` each
    pass draws a fresh permutation from ``generator``; the last batch may be
    short, never dropped, so tiny data still train.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        The rows, on ``device`` or in (pinned) host memory.
    batch_size : int
        Rows per batch.
    device : torch.device
        Where the batches go.
    shuffle : bool, default=False
        Permute the rows at the start of each pass.
    targets : torch.Tensor of shape (n_samples, n_features) or None, default=None
        Targets for the rows of ``X``; None means ``X`` itself.
    generator : torch.Generator or None, default=None
        CPU generator for the permutation.
    rank, world_size : int, default=0, 1
        This process's shard of the rows, for data-parallel training: the
        (shuffled) order, padded by wrapping around to a multiple of
        ``world_size`` rows, is dealt out in turn, so every process gets the
        same number of rows and of batches, and the shards together cover
        every row. Every process must pass the same ``X`` and an identically
        seeded ``generator``.
    """

    def __init__(
        self,
        X,
        batch_size,
        device,
        *,
        shuffle=False,
        generator=None,
        targets=None,
        rank=0,
        world_size=1,
    ):
        self.X = X
        self.targets = targets
        self.batch_size = batch_size
        self.device = device
        self.shuffle = shuffle
        self.generator = generator
        self.rank = rank
        self.world_size = world_size

    def _n_rows(self):
        """Rows in this process's shard."""
        return math.ceil(len(self.X) / self.world_size)

    def __len__(self):
        return math.ceil(self._n_rows() / self.batch_size)

    def __iter__(self):
        n_samples = self._n_rows()
        order = None
        if self.shuffle:
            order = torch.randperm(len(self.X), generator=self.generator)
        if self.world_size > 1:
            if order is None:
                order = torch.arange(len(self.X))
            padded = order.repeat(math.ceil(n_samples * self.world_size / len(order)))
            order = padded[: n_samples * self.world_size][self.rank :: self.world_size]
        if order is not None:
            order = order.to(self.X.device)
        for start in range(0, n_samples, self.batch_size):
            rows = (
                slice(start, start + self.batch_size)
                if order is None
                else (order[start : start + self.batch_size])
            )
            batch = self._to_device(self.X[rows])
            if self.targets is None:
                yield batch, batch
            else:
                yield batch, self._to_device(self.targets[rows])

    def _to_device(self, batch):
        if batch.device != self.device:
            return batch.to(self.device, non_blocking=True)
        return batch


def _as_rows(X):
    """``X`` as a tensor: a tensor as it is, an array as float32."""
    if isinstance(X, torch.Tensor):
        return X
    return torch.as_tensor(np.asarray(X, dtype=np.float32))


# Types of the settings of a module that a copy of it depends on, besides
# its tensors (compared by type: a third of the time of isinstance).
_SETTINGS = frozenset((bool, int, float, str, type(None)))


def _module_state(module):
    """Return what a copy of ``module`` for inference is made from, to compare.

    ``(state, objects)``: ``state`` is a tuple of each submodule and tensor
    (by id), each tensor's storage and version, and each submodule's plain
    settings (a :class:`~skae._ordering.NestedDropout`'s ``kept``);
    ``objects`` holds the submodules and tensors, whose ids are only theirs
    while they live. ``state`` is None where a tensor keeps no version (made
    under ``torch.inference_mode``). Torch bumps a tensor's version at each
    in-place change (``load_state_dict``, ``torch.nn.init``, an optimizer's
    step) but a fused optimizer's step, which
    :meth:`AutoencoderNet.partial_fit` covers, and a write through
    ``.data``, which is not seen.
    """
    state, objects = [], []
    for layer in module.modules():
        objects.append(layer)
        state.append(id(layer))
        for name, value in vars(layer).items():
            if type(value) in _SETTINGS and name != "training":
                state += (name, value)
        for tensor in (*layer._parameters.values(), *layer._buffers.values()):
            if tensor is None:
                continue
            if tensor.is_inference():
                return None, None
            objects.append(tensor)
            state += (id(tensor), tensor.data_ptr(), tensor._version)
    return tuple(state), objects


# How far apart, relative to their scale, the checksums of the same rows may
# be: rows in model units computed on other hardware (principal coordinates)
# may differ in the last bits. Those of other rows differ by about the scale
# over the square root of the number of values.
_CHECKSUM_RTOL = 1e-5


# Settings of a torch optimizer's parameter groups that choose its
# implementation, not its steps' values.
_OPTIMIZER_IMPLEMENTATION = frozenset(
    ("params", "fused", "foreach", "capturable", "differentiable")
)


def _optimizer_settings(optimizer):
    """Return the settings of ``optimizer``'s steps (``lr``, ``weight_decay``...).

    One dict per parameter group, sorted by name, without the parameters;
    tensors (a capturable optimizer's ``lr``) as numbers, to compare.
    """
    return [
        {
            key: value.tolist() if isinstance(value, torch.Tensor) else value
            for key, value in sorted(group.items())
            if key not in _OPTIMIZER_IMPLEMENTATION
        }
        for group in optimizer.param_groups
    ]


def _schedule_settings(callbacks):
    """Return the settings of the callbacks that stop, schedule or average training.

    One ``(name, kind, settings)`` per early stopping, learning-rate
    scheduler and weight-averaging callback, its plain settings by name
    (``patience``, ``threshold``, a scheduler's ``policy`` by its name,
    ``decay``), to compare.
    """
    return [
        (
            name,
            type(callback).__name__,
            {
                key: value.__name__ if isinstance(value, type) else value
                for key, value in sorted(callback.get_params().items())
                if isinstance(value, type) or type(value) in _SETTINGS
            },
        )
        for name, callback in callbacks
        if isinstance(callback, (EarlyStopping, LRScheduler, WeightAverage))
    ]


def _checksum(rows):
    """Return a random linear function of ``rows`` and its scale, in float64.

    The weights (one per feature, one per row) are drawn alike in every
    process, so that the checksum tells other rows, or the same rows in
    another order, from the same; ``scale`` is the checksum of the absolute
    values, which bounds its rounding. A matrix-vector product per batch of
    rows, on their device.
    """
    rows = rows.reshape(len(rows), -1)
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(rows.shape[1], generator=generator, dtype=torch.float64)
    features = features.to(rows.device)
    total = torch.zeros(2, dtype=torch.float64, device=rows.device)
    for start in range(0, len(rows), INFERENCE_BATCH_SIZE):
        chunk = rows[start : start + INFERENCE_BATCH_SIZE].double()
        weights = torch.randn(len(chunk), generator=generator, dtype=torch.float64)
        weights = weights.to(rows.device)
        total += torch.stack(
            [
                weights @ (chunk @ features),
                weights.abs() @ (chunk.abs() @ features.abs()),
            ]
        )
    return tuple(total.tolist())


# The net's parameters that after initialize() are the very objects of the
# fitted attribute of the same name plus "_": in a pickle each stands in as
# "<name_>" (the fitted one is pickled through skorch's device-mapping stream).
_SAME_AS_FITTED = ("module", "criterion")
# What a net holds only while training (the data-parallel wrapper, the
# graphed step) or makes again where needed (the float64 copy for scoring):
# neither pickled nor copied.
_TRANSIENT = ("_data_parallel", "_graphed_step", "_float64_module")
# What a torch scheduler has counted, kept from one partial_fit to the next:
# its steps, and a plateau's best score, epochs without improvement and
# cooldown. Its settings are read anew from its callback at each call.
_SCHEDULE_PROGRESS = ("last_epoch", "best", "num_bad_epochs", "cooldown_counter")


class TrainingDivergedError(ValueError):
    """Raised when the training loss stops being finite.

    A :class:`ValueError`, so code that catches bad input catches it too. The
    message names the epoch and the learning rate to lower
    (``learning_rate_init``); the estimator is left unfitted.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoencoderTransformer, TrainingDivergedError
    >>> X = np.random.RandomState(0).normal(size=(100, 5))
    >>> ae = AutoencoderTransformer(
    ...     init="random", learning_rate_init=1e12, early_stopping=False,
    ...     max_iter=5, random_state=0)
    >>> try:
    ...     ae.fit(X)
    ... except TrainingDivergedError as exc:
    ...     print("diverged")
    diverged
    """


class _BestOfRunEarlyStopping(EarlyStopping):
    """EarlyStopping that also counts the state before training.

    With ``initial_state=True`` the monitored loss of the initial module is
    measured at the start of the first epoch and taken as epoch 0's score,
    so an initialisation that is already good (PCA's solution) is kept unless
    training improves on it. A random initialisation is never worth keeping:
    ``initial_state=False`` spares that extra pass over the data.
    """

    def __init__(self, *args, initial_state=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial_state = initial_state

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.initial_measured_ = not self.initial_state
        self.initial_score_ = None

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        if self.initial_measured_:
            return
        self.initial_measured_ = True
        # The training loss is measured as training sees it (corruption
        # layers active); the validation loss in eval mode.
        on_train = self.monitor.startswith("train")
        score = net.evaluate_loss(
            dataset_train if on_train else dataset_valid, training=on_train
        )
        # Read by EpochLog: an epoch that does not beat the start is not
        # marked best, as the start may be the model kept.
        self.initial_score_ = score
        self.dynamic_threshold_ = self._calc_new_threshold(score)
        self.best_model_weights_ = deepcopy(net.module_.state_dict())

    def on_epoch_end(self, net, **kwargs):
        # skorch's stopper ends the loop by raising KeyboardInterrupt, which
        # skipped the callbacks after it (the rate's schedule, the user's)
        # for the last epoch; a requested stop lets them see it.
        try:
            super().on_epoch_end(net, **kwargs)
        except KeyboardInterrupt:
            net.request_stop()

    def _sink(self, text, verbose):
        # skorch's "Restoring best model" line, printed while verbose, as
        # skorch does with print (a sink= of its own would print whatever
        # verbose says): lost, not fatal, where stdout is closed or a pipe's
        # reader gone.
        if verbose:
            print_line(text)

    def _calc_new_threshold(self, score):
        """Return the score to beat: ``score`` bettered by ``threshold``.

        In ``'rel'`` mode by ``threshold * |score|``: skorch's
        ``threshold * score`` moves the bar the wrong way for a negative
        loss (a VAE's negative log-likelihood), where a worse epoch then
        counted as progress, took the best weights' place and kept the
        run from stopping.
        """
        change = self.threshold
        if self.threshold_mode == "rel":
            change *= abs(score)
        return score - change if self.lower_is_better else score + change


class _RelativePlateau(ReduceLROnPlateau):
    """torch's ReduceLROnPlateau (mode ``'min'``) with a sign-safe relative threshold.

    A loss counts as better than ``best`` when it is lower by
    ``threshold * |best|``; torch's ``'rel'`` mode asks for lower than
    ``best * (1 - threshold)``, which for a negative loss lies above
    ``best``, so that a rate never fell on a plateau below zero.
    """

    def __init__(self, optimizer, *, last_epoch=-1, **kwargs):
        # skorch's LRScheduler passes last_epoch to every policy but
        # ReduceLROnPlateau itself; a plateau schedule has no use for it.
        super().__init__(optimizer, **kwargs)

    def _is_better(self, a, best):
        # Multiplied rather than subtracted: best starts at infinity.
        return a < best * (1 - self.threshold if best >= 0 else 1 + self.threshold)

    # torch before 2.9 calls it is_better.
    is_better = _is_better


class _PlateauSchedule(LRScheduler):
    """skorch's LRScheduler for :class:`_RelativePlateau`, ending the fit at a floor.

    Built with the scheduler's own arguments and ``min_fraction``: when a
    plateau cuts the rate below ``min_fraction`` times the rate it started
    the fit at, the net stops after this epoch
    (:meth:`AutoencoderNet.request_stop`), a stop as planned, and early
    stopping restores the best epoch's weights as it does when its patience
    runs out. The cut rate is never trained at.
    """

    def on_train_begin(self, net, **kwargs):
        super().on_train_begin(net, **kwargs)
        self.floor_ = self.min_fraction * min(
            float(group["lr"]) for group in net.optimizer_.param_groups
        )

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        rate = min(float(group["lr"]) for group in net.optimizer_.param_groups)
        if rate < self.floor_:
            if net.verbose:
                print_line(
                    f"Stopping: a plateau cut the rate to {rate:.3g}, below "
                    f"{self.min_fraction:g} times the initial rate."
                )
            net.request_stop()

    @property
    def kwargs(self):
        # skorch passes every other attribute to the policy.
        kwargs = super().kwargs
        del kwargs["min_fraction"]
        return kwargs


class WeightAverage(Callback):
    """Train on the weights, validate and keep their exponential moving average.

    After every optimizer step the average moves towards the weights by
    ``1 - decay`` (torch's ``get_ema_multi_avg_fn`` update, Polyak
    averaging). At the end of each epoch's training pass, before the
    held-out rows are scored, the module takes the averaged weights, so
    that the validation loss, early stopping's best epoch, the rate's
    plateaus and the fitted model all see them; the next epoch trains on
    from its own weights. The average starts at the module's weights when
    training begins (PCA's solution with ``init='pca'``). Averaged in
    place, parameter by parameter, so that a CUDA graph's captured steps
    keep their memory. First among the net's callbacks, so that every
    other one sees the averaged weights at an epoch's end.

    Parameters
    ----------
    decay : float in (0, 1)
        Weight of the average against each new step's weights.
    """

    def __init__(self, decay):
        self.decay = decay

    def on_train_begin(self, net, **kwargs):
        self.params_ = [p for p in net.module_.parameters() if p.requires_grad]
        with torch.no_grad():
            self.average_ = [p.detach().clone() for p in self.params_]
        self.trained_ = None

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if not training:
            self._swap_in()

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        if training:
            with torch.no_grad():
                torch._foreach_lerp_(self.average_, self.params_, 1 - self.decay)

    def on_epoch_begin(self, net, **kwargs):
        # Back to the weights training left, which the optimizer's moments
        # belong to.
        if self.trained_ is not None:
            with torch.no_grad():
                torch._foreach_copy_(self.params_, self.trained_)
            self.trained_ = None

    def on_epoch_end(self, net, **kwargs):
        # An epoch without held-out rows also ends on the average.
        self._swap_in()

    def on_train_end(self, net, **kwargs):
        # The module keeps the average (or early stopping's best of them);
        # the copies go, so that a pickled fit holds no tensor outside the
        # stream skorch maps to the CPU (a CUDA fit loads without CUDA).
        self.params_ = self.average_ = self.trained_ = None

    def _swap_in(self):
        if self.trained_ is None:
            with torch.no_grad():
                self.trained_ = [p.detach().clone() for p in self.params_]
                torch._foreach_copy_(self.params_, self.average_)


class OneCycleSchedule(LRScheduler):
    """skorch's LRScheduler with torch's OneCycleLR over the whole run.

    Built with ``policy=OneCycleLR``, ``step_every='batch'`` and the
    scheduler's own arguments (``max_lr``, ``pct_start``), as an
    LRScheduler is; ``total_steps`` is counted from the training iterator
    at the start of each fit, ``net.max_epochs`` epochs of it, so the
    schedule fits any batch size, shard or number of rows. A run of one
    step is scheduled as the first of two: OneCycleLR takes its last step
    at the annealed rate, almost zero, so that a single step (one epoch of
    one batch) trained nothing.
    """

    def on_train_begin(self, net, X=None, **kwargs):
        steps = len(net.get_iterator(net.get_dataset(X), training=True))
        self.total_steps = max(2, int(net.max_epochs) * steps)
        super().on_train_begin(net, X=X, **kwargs)


class AutoencoderNet(NeuralNet):
    """skorch net that learns to reconstruct its input.

    ``fit(X)`` takes a 2-D float32 tensor (arrays are converted); ``y`` is
    never needed. skorch's ``train_split`` (by default
    :class:`~skorch.dataset.ValidSplit` holding out a fifth) works on it. Batches are
    sliced from that tensor (see :class:`TensorBatches`), the loss is
    accumulated on the device and read once per epoch into the history as
    ``train_loss`` and ``valid_loss``, so training makes no host sync per
    batch. A non-finite epoch loss raises :class:`TrainingDivergedError`.

    Parameters
    ----------
    module : torch.nn.Module
        The network to train, as for :class:`skorch.NeuralNet`.
    criterion : torch.nn.Module
        The loss, called as ``criterion(module_output, clean_rows)``.
    *args, **kwargs
        The other arguments of :class:`skorch.NeuralNet` (``optimizer``,
        ``lr``, ``max_epochs``, ``batch_size``, ``train_split``,
        ``callbacks``, ``verbose``, ``device``).
    random_seed : int or None, default=0
        Seed of the generator that orders the training batches; None draws
        one from torch's global generator for each epoch (rank 0's, under
        torch.distributed).
    precision : {'float32', 'bfloat16', 'float16'}, default='float32'
        Format of the forward computations: ``'bfloat16'`` and ``'float16'``
        run the module and the loss under :func:`torch.autocast` (weights,
        gradients and optimizer state stay float32); ``'float16'`` also
        scales the loss with a :class:`torch.amp.GradScaler` so that small
        gradients do not underflow.
    cuda_graphs : bool, default=True
        On a CUDA device, train each full batch by replaying a CUDA graph
        of the whole step: the same computation, launched at once instead
        of kernel by kernel from Python (the user guide's devices page says
        when and what it measured). Steps a graph cannot hold train eagerly,
        whatever this says.

    Attributes
    ----------
    graph_replays_ : int
        Training batches of the last training run that replayed a CUDA
        graph; 0 when every step ran eagerly.

    Examples
    --------
    >>> import torch
    >>> from skae import AutoencoderNet, DenseAutoencoder
    >>> X = torch.randn(64, 6)
    >>> net = AutoencoderNet(
    ...     DenseAutoencoder(6, 2, hidden_layer_sizes=(8,)), torch.nn.MSELoss(),
    ...     optimizer=torch.optim.Adam, max_epochs=3, batch_size=16,
    ...     train_split=None, verbose=0)
    >>> net = net.fit(X)
    >>> len(net.history)
    3
    """

    def __init__(
        self, *args, random_seed=0, precision="float32", cuda_graphs=True, **kwargs
    ):
        super().__init__(*args, **kwargs)
        self.random_seed = random_seed
        self.precision = precision
        self.cuda_graphs = cuda_graphs

    def __getstate__(self):
        state = super().__getstate__()
        # After initialize(), the module and criterion parameters are the
        # trained module_ and criterion_ themselves (an ordered model's
        # criterion holds a weights buffer); skorch pickles those through its
        # device-mapping stream, so a second, plain copy here would pin their
        # tensors to their device: a CUDA-fitted model would not load
        # without CUDA.
        for name in _SAME_AS_FITTED:
            if state.get(name) is self.__dict__.get(f"{name}_", object()):
                state[name] = f"<{name}_>"
        for name in _TRANSIENT:
            state.pop(name, None)
        return state

    def __setstate__(self, state):
        # Loaded under torch.inference_mode() (a notebook's habit around
        # inference code), the weights would be inference tensors, which a
        # later partial_fit cannot train: they are made as any others.
        with torch.inference_mode(False):
            super().__setstate__(state)
        for name in _SAME_AS_FITTED:
            if getattr(self, name) == f"<{name}_>":
                setattr(self, name, getattr(self, f"{name}_"))

    def __deepcopy__(self, memo):
        # Not through __getstate__: skorch pickles the module there, to map
        # its device when loading, which a copy in memory does not need, and
        # pickle refuses a lambda (a denoiser's noise function) that
        # deepcopy keeps as it is. One memo keeps module and module_ one.
        copied = object.__new__(type(self))
        memo[id(self)] = copied
        state = {
            key: value for key, value in self.__dict__.items() if key not in _TRANSIENT
        }
        # Under torch.inference_mode() too, the copies are trainable tensors.
        with torch.inference_mode(False):
            copied.__dict__.update(deepcopy(state, memo))
        return copied

    @property
    def _default_callbacks(self):
        return [
            ("epoch_timer", EpochTimer()),
            ("intra_op_threads", IntraOpThreads()),
            ("print_log", PrintLog()),
        ]

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        """Train on ``X``; torch's thread count is the caller's again after.

        :class:`IntraOpThreads` picks the count for each training batch; the
        caller's comes back also when training ends with an error. Denormal
        floats are flushed to zero while training (:func:`denormals_flushed`).
        """
        n_epochs = len(self.history) if getattr(self, "initialized_", False) else 0
        # Fused optimizer steps and CUDA graphs change the weights without
        # bumping their versions (_module_state): no float64 copy for scoring
        # is kept from before training, nor made to keep while it runs.
        self.__dict__["_float64_module"] = None
        with restored_threads(), denormals_flushed():
            try:
                super().partial_fit(X, y, classes=classes, **fit_params)
            except BaseException:
                # skorch ends training without on_train_end when an error
                # escapes the loop: drop the graph and its memory pool here.
                self._drop_training_state()
                raise
            finally:
                self.__dict__.pop("_float64_module", None)
        # skorch ends the loop on a KeyboardInterrupt (a callback's, the
        # user's Ctrl-C) and returns; one raised inside an epoch leaves that
        # epoch's row without its losses. The epochs run are the complete
        # ones; with none, nothing was trained to keep: the interrupt goes on.
        # A run of no epochs (max_epochs=0, as skorch allows) ran none by
        # request, and returns as skorch's does.
        if len(self.history) > n_epochs and "train_loss" not in self.history[-1]:
            del self.history[-1]
        epochs = fit_params.get("epochs")
        requested = self.max_epochs if epochs is None else epochs
        if len(self.history) == n_epochs and requested > 0:
            raise KeyboardInterrupt("training interrupted before an epoch ended")
        return self

    def snapshot(self, n_epochs):
        """Return a copy of the net, for inference, as it stands now.

        The copy has its own module, with the weights copied, and the first
        ``n_epochs`` rows of the history; it shares the rest (optimizer,
        callbacks) with this net until it trains, when it gets an optimizer
        of its own (:func:`resume_training`). Training goes on untouched.
        """
        snapshot = object.__new__(type(self))
        # Not copy.copy: skorch's __getstate__ would serialise the module.
        snapshot.__dict__.update(self.__dict__)
        snapshot.module_ = snapshot.module = deepcopy(self.module_)
        snapshot.history = History(deepcopy(self.history[:n_epochs]))
        # Its optimizer steps this net's weights: partial_fit on the copy
        # builds one of its own first (resume_training).
        snapshot._shares_optimizer = True
        snapshot.train_split = None
        snapshot.__dict__.pop("_data_parallel", None)
        snapshot.__dict__.pop("_graphed_step", None)
        snapshot.__dict__.pop("_float64_module", None)
        return snapshot

    def request_stop(self):
        """Stop training once every callback has seen the current epoch.

        For a callback's ``on_epoch_end``: unlike raising ``KeyboardInterrupt``
        there, it lets the callbacks after it (early stopping, the log) handle
        the epoch. The loop then ends before the next epoch begins.
        """
        self._stop_requested = True

    def notify(self, method_name, **cb_kwargs):
        """Call ``method_name`` of the net and of each callback, as skorch does.

        A ``KeyboardInterrupt`` from an ``on_epoch_end`` (skorch's way for a
        callback to end the loop, as its ``EarlyStopping`` does) counts as a
        requested stop (:meth:`request_stop`): skorch's loop swallows it,
        and a stop at the last epoch then looked like a fit that ran out of
        ``max_iter``, which warned of non-convergence (:func:`converged`).
        In a process group of more than one process the loop goes on to the
        next epoch's start, where the processes agree to stop
        (:meth:`on_epoch_begin`).
        """
        if method_name == "on_train_begin" and len(self.history):
            self._resume_callbacks(**cb_kwargs)
            return
        try:
            super().notify(method_name, **cb_kwargs)
        except KeyboardInterrupt:
            if method_name != "on_epoch_end":
                raise
            self._stop_requested = True
            if process_group()[1] == 1:
                raise

    def _resume_callbacks(self, **cb_kwargs):
        """Begin training that goes on, at the rates the schedules left.

        As skorch's ``notify('on_train_begin')``, but skorch's
        ``LRScheduler`` builds a new torch scheduler there, at ``last_epoch``
        of the epochs run, and torch's constructor steps it once more:
        StepLR, among others, applied its decay again, so that one-epoch
        ``partial_fit`` calls decayed the rate twice at every step of the
        schedule. Each rebuilt scheduler goes on from the rates the last
        epoch's step left, as in one longer run, and from the progress the
        last call's scheduler of the same name and kind made
        (:meth:`on_train_end` keeps it): the steps it took, batches for one
        stepped every batch, where skorch counts epochs; a plateau's best
        score and epochs without improvement, which skorch started afresh,
        so that a plateau schedule never lowered the rate.
        """
        progress = self.__dict__.get("_schedule_progress", {})
        self.on_train_begin(self, **cb_kwargs)
        for name, callback in self.callbacks_:
            lrs = [group["lr"] for group in self.optimizer_.param_groups]
            callback.on_train_begin(self, **cb_kwargs)
            scheduler = getattr(callback, "lr_scheduler_", None)
            if not isinstance(callback, LRScheduler) or scheduler is None:
                continue
            for group, lr in zip(self.optimizer_.param_groups, lrs, strict=True):
                group["lr"] = lr
            scheduler._last_lr = lrs
            kind, saved = progress.get(name, (None, None))
            if kind is type(scheduler):
                vars(scheduler).update(saved)

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        """Forget a stop requested in an earlier fit; set up the training step.

        In a torch.distributed process group of more than one process, the
        training forward passes go through a
        :class:`~torch.nn.parallel.DistributedDataParallel` wrapper of
        ``module_``, which averages the gradients over the processes in the
        backward pass; ``module_`` itself (its weights, its state dict) stays
        the plain module.
        """
        self._stop_requested = False
        data_parallel = None
        if process_group()[1] > 1:
            self._check_same_training(X)
            device = torch.device(self.device)
            if device.type == "cuda" and device.index is None:
                # 'cuda' is the process's current device: torchrun scripts
                # call torch.cuda.set_device(LOCAL_RANK).
                device = torch.device("cuda", torch.cuda.current_device())
            data_parallel = torch.nn.parallel.DistributedDataParallel(
                self.module_, device_ids=None if device.type == "cpu" else [device]
            )
        # Not one of the net's components but a passing view of module_, so
        # set past skorch's check on attributes that hold modules.
        object.__setattr__(self, "_data_parallel", data_parallel)
        graphed = None
        if self.cuda_graphs and unsupported(self) is None:
            graphed = GraphedTrainStep(self)
        object.__setattr__(self, "_graphed_step", graphed)

    def _check_same_training(self, X):
        """Refuse to train data-parallel unless every process has the same rows.

        Each process deals itself its share of the rows it is given (see
        :class:`TensorBatches`), and the estimators set the scaling from
        them: a shard of the rows in each process, as torch's
        DistributedSampler would give, would train a model that differs
        from process to process, and shards of different lengths (or a
        different ``batch_size`` or ``max_epochs``) leave the processes at
        different collectives, where gloo aborts and NCCL waits for ever. A
        network of other shapes (another ``n_components``) failed in
        DDP's set-up in some processes while the others waited; another
        seed deals out overlapping shares of the rows, and other optimizer
        settings (``learning_rate_init``) train the weights apart; so do
        other learning-rate schedules, and another early stopping
        (``n_iter_no_change``, ``tol``) stops one process while the others
        wait at the next epoch's collective. One all-gather compares the
        shape of the rows, the settings that count the steps, the network's
        parameter shapes, the seed, the optimizer's settings, those of early
        stopping and of the schedule (:func:`_schedule_settings`), and a
        checksum of the values (:func:`_checksum`), in every process, which
        all raise alike.
        """
        dataset = self.get_dataset(X)
        rows = dataset[0] if isinstance(dataset, tuple) else dataset
        total, scale = _checksum(rows)
        shapes = tuple(tuple(weight.shape) for weight in self.module_.parameters())
        mine = (
            tuple(rows.shape),
            self.batch_size,
            self.max_epochs,
            total,
            scale,
            shapes,
            self.random_seed,
            _optimizer_settings(self.optimizer_),
            _schedule_settings(self.callbacks_),
        )
        everyone = [None] * process_group()[1]
        dist.all_gather_object(everyone, mine)
        first = everyone[0]
        for rank, theirs in enumerate(everyone):
            if theirs[:3] != first[:3]:
                what = (
                    f"rank {rank} trains on rows of shape {theirs[0]} with "
                    f"batch_size={theirs[1]} and max_iter={theirs[2]}, rank 0 "
                    f"on rows of shape {first[0]} with batch_size={first[1]} "
                    f"and max_iter={first[2]}"
                )
            elif theirs[5] != first[5]:
                what = (
                    f"rank {rank} trains a network of other shapes than rank 0 "
                    f"(parameters of shapes {list(theirs[5])} against "
                    f"{list(first[5])}): give every process the same "
                    "n_components, hidden_layer_sizes and the other parameters "
                    "of the network"
                )
            elif theirs[6] != first[6]:
                what = (
                    f"rank {rank} seeds training with random_seed={theirs[6]}, rank 0 "
                    f"with random_seed={first[6]}: give every process the same int "
                    "random_state, "
                    "or None (rank 0's seed is then shared)"
                )
            elif theirs[7] != first[7]:
                what = (
                    f"rank {rank} trains with the optimizer settings {theirs[7]}, "
                    f"rank 0 with {first[7]}: give every process the same "
                    "learning_rate_init and alpha"
                )
            elif theirs[8] != first[8]:
                what = (
                    f"rank {rank} stops or schedules training otherwise than "
                    f"rank 0 (callbacks {theirs[8]} against {first[8]}): give "
                    "every process the same learning_rate, early_stopping, "
                    "n_iter_no_change, tol and ema_decay"
                )
            elif abs(theirs[3] - first[3]) > _CHECKSUM_RTOL * max(first[4], theirs[4]):
                what = (
                    f"rank {rank} trains on other rows than rank 0, compared as "
                    "the network sees them after the scaling for the loss "
                    "(centred and scaled for loss='mse', as given for 'bce'): "
                    "give every process the same X and the same loss"
                )
            else:
                continue
            raise ValueError(
                "Data-parallel training needs the same rows and parameters in "
                f"every process, each of which trains on its share of them; {what}. "
                "Pass every process all the rows: fit and partial_fit shard "
                "them themselves."
            )

    def on_train_end(self, net, X=None, y=None, **kwargs):
        """Drop what exists only while training.

        The data-parallel wrapper (``module_`` holds the weights), the CUDA
        graph of the training step, and the
        torch schedulers of skorch's ``LRScheduler`` callbacks: they hold the
        optimizer, whose tensors skorch pickles itself, loadable on any
        device, and skorch builds new ones when training starts again. Their
        progress is kept, for training that goes on.
        """
        self._drop_training_state()
        progress = {}
        for name, callback in self.callbacks_:
            if isinstance(callback, LRScheduler):
                scheduler = callback.lr_scheduler_
                if scheduler is not None:
                    progress[name] = (
                        type(scheduler),
                        {
                            key: value
                            for key, value in vars(scheduler).items()
                            if key in _SCHEDULE_PROGRESS
                        },
                    )
                callback.lr_scheduler_ = None
        # For the next partial_fit, whose schedulers skorch builds anew
        # (_resume_callbacks); plain numbers, which pickle anywhere.
        self._schedule_progress = progress

    def _drop_training_state(self):
        """Drop the data-parallel view and close the graphed training step."""
        object.__setattr__(self, "_data_parallel", None)
        graphed = self.__dict__.pop("_graphed_step", None)
        self.graph_replays_ = 0 if graphed is None else graphed.n_replays
        if graphed is not None:
            graphed.close()

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        """Start an epoch, or end the loop if a stop was requested.

        Under torch.distributed, a stop requested in any process ends the
        loop in all of them (a callback may decide alone, on a time budget):
        the others would wait for it at the epoch's collectives.
        """
        stop = getattr(self, "_stop_requested", False)
        if process_group()[1] > 1:
            stop = torch.tensor(float(stop), device=self.device)
            dist.all_reduce(stop, op=dist.ReduceOp.MAX)
            stop = self._stop_requested = bool(stop.item())
        # skorch's documented way to end the fit loop; raised before the
        # epoch's history row exists, so the history holds the epochs run.
        if stop:
            raise KeyboardInterrupt
        super().on_epoch_begin(
            net, dataset_train=dataset_train, dataset_valid=dataset_valid, **kwargs
        )

    def _validate_params(self):
        super()._validate_params()
        if self.precision not in ("float32", *AUTOCAST_DTYPES):
            raise ValueError(
                "precision must be 'float32', 'bfloat16' or 'float16', got "
                f"{self.precision!r}."
            )
        batch_size = self.batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"batch_size must be an int, got {batch_size!r}.")
        if batch_size < 1 and batch_size != -1:
            raise ValueError(
                f"batch_size must be >= 1, or -1 for all rows, got {batch_size}."
            )
        seed = self.random_seed
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
        ):
            raise TypeError(f"random_seed must be an int or None, got {seed!r}.")

    def get_dataset(self, X, y=None):
        """Return the data as tensors: batches are sliced from them directly.

        ``X`` is a tensor, or a pair ``(inputs, targets)`` of tensors; arrays
        (NumPy, lists) become float32 tensors.
        """
        if isinstance(X, tuple):
            return tuple(_as_rows(part) for part in X)
        return _as_rows(X)

    def get_iterator(self, dataset, training=False):
        """Return :class:`TensorBatches` over ``dataset``, shuffled when training.

        ``dataset`` is what :meth:`get_dataset` returns, or a
        :class:`torch.utils.data.Subset` of it, as skorch's ``train_split``
        (e.g. :class:`skorch.dataset.ValidSplit`) makes.
        """
        generator = None
        if training:
            # A fit starts from random_seed; each partial_fit call, one epoch
            # later in the history, from a seed of its own. None: unseeded,
            # drawn from torch's global generator.
            seed = self.random_seed
            if seed is None:
                # Every process deals out the same order (TensorBatches).
                seed = shared_seed(int(torch.randint(2**62, ()).item()))
            generator = torch.Generator().manual_seed(seed + len(self.history))
        if isinstance(dataset, torch.utils.data.Subset):
            rows = torch.as_tensor(np.asarray(dataset.indices), dtype=torch.long)
            whole = dataset.dataset
            dataset = (
                tuple(part[rows] for part in whole)
                if isinstance(whole, tuple)
                else whole[rows]
            )
        inputs, targets = dataset if isinstance(dataset, tuple) else (dataset, None)
        if not len(inputs):
            raise ValueError("AutoencoderNet got no rows to train on or score.")
        batch_size = len(inputs) if self.batch_size == -1 else self.batch_size
        # Under torch.distributed each process trains on its shard of the
        # rows; every process evaluates all of them.
        rank, world_size = process_group() if training else (0, 1)
        return TensorBatches(
            inputs,
            batch_size,
            torch.device(self.device),
            shuffle=training,
            generator=generator,
            targets=targets,
            rank=rank,
            world_size=world_size,
        )

    def autocast(self):
        """Return the autocast context of ``precision`` on the net's device.

        A null context (plain float32) for ``precision='float32'``.
        """
        dtype = AUTOCAST_DTYPES.get(self.precision)
        if dtype is None:
            # Cheaper per batch than entering a disabled torch.autocast.
            return nullcontext()
        # No cache of cast weights: each region casts them once anyway, and
        # a recorded CUDA graph cannot hold the cache.
        return torch.autocast(
            torch.device(self.device).type, dtype=dtype, cache_enabled=False
        )

    def map_batches(
        self, X, fn, convert, *, dtype=None, autocast=True, finish=None, module=None
    ):
        """Apply ``fn(module, batch)`` to the rows of ``X`` in inference mode.

        ``X`` is a tensor of model inputs, or an array whose batches
        ``convert`` turns into such a tensor. ``fn`` maps a batch, on the
        device, to a tensor; the results come back as one array, filled
        batch by batch. ``finish``, if given, maps each batch's result (an
        array, on the host) before it is stored: what is computed from a
        row's result alone needs no more than a batch of them at a time.
        ``dtype=torch.float64`` runs a float64 copy of the module: results
        that do not depend on which rows share a batch, which float32 matrix
        products do not guarantee; per-row scores use it. None (the
        default) means float32 on a CPU, the fast path for codes and
        reconstructions, whose last bit may change with the batch's size
        where the BLAS picks its kernel by the number of rows (Intel CPUs
        with AMX), and float64 on a GPU, whose products differ in the last
        bit with the batch's size. float32 batches run under the autocast
        of ``precision``, unless ``autocast=False``. Denormal floats are
        flushed to zero meanwhile (:func:`denormals_flushed`). ``module``,
        if given, is run in place of ``module_`` (a copy of its layers with
        another width kept, :func:`~skae._ordering.keeping`).
        """
        if dtype is None:
            on_cpu = torch.device(self.device).type == "cpu"
            dtype = torch.float32 if on_cpu else torch.float64
        if module is None:
            module = self.module_
        if any(layer.training for layer in module.modules()):
            # Switching modes walks every submodule: only when it changes.
            module.eval()
        if dtype == torch.float64:
            module = self._float64_copy(module)
        device = torch.device(self.device)
        reduced = self.autocast() if autocast and dtype == torch.float32 else None
        result = None
        with torch.inference_mode(), reduced or nullcontext(), denormals_flushed():
            for start in range(0, len(X), INFERENCE_BATCH_SIZE):
                batch = X[start : start + INFERENCE_BATCH_SIZE]
                if not isinstance(batch, torch.Tensor):
                    batch = convert(batch)
                # Sent as they come, converted on the device: float64 rows
                # would double the bytes sent to a GPU.
                output = fn(module, batch.to(device).to(dtype)).cpu().numpy()
                if finish is not None:
                    output = finish(output)
                if result is None:
                    # Filled batch by batch: gathering the batches and then
                    # concatenating them would hold the results twice.
                    shape = (len(X), *output.shape[1:])
                    result = np.empty(shape, dtype=output.dtype)
                result[start : start + len(output)] = output
        return result

    def _float64_copy(self, module):
        """Return a float64 copy of ``module``, in eval mode, to run it in.

        The copy of ``module_`` is kept until its weights or settings change
        (:func:`_module_state`); none is kept while the net trains (see
        :meth:`partial_fit`). Made anew for each call, it took several times
        as long as scoring a row with it (a 784-512-256 network, 7 ms against
        0.7). No scoring method modifies it, so threads may score with it
        at once; it is not pickled, nor kept by copies of the net.
        """
        if module is not self.module_:
            return deepcopy(module).double().eval()
        state, objects = _module_state(module)
        # (state, objects, copy); None while training.
        cached = self.__dict__.get("_float64_module", ())
        if state is not None and cached and cached[0] == state:
            return cached[2]
        copy = deepcopy(module).double().eval()
        if state is not None and cached is not None:
            # One assignment: a thread reading the cache meanwhile sees the
            # old entry whole or the new one. ``objects`` keeps alive what
            # the state names by id, so that no other object takes an id.
            self.__dict__["_float64_module"] = (state, objects, copy)
        return copy

    def initialize_optimizer(self, *args, **kwargs):
        """Build the optimizer and the gradient scaler of ``precision``.

        The scaler is enabled only for ``'float16'``, whose narrow exponent
        range needs it; disabled, it passes losses and steps through.
        """
        super().initialize_optimizer(*args, **kwargs)
        self.grad_scaler_ = torch.amp.GradScaler(
            torch.device(self.device).type, enabled=self.precision == "float16"
        )
        return self

    def infer(self, x, **fit_params):
        """Run the module on ``x`` under the autocast of ``precision``.

        Training passes (gradients on) go through the data-parallel wrapper
        when there is one.
        """
        module = getattr(self, "_data_parallel", None)
        if module is None or not torch.is_grad_enabled():
            module = self.module_
        with self.autocast():
            return module(to_tensor(x, device=self.device), **fit_params)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Reconstruction loss of ``y_pred`` against the clean rows ``y_true``."""
        with self.autocast():
            return self.criterion_(y_pred, y_true)

    def train_step_single(self, batch, **fit_params):
        """Forward pass, loss and backward pass of one batch.

        The backward pass goes through the gradient scaler, which leaves the
        loss as it is unless ``precision='float16'``.
        """
        if not self.module_.training:
            # Switching modes walks every submodule: only when it changes.
            self._set_training(True)
        Xi, yi = batch
        y_pred = self.infer(Xi, **fit_params)
        loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        self.grad_scaler_.scale(loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def train_step(self, batch, **fit_params):
        """One optimisation step: a CUDA graph's replay, or :meth:`eager_train_step`."""
        graphed = getattr(self, "_graphed_step", None)
        if graphed is None:
            return self.eager_train_step(batch, **fit_params)
        return graphed(batch, **fit_params)

    def eager_train_step(self, batch, **fit_params):
        """One optimisation step; with float16, through the gradient scaler.

        The scaler cannot step an optimizer with a closure, so with float16
        the step is taken here: gradients are unscaled before callbacks see
        them, and a step whose gradients overflowed is skipped.
        """
        if not self.grad_scaler_.is_enabled():
            return super().train_step(batch, **fit_params)
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        self.grad_scaler_.unscale_(self.optimizer_)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        self.grad_scaler_.step(self.optimizer_)
        self.grad_scaler_.update()
        return step

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """Run one pass, accumulating the loss on the device; record it once."""
        if iterator is None:
            return
        total = torch.zeros((), device=self.device)
        n_rows = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            size = len(batch[0])
            total += step["loss"].detach() * size
            n_rows += size
            self.notify("on_batch_end", batch=batch, training=training, **step)
        loss = self._mean_over_processes(total, n_rows)
        self._check_finite(loss, prefix)
        key = prefix + "_loss"
        earlier = self.history[:-1, key] if len(self.history) > 1 else []
        self.history.record(key, loss)
        self.history.record(key + "_best", not earlier or loss < min(earlier))
        self.history.record(prefix + "_batch_count", len(iterator))

    def evaluate_loss(self, dataset, training=False):
        """Mean loss of the module over ``dataset``, without updating it.

        ``training=True`` runs the module in train mode (corruption layers
        active), as the training loss is measured.
        """
        total = torch.zeros((), device=self.device)
        n_rows = 0
        self._set_training(training)
        with torch.no_grad():
            for batch in self.get_iterator(dataset, training=False):
                Xi, yi = batch
                loss = self.get_loss(self.infer(Xi), yi, X=Xi, training=training)
                total += loss * len(Xi)
                n_rows += len(Xi)
        loss = self._mean_over_processes(total, n_rows)
        self._check_finite(loss, "initial")
        return loss

    def _mean_over_processes(self, total, n_rows):
        """Mean loss from a summed ``total`` over ``n_rows``, as a float.

        Under torch.distributed, summed over every process first, so that all
        processes record the same losses and early stopping stops them all
        at the same epoch. One host sync either way.
        """
        if process_group()[1] > 1:
            sums = torch.stack([total.float(), torch.tensor(float(n_rows)).to(total)])
            dist.all_reduce(sums)
            total, n_rows = sums.tolist()
            return total / n_rows
        return total.item() / n_rows

    def _check_finite(self, loss, prefix):
        if not np.isfinite(loss):
            epoch = self.history[-1, "epoch"] if len(self.history) else 0
            if prefix == "initial":
                # Measured before any step: no learning rate is to blame.
                advice = (
                    "It is the untrained network's, before any step, so "
                    "learning_rate_init is not the cause: look at the rows it "
                    "is given, e.g. noise far beyond the data's range "
                    "overflows float32 (lower noise_level, or set clip=True)."
                )
            else:
                advice = f"Lower learning_rate_init (the optimizer's lr is {self.lr})."
            raise TrainingDivergedError(
                f"Training diverged: the {prefix} loss is {loss} at epoch "
                f"{epoch}. {advice}"
            )


@contextmanager
def agreed_validation(estimator):
    """Validate the input of a fit in every process of a process group at once.

    A fit whose input fails validation in one process only (a NaN in its
    ``X``) raised there before any collective, while the others went on to
    the first one, waiting for that process: a script that caught the error
    and fit again paired the new fit's collectives with the others' first
    fit, or left them waiting for ever. Under torch.distributed every
    process tells the others whether the block passed (one all-gather): one
    whose block raised raises its own error, the others a ValueError that
    names the rank and its error, with ``estimator`` left as it was. A
    single process runs the block as it is.
    """
    world_size = process_group()[1]
    if world_size == 1:
        yield
        return
    before = dict(vars(estimator))
    failure = None
    try:
        yield
    except Exception as error:
        failure = error
    failures = [None] * world_size
    mine = None if failure is None else f"{type(failure).__name__}: {failure}"
    dist.all_gather_object(failures, mine)
    if failure is not None:
        raise failure
    for rank, message in enumerate(failures):
        if message is not None:
            vars(estimator).clear()
            vars(estimator).update(before)
            raise ValueError(
                f"Data-parallel training stopped in every process: rank {rank}'s "
                f"input failed validation ({message})"
            )


def shared_random_state(random_state):
    """Return a fit's random generator, the same in every process.

    Under torch.distributed every process must split the rows and start the
    network alike; without an int ``random_state``, rank 0's seed is shared.
    """
    rng = check_random_state(random_state)
    if process_group()[1] > 1 and not isinstance(random_state, numbers.Integral):
        rng = np.random.RandomState(
            shared_seed(int(rng.randint(np.iinfo(np.int32).max)))
        )
    return rng


def shared_seed(seed):
    """Return ``seed``, or rank 0's under torch.distributed."""
    if process_group()[1] > 1:
        seeds = [seed]
        dist.broadcast_object_list(seeds, src=0)
        return seeds[0]
    return seed


def rank_seed(seed):
    """Return ``seed``, offset by this process's rank under torch.distributed.

    For the generators of training draws (input noise, a VAE's codes): each
    process trains on its own rows and must draw for them independently, or
    every process would corrupt its ``i``-th row of a step exactly as the
    others do. The weights stay the same in every process, as the gradients
    are averaged.
    """
    return seed + process_group()[0]


def split_rows(n_samples, early_stopping, validation_fraction, rng):
    """Return training and validation row indices.

    The validation indices are None without early stopping.
    """
    if not early_stopping:
        return np.arange(n_samples), None
    n_valid = max(1, int(round(validation_fraction * n_samples)))
    if n_samples - n_valid < 1:
        raise ValueError(
            f"early_stopping with validation_fraction={validation_fraction} "
            f"leaves no training rows out of n_samples={n_samples}; pass more "
            "rows or set early_stopping=False."
        )
    order = rng.permutation(n_samples)
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])


def rows_to_device(rows, device):
    """Keep a tensor of rows where batches are best sliced from.

    On the device when they fit there, else in pinned host memory, from
    which batches are copied.
    """
    if device.type != "cuda":
        return rows
    free, _ = torch.cuda.mem_get_info(device)
    if rows.nbytes < 0.5 * free:
        return rows.to(device)
    return rows.pin_memory()


def training_plan(estimator, n_train, device, *, streaming=False):
    """Resolve the ``'auto'`` training parameters of an estimator for its data.

    Returns a dict of ``learning_rate``, ``learning_rate_init``, ``max_iter``,
    ``batch_size`` and ``ema_decay`` (the ``training_plan_`` attribute).
    ``'auto'`` rates plan the run (``'one_cycle'``) from
    :data:`PLANNED_RUN_ROWS` training rows on any device but CUDA, and adapt
    to plateaus otherwise; the other ``'auto'`` values follow the schedule:
    a one-cycle run peaks at 4e-3 over 60 epochs; an adaptive one with
    early stopping averages its weights (``ema_decay`` 0.99) and then
    starts at 2e-3; any other starts at 1e-3; each has at most 200 epochs.
    ``partial_fit`` (``streaming``) never averages. An
    ordered fit (``ordered=True``) on fewer rows, but not on CUDA, plans
    its run as well, to 4e-3 over 100 epochs (``_PLANNED_ORDERED``), unless
    ``streaming``: ``partial_fit`` follows no schedule, and a constant rate
    at the planned run's peak would be too high.
    ``batch_size='auto'`` is ``n_train // 16`` clipped to [32, 256], or 512
    for a run that ``learning_rate='auto'`` planned for its many rows. A
    one-cycle run of a network on input axes (``input_components_``) peaks
    at 7e-3 over 40 epochs, of 256 rows where planned.
    """
    learning_rate = estimator.learning_rate
    planned = n_train >= PLANNED_RUN_ROWS and device.type != "cuda"
    planned_ordered = (
        learning_rate == "auto"
        and getattr(estimator, "ordered", False)
        and not planned
        and not streaming
        and device.type != "cuda"
    )
    if learning_rate == "auto":
        learning_rate = "one_cycle" if planned or planned_ordered else "adaptive"
    on_axes = getattr(estimator, "input_components_", None) is not None
    adaptive = learning_rate == "adaptive"
    ema_decay = estimator.ema_decay
    if ema_decay == "auto":
        # Where held-out rows score the average: without them the schedule
        # and the best epoch follow the training loss, of the weights
        # training runs on, not of their average.
        held_out = estimator.early_stopping
        ema_decay = _ADAPTIVE_EMA_DECAY if adaptive and held_out else 0.0
    # partial_fit keeps its latest weights, as it follows no schedule, and
    # streams at a constant 1e-3, which it was measured with.
    ema_decay = 0.0 if streaming else float(ema_decay)
    # The higher start pays only with the average (else up to 3% worse).
    values = _AVERAGED_ADAPTIVE if adaptive and ema_decay else _UNPLANNED
    if planned_ordered:
        values = _PLANNED_ORDERED
    elif learning_rate == "one_cycle":
        values = _PLANNED_ON_AXES if on_axes else _PLANNED
    plan = {"learning_rate": learning_rate}
    # Python numbers: NumPy's (a search's grid from np.arange) reached
    # torch's OneCycleLR, which refuses an np.int64 count of steps.
    for name, kind in (("learning_rate_init", float), ("max_iter", int)):
        value = getattr(estimator, name)
        plan[name] = kind(values[name] if value == "auto" else value)
    plan["ema_decay"] = ema_decay
    if estimator.batch_size != "auto":
        batch_size = estimator.batch_size
    elif estimator.learning_rate == "auto" and planned:
        batch_size = values["batch_size"]
    else:
        # 16 steps per epoch from 512 to 4,096 rows; batches of at least 32
        # rows below (fewer steps), of 256 above.
        batch_size = min(256, max(32, n_train // 16))
    plan["batch_size"] = int(min(batch_size, n_train))
    return plan


# The names of the net's default callbacks and of those the estimators set:
# skorch refuses a user's callback of the same name.
_OWN_CALLBACK_NAMES = (
    "epoch_timer",
    "intra_op_threads",
    "print_log",
    "progress_bar",
    "epoch_log",
    "sklearn_epoch_tasks",
    "early_stopping",
    "lr_scheduler",
    "weight_average",
)


def _shown_verbose(estimator):
    """Return the estimator's ``verbose`` in this process: 0 past rank 0.

    Under torch.distributed every process trains alike and would print the
    same lines (the epochs, the progress bar, early stopping's); as in
    PyTorch's DDP examples, rank 0 alone prints them.
    """
    return estimator.verbose if process_group()[0] == 0 else 0


def _callbacks(estimator, plan, *, stopping, epoch_tasks, held_out):
    """Return the skorch callbacks of an estimator's parameters, in order.

    ``plan`` is the estimator's :func:`training_plan`; ``held_out``: whether
    the fit holds rows out, and so records ``valid_*`` keys that a user's
    callback may monitor.
    """
    monitor = "valid_loss" if estimator.early_stopping else "train_loss"
    callbacks = []
    if stopping and plan["ema_decay"] > 0:
        # First: the others see the averaged weights at an epoch's end.
        callbacks.append(("weight_average", WeightAverage(plan["ema_decay"])))
    if _shown_verbose(estimator) >= 2:
        # Cleared at the end of each epoch, before the epoch's line.
        callbacks.append(("progress_bar", TerminalProgressBar()))
    # Before early stopping, which may end the loop after any epoch.
    # partial_fit trains one epoch per call: no count, no time left.
    callbacks.append(("epoch_log", EpochLog(plan["max_iter"] if stopping else None)))
    if epoch_tasks is not None:
        # Before early stopping, which may end the loop in on_epoch_end.
        callbacks.append(("sklearn_epoch_tasks", epoch_tasks))
    if stopping:
        stopper = _BestOfRunEarlyStopping(
            monitor=monitor,
            # A one-cycle run lasts its max_iter epochs; the stopper then
            # only keeps the best of them.
            patience=(
                plan["max_iter"]
                if plan["learning_rate"] == "one_cycle"
                else estimator.n_iter_no_change
            ),
            # The best epoch of a one-cycle run is the best, whatever tol.
            threshold=0 if plan["learning_rate"] == "one_cycle" else estimator.tol,
            threshold_mode="rel",
            load_best=True,
            # A random start is never kept: do not score it.
            initial_state=estimator.init == "pca",
        )
        callbacks.append(("early_stopping", stopper))
    if stopping and plan["learning_rate"] == "one_cycle":
        scheduler = OneCycleSchedule(
            policy=OneCycleLR,
            step_every="batch",
            max_lr=plan["learning_rate_init"],
            pct_start=_ONE_CYCLE_WARM_UP,
        )
        callbacks.append(("lr_scheduler", scheduler))
    if stopping and plan["learning_rate"] == "adaptive":
        scheduler = _PlateauSchedule(
            policy=_RelativePlateau,
            monitor=monitor,
            factor=_ADAPTIVE_FACTOR,
            patience=max(1, estimator.n_iter_no_change // 4),
            threshold=estimator.tol,
            min_fraction=_ADAPTIVE_MIN_FRACTION,
        )
        callbacks.append(("lr_scheduler", scheduler))
    for entry in estimator.callbacks or []:
        name, callback = None, entry
        if isinstance(entry, tuple):
            if len(entry) != 2 or not isinstance(entry[0], str):
                raise ValueError(
                    "callbacks must hold skorch callbacks or (name, callback) "
                    f"pairs with a str name; got {entry!r}."
                )
            name, callback = entry
        if isinstance(callback, type) and issubclass(callback, Callback):
            callback = callback()
        if not isinstance(callback, Callback):
            raise TypeError(
                "callbacks must hold skorch callbacks (skorch.callbacks."
                f"Callback instances); got {callback!r}. scikit-learn's "
                "callbacks (sklearn.callback) are set with set_callbacks()."
            )
        if name in _OWN_CALLBACK_NAMES:
            raise ValueError(
                f"callback name {name!r} is skae's own; the names "
                f"{list(_OWN_CALLBACK_NAMES)} are taken. Choose another."
            )
        # How the messages below name it.
        label = name or type(callback).__name__
        watched = getattr(callback, "monitor", None)
        if not held_out and isinstance(watched, str) and watched.startswith("valid"):
            # skorch's history would raise a KeyError at the first epoch's
            # end, deep in the callback.
            raise ValueError(
                f"callback {label!r} monitors "
                f"{watched!r}, which this fit does not record: it holds no "
                "rows out (partial_fit never does; fit does with "
                "early_stopping=True). Monitor a training key such as "
                "'train_loss', or fit with early_stopping=True."
            )
        # Cloned, so fitting never changes the user's callback objects.
        try:
            callback = clone(callback)
        except TypeError as error:
            # copy.deepcopy's own words ("cannot pickle '_thread.lock'
            # object") name neither the callback nor the copy.
            raise TypeError(
                f"callback {label!r} cannot be "
                "cloned: skae clones the callbacks at each fit (sklearn.base."
                "clone, which deep-copies their parameters), so that fitting "
                f"never changes them, and one of its parameters cannot be "
                f"copied ({error}). Give it parameters that copy.deepcopy can "
                "copy, such as a file's path rather than an open file or a "
                "writer, and open that in the callback's on_train_begin."
            ) from error
        callbacks.append(callback if name is None else (name, callback))
    return callbacks


def converged(net):
    """Whether the fit ended as planned: stopped early, or its one cycle run.

    A one-cycle schedule anneals the rate to almost zero over ``max_epochs``
    epochs, which are the plan rather than a limit. A stop a callback
    requested (:meth:`AutoencoderNet.request_stop`) is a stop as planned,
    also after the last epoch.
    """
    callbacks = dict(net.callbacks_)
    if isinstance(callbacks.get("lr_scheduler"), OneCycleSchedule):
        return True
    stopper = callbacks["early_stopping"]
    return (
        net._stop_requested
        or len(net.history) < net.max_epochs
        or stopper.misses_ >= stopper.patience
    )


@contextmanager
def undone_on_error(net):
    """Put a fitted net back as it was when the block raises.

    The weights, the optimizer's state, the history, the generators of
    the network's layers (noise, sampling) and each layer's mode: a later
    ``partial_fit`` that diverges on a bad chunk, or that a callback
    interrupts, leaves the model that the earlier calls trained, not NaN
    weights, nor layers left in training mode by the epoch (an ordered
    code's nested dropout, a corruption layer) where only inference ran.
    """
    module_state = deepcopy(net.module_.state_dict())
    # Each layer's own flag, set back as it was: train(mode) would set one
    # mode on every layer below.
    modes = [(module, module.training) for module in net.module_.modules()]
    optimizer_state = deepcopy(net.optimizer_.state_dict())
    n_epochs = len(net.history)
    generators = [
        (module.generator, module.generator.get_state())
        for module in net.module_.modules()
        if isinstance(getattr(module, "generator", None), torch.Generator)
    ]
    try:
        yield
    except BaseException:
        net.module_.load_state_dict(module_state)
        net.optimizer_.load_state_dict(optimizer_state)
        del net.history[n_epochs:]
        for generator, state in generators:
            generator.set_state(state)
        for module, training in modes:
            module.training = training
        raise


def resume_training(net, estimator):
    """Set a fitted net up for one more epoch (partial_fit after a fit).

    Without early stopping, whose stopper watches held-out rows that
    partial_fit does not have, and with the estimator's current
    ``batch_size`` (``'auto'``: the one the fit or first call planned),
    ``alpha``, ``verbose`` and ``callbacks``, as
    scikit-learn's ``MLPRegressor.partial_fit`` reads them at each call. A
    snapshot net (:meth:`AutoencoderNet.snapshot`, a callback's
    ``fitted_estimator``) gets an optimizer of its own first.
    """
    if net.__dict__.pop("_shares_optimizer", False):
        # The rate a one-cycle schedule started from, which the fresh
        # optimizer lacks, is read below.
        initial = [group.get("initial_lr") for group in net.optimizer_.param_groups]
        net.initialize_optimizer()
        for group, lr in zip(net.optimizer_.param_groups, initial, strict=True):
            if lr is not None:
                group["initial_lr"] = lr
    callbacks = dict(net.callbacks_)
    if isinstance(callbacks.get("lr_scheduler"), OneCycleSchedule):
        # The cycle annealed the rate to almost zero: go on from the rate
        # it started at.
        for group in net.optimizer_.param_groups:
            group["lr"] = group["initial_lr"]
    plan = estimator.training_plan_
    # 'auto' is the batch size the plan resolved; the plan itself, a fitted
    # attribute, stays as the fit or first call set it.
    batch_size = estimator.batch_size
    if batch_size == "auto":
        batch_size = plan["batch_size"]
    for group in net.optimizer_.param_groups:
        group["weight_decay"] = estimator.alpha
    net.set_params(
        batch_size=batch_size,
        verbose=_shown_verbose(estimator),
        callbacks=_callbacks(
            estimator, plan, stopping=False, epoch_tasks=None, held_out=False
        ),
    )
    net.initialize_callbacks()


def build_net(
    estimator,
    module,
    criterion,
    device,
    *,
    plan,
    valid,
    rng,
    stopping=True,
    epoch_tasks=None,
):
    """Return the unfitted :class:`AutoencoderNet` of an estimator's parameters.

    Parameters
    ----------
    estimator : skae estimator
        Its training parameters (``learning_rate_init``, ``alpha``,
        ``max_iter``, ``batch_size``, ``early_stopping``, ``tol``,
        ``n_iter_no_change``, ``learning_rate``, ``callbacks``, ``precision``,
        ``verbose``) set the net up.
    module, criterion : torch.nn.Module
        The network to train and its loss.
    device : torch.device
        Where training runs.
    plan : dict
        The estimator's :func:`training_plan` for its training rows.
    valid : tensor, pair of tensors or None
        The held-out data early stopping watches; None: every row trains.
    rng : numpy.random.RandomState
        Seeds the order of the batches.
    stopping : bool, default=True
        Stop early and schedule the rate; False for ``partial_fit``, which
        trains one epoch per call and keeps the latest weights.
    epoch_tasks : EpochTasks or None, default=None
        The skorch callback that runs scikit-learn's epoch tasks.
    """
    return AutoencoderNet(
        module=module,
        criterion=criterion,
        optimizer=torch.optim.Adam,
        optimizer__weight_decay=estimator.alpha,
        # One kernel per step instead of several per parameter: 15% off a
        # digits step on a CPU core.
        optimizer__fused=device.type in _FUSED_ADAM_DEVICES,
        lr=plan["learning_rate_init"],
        max_epochs=plan["max_iter"],
        batch_size=plan["batch_size"],
        train_split=None if valid is None else predefined_split(valid),
        callbacks=_callbacks(
            estimator,
            plan,
            stopping=stopping,
            epoch_tasks=epoch_tasks,
            held_out=valid is not None,
        ),
        # EpochLog (in the callbacks) prints the epochs instead.
        callbacks__print_log=None,
        verbose=_shown_verbose(estimator),
        device=str(device),
        random_seed=torch_seed(rng),
        precision=estimator.precision,
    )
