"""What ``verbose`` shows while a net trains: a line per epoch, a bar per batch.

:class:`EpochLog` replaces skorch's ``PrintLog``: one line per epoch with the
losses, the learning rate, the time taken and an estimate of the time left,
in colour only on a terminal, so that log files, CI logs and notebooks get
plain text. :class:`TerminalProgressBar` is skorch's per-batch
``ProgressBar``, drawn only on a terminal.
"""

import os
import sys
import time

from skorch.callbacks import Callback, ProgressBar

__all__ = ["EpochLog", "TerminalProgressBar", "print_line"]

# Improved losses on a terminal: green, then back to the default.
_GREEN, _RESET = "\x1b[32m", "\x1b[0m"


def _isatty(stream):
    """Whether ``stream`` is a terminal; False for streams that cannot tell."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty is not None and isatty())
    except (OSError, ValueError):  # a closed stream
        return False


def _colour(stream):
    """Whether to colour lines to ``stream``: a terminal that allows it.

    Not where ``NO_COLOR`` is set (https://no-color.org) nor on a terminal
    that shows escape codes as text (``TERM=dumb``).
    """
    return (
        _isatty(stream)
        and not os.environ.get("NO_COLOR")
        and os.environ.get("TERM") != "dumb"
    )


def _start_score(net, key):
    """Return the loss ``key`` of the model before training, where scored.

    Early stopping from a PCA start scores the start as epoch 0 and keeps
    it unless an epoch beats it: an epoch's loss is the best so far only
    if it is below that too. Infinity where nothing scored the start.
    """
    for _, callback in getattr(net, "callbacks_", ()):
        score = getattr(callback, "initial_score_", None)
        if score is not None and getattr(callback, "monitor", None) == key:
            return score
    return float("inf")


def print_line(text, file=None):
    """Print ``text`` as :func:`print` does; return False where it cannot.

    A closed stream, or a pipe whose reader has gone (``| head``), loses the
    line instead of raising: output that cannot be written must not end a
    training run. Early stopping's line goes through it too.
    """
    try:
        print(text, file=file, flush=True)
    except (OSError, ValueError):
        return False
    return True


def format_duration(seconds):
    """Format a duration as ``'4.2s'``, ``'3m07s'`` or ``'2h05m'``."""
    # Compared as shown: 59.96 s is '1m00s', not '60.0s'.
    if round(seconds, 1) < 60:
        return f"{seconds:.1f}s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class EpochLog(Callback):
    """skorch callback that prints one line per epoch while ``net.verbose``.

    Each line gives the epoch, the training loss and, when rows are held out,
    the validation loss (``*`` marks a loss better than all before it, the
    scored start included), the
    learning rate with its significant digits (``1.2e-05``), the time since
    training began and an estimate of the time left::

        epoch  3/200  train_loss 0.4123*  lr 0.001  elapsed 1.2s  eta <= 1m19s

    The estimate is the mean epoch time so far times the epochs left to
    ``max_epochs``: an upper bound, as early stopping may end training
    sooner. On a terminal the improved losses are also coloured (unless
    ``NO_COLOR`` is set or ``TERM`` is ``dumb``); elsewhere
    (a log file, a CI log, a notebook's captured output) the lines are plain
    text, without colour codes or carriage returns.

    Unlike skorch's ``PrintLog``, which skorch runs after every other
    callback, it prints in its place among the net's callbacks: placed
    before early stopping, it prints the last epoch too. The learning rate
    shown is the one the epoch's last training batch trained at: before a
    scheduler that steps once per epoch (the plateau one) changes it, and
    not the rate that a one-cycle schedule's step after the last batch sets.

    Parameters
    ----------
    max_epochs : int or None, default=None
        The most epochs of a training run, for the count (``3/200``) and the
        estimate of the time left; None shows neither (``partial_fit``
        trains one epoch per call).
    file : text stream or None, default=None
        Where the lines go; None is ``sys.stdout`` at the time of each line,
        as for :func:`print`. A stream that cannot be written (closed, or
        a pipe whose reader has gone) ends the lines for the rest of the
        run, not the training.
    """

    def __init__(self, max_epochs=None, file=None):
        self.max_epochs = max_epochs
        self.file = file

    def on_train_begin(self, net, **kwargs):
        self.start_ = time.perf_counter()
        self.n_epochs_ = 0
        self.silenced_ = False

    def on_epoch_begin(self, net, **kwargs):
        self.last_lr_ = None

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.last_lr_ = net.optimizer_.param_groups[0]["lr"]

    def on_epoch_end(self, net, **kwargs):
        self.n_epochs_ += 1
        if not net.verbose or self.silenced_:
            return
        file = sys.stdout if self.file is None else self.file
        line = self.format_line(net, colour=_colour(file))
        # Silent for the rest of the run after a line is lost: each would
        # fail the same way.
        self.silenced_ = not print_line(line, file=file)

    def format_line(self, net, *, colour=False):
        """Return the line of the net's latest epoch, coloured or plain."""
        row = net.history[-1]
        if self.max_epochs is None:
            parts = [f"epoch {row['epoch']}"]
        else:
            width = len(str(self.max_epochs))
            parts = [f"epoch {row['epoch']:>{width}}/{self.max_epochs}"]
        for key in ("train_loss", "valid_loss"):
            if key not in row:
                continue
            best = row.get(key + "_best", False) and row[key] < _start_score(net, key)
            text = f"{row[key]:#.4g}{'*' if best else ' '}"
            if colour and best:
                text = _GREEN + text + _RESET
            parts.append(f"{key} {text}")
        # The rate the epoch's last batch trained at: a one-cycle schedule
        # steps once more after it, past its end, where the rate climbs
        # back from almost zero.
        lr = getattr(self, "last_lr_", None)
        if lr is None:
            lr = net.optimizer_.param_groups[0]["lr"]
        parts.append(f"lr {lr:.3g}")
        elapsed = time.perf_counter() - self.start_
        parts.append(f"elapsed {format_duration(elapsed)}")
        if self.max_epochs is not None:
            left = max(self.max_epochs - self.n_epochs_, 0)
            eta = elapsed / self.n_epochs_ * left
            parts.append(f"eta <= {format_duration(eta)}")
        return "  ".join(parts)


class TerminalProgressBar(ProgressBar):
    """skorch's per-batch ``ProgressBar``, drawn only when stderr is a terminal.

    tqdm draws the bar on ``sys.stderr`` with carriage returns, which a log
    file would keep, one bar after another: elsewhere than on a terminal it
    draws nothing. The bar is cleared at the end of each epoch, so placed
    before :class:`EpochLog` it never shares a line with the epoch's line,
    and at the end of training, when an epoch was interrupted.
    """

    def on_epoch_begin(self, net, **kwargs):
        self.shown_ = _isatty(sys.stderr)
        if self.shown_:
            super().on_epoch_begin(net, **kwargs)

    def on_batch_end(self, net, **kwargs):
        if self.shown_:
            super().on_batch_end(net, **kwargs)

    def on_epoch_end(self, net, **kwargs):
        if self.shown_:
            super().on_epoch_end(net, **kwargs)
            self.shown_ = False

    def on_train_end(self, net, **kwargs):
        # An epoch interrupted (Ctrl-C, a callback's KeyboardInterrupt) left
        # its bar open: drawn on the line of what is printed next, and
        # holding tqdm's bottom line, so that the next fit's bars were drawn
        # one line lower, for as long as this net lives.
        if getattr(self, "shown_", False):
            self.pbar_.close()
            self.shown_ = False
