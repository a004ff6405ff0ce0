import io
import re
import sys
import types

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback
from skorch.history import History

from skae import AutoencoderTransformer
from skae._progress import EpochLog, format_duration, print_line

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# One epoch's line, plain: epoch/max_iter, losses (* when best; the
# validation loss when rows are held out), lr, times.
LINE = re.compile(
    r"epoch +(\d+)/(\d+)  train_loss \S+ ?(?:  valid_loss \S+ ?)?  "
    r"lr \S+  elapsed \S+  eta <= \S+"
)


class FakeTTY(io.StringIO):
    """A text stream that says it is a terminal."""

    def isatty(self):
        return True


def make_ae(**params):
    defaults = dict(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
    return AutoencoderTransformer(**{**defaults, **params})


def gaussian(n_samples=100, n_features=6):
    return np.random.RandomState(0).normal(size=(n_samples, n_features))


def screen(text):
    """The lines a terminal shows for ``text``: a carriage return goes back
    to the line's start, where the next characters overwrite the old ones."""
    lines = []
    for raw in text.split("\n"):
        line = []
        for part in raw.split("\r"):
            for column, char in enumerate(part):
                if column < len(line):
                    line[column] = char
                else:
                    line.append(char)
        lines.append("".join(line).rstrip())
    return [line for line in lines if line]


def test_plain_off_a_terminal(capsys):
    ae = make_ae(verbose=1, n_iter_no_change=5).fit(gaussian())
    out = capsys.readouterr().out
    assert "valid_loss" in out
    assert "\x1b" not in out
    assert "\r" not in out
    # Besides the epochs: skorch's early stopping says which weights it keeps.
    lines = [line for line in out.splitlines() if line.startswith("epoch")]
    matches = [LINE.fullmatch(line) for line in lines]
    assert all(matches), lines
    assert [(int(m[1]), int(m[2])) for m in matches] == [(1, 3), (2, 3), (3, 3)]
    assert ae.n_iter_ == 3


def test_terminal_colours_the_best_losses(monkeypatch):
    # Whatever the terminal the tests run in asks for.
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    stdout = FakeTTY()
    monkeypatch.setattr(sys, "stdout", stdout)
    make_ae(verbose=1, n_iter_no_change=5).fit(gaussian())
    out = stdout.getvalue()
    # The first epoch is always an improvement.
    assert "train_loss \x1b[32m" in out.splitlines()[0]
    plain = re.sub(r"\x1b\[\d+m", "", out)
    lines = [line for line in plain.splitlines() if line.startswith("epoch")]
    assert len(lines) == 3
    assert all(LINE.fullmatch(line) for line in lines)


def test_last_epoch_printed_when_early_stopping_ends_training(capsys):
    ae = make_ae(max_iter=50, n_iter_no_change=2, verbose=1).fit(gaussian())
    assert ae.n_iter_ < 50
    epochs = [int(m[1]) for m in LINE.finditer(capsys.readouterr().out)]
    assert epochs == list(range(1, ae.n_iter_ + 1))


@pytest.mark.parametrize(
    "learning_rate_init, shown", [(1e-5, "lr 1e-05"), (1.2e-5, "lr 1.2e-05")]
)
def test_learning_rate_keeps_its_significant_digits(capsys, learning_rate_init, shown):
    make_ae(
        verbose=1, learning_rate="constant", learning_rate_init=learning_rate_init
    ).fit(gaussian())
    lines = capsys.readouterr().out.splitlines()
    assert all(f"  {shown}  " in line for line in lines if line.startswith("epoch"))


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_nothing_per_batch_off_a_terminal(capsys, verbose):
    make_ae(verbose=verbose, n_iter_no_change=5).fit(gaussian())
    captured = capsys.readouterr()
    assert captured.err == ""
    assert "\r" not in captured.out
    assert len(LINE.findall(captured.out)) == (3 if verbose else 0)


def test_verbose_0_prints_nothing_on_a_terminal(monkeypatch):
    terminal = FakeTTY()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)
    make_ae(verbose=0).fit(gaussian())
    assert terminal.getvalue() == ""


def test_verbose_2_bar_is_cleared_before_each_epoch_line(monkeypatch):
    terminal = FakeTTY()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)
    make_ae(verbose=2, n_iter_no_change=5).fit(gaussian())
    out = terminal.getvalue()
    assert "it/s" in out
    # What the terminal shows is the epoch lines, and skorch's early
    # stopping's last word: no remains of a bar.
    shown = [re.sub(r"\x1b\[\d+m", "", line) for line in screen(out)]
    # The averaged weights (ema_decay) of 3 short epochs stay near the PCA
    # start, which is kept.
    assert shown[-1] == "Restoring best model from epoch 0."
    assert len(shown[:-1]) == 3
    assert all(LINE.fullmatch(line) for line in shown[:-1]), shown


def test_partial_fit_shows_no_count_and_no_time_left(capsys):
    ae = make_ae(verbose=1)
    ae.partial_fit(gaussian())
    ae.partial_fit(gaussian())
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1", "epoch 2"]
    assert not any("eta" in line for line in lines)


def test_convergence_warning_at_max_iter_with_verbose(capsys):
    with pytest.warns(ConvergenceWarning, match="reached max_iter=2 epochs"):
        make_ae(verbose=1, max_iter=2, early_stopping=False, tol=0).fit(gaussian())
    assert len(LINE.findall(capsys.readouterr().out)) == 2


@pytest.mark.parametrize("method", ["fit", "fit_transform"])
def test_convergence_warning_points_at_the_callers_line(method):
    # fit_transform is scikit-learn's: the warning skips its frame too.
    with pytest.warns(ConvergenceWarning) as record:
        getattr(make_ae(max_iter=1, early_stopping=False), method)(gaussian())
    assert record[0].filename == __file__


def test_epoch_log_line_and_time_left(monkeypatch):
    # The time left is the mean epoch time so far times the epochs left.
    now = iter([0.0, 2.0, 5.0])
    monkeypatch.setattr(
        "skae._progress.time", types.SimpleNamespace(perf_counter=lambda: next(now))
    )
    net = types.SimpleNamespace(
        verbose=1,
        history=History(),
        optimizer_=types.SimpleNamespace(param_groups=[{"lr": 1.2e-5}]),
    )
    stream = io.StringIO()
    log = EpochLog(max_epochs=10, file=stream)
    log.on_train_begin(net)
    for epoch, loss, best in [(1, 0.5, True), (2, 0.51234, False)]:
        net.history.new_epoch()
        net.history.record("epoch", epoch)
        net.history.record("train_loss", loss)
        net.history.record("train_loss_best", best)
        log.on_epoch_end(net)
    assert stream.getvalue().splitlines() == [
        "epoch  1/10  train_loss 0.5000*  lr 1.2e-05  elapsed 2.0s  eta <= 18.0s",
        "epoch  2/10  train_loss 0.5123   lr 1.2e-05  elapsed 5.0s  eta <= 20.0s",
    ]


@pytest.mark.parametrize(
    "seconds, text",
    [
        (0.04, "0.0s"),
        (4.24, "4.2s"),
        (59.9, "59.9s"),
        (59.96, "1m00s"),
        (187, "3m07s"),
        (3599.6, "1h00m"),
        (7500, "2h05m"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


class BrokenPipe(io.StringIO):
    """A pipe whose reader has gone (``| head -1``): every write fails."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")


def epoch_log_net():
    """A stand-in for a net: what EpochLog reads of it."""
    return types.SimpleNamespace(
        verbose=1,
        history=History(),
        optimizer_=types.SimpleNamespace(param_groups=[{"lr": 1e-3}]),
    )


def run_epochs(log, net, n_epochs):
    log.on_train_begin(net)
    for epoch in range(1, n_epochs + 1):
        net.history.new_epoch()
        net.history.record("epoch", epoch)
        net.history.record("train_loss", 1.0 / epoch)
        net.history.record("train_loss_best", True)
        log.on_epoch_end(net)


def closed_stream():
    stream = io.StringIO()
    stream.close()
    return stream


@pytest.mark.parametrize("make_stream", [BrokenPipe, closed_stream])
def test_output_that_cannot_be_written_does_not_end_training(make_stream):
    # A closed stdout, or a pipe whose reader has gone, loses the lines;
    # the training goes on.
    stream = make_stream()
    log = EpochLog(max_epochs=3, file=stream)
    run_epochs(log, epoch_log_net(), 3)
    assert log.n_epochs_ == 3
    assert print_line("Restoring best model from epoch 1.", file=stream) is False


def test_an_epoch_that_does_not_beat_the_pca_start_is_not_marked(capsys):
    # Early stopping scores the PCA start as epoch 0 and keeps it when no
    # epoch beats it; the first epoch was marked best all the same, and the
    # log ended "Restoring best model from epoch 0."
    make_ae(verbose=1, random_state=2).fit(gaussian())
    out = capsys.readouterr().out
    assert "Restoring best model from epoch 0." in out
    assert not re.search(r"valid_loss \S+\*", out)


@pytest.mark.parametrize("make_stream", [BrokenPipe, closed_stream])
def test_a_verbose_fit_outlives_its_stdout(monkeypatch, make_stream):
    # Early stopping's "Restoring best model" line at the end of training
    # (skorch prints it) raised BrokenPipeError under `| head -1`.
    monkeypatch.setattr(sys, "stdout", make_stream())
    ae = make_ae(verbose=1).fit(gaussian())
    assert ae.n_iter_ == 3


@pytest.mark.parametrize("variable, value", [("NO_COLOR", "1"), ("TERM", "dumb")])
def test_no_colour_on_a_terminal_that_asks_for_none(monkeypatch, variable, value):
    # https://no-color.org, and a terminal that cannot show colours.
    monkeypatch.setenv(variable, value)
    log = EpochLog(max_epochs=2, file=FakeTTY())
    run_epochs(log, epoch_log_net(), 2)
    out = log.file.getvalue()
    assert "train_loss 1.000*" in out
    assert "\x1b" not in out


class InterruptSecondEpoch(Callback):
    """Ctrl-C in the middle of the second epoch."""

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == 2 and len(net.history[-1, "batches"]) == 2:
            raise KeyboardInterrupt


def test_verbose_2_bar_is_cleared_when_an_epoch_is_interrupted(monkeypatch):
    terminal = FakeTTY()
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)
    ae = make_ae(verbose=2, batch_size=10, callbacks=[InterruptSecondEpoch])
    ae.fit(gaussian())
    # The next fit's bar takes the bottom line again, not one below the
    # interrupted bar, which the first estimator's net still holds.
    make_ae(verbose=2, max_iter=1).fit(gaussian())
    out = terminal.getvalue()
    assert "\x1b[A" not in out
    shown = [re.sub(r"\x1b\[\d+m", "", line) for line in screen(out)]
    # The second fit's averaged weights (ema_decay) of one short epoch do
    # not better the PCA start, which it restores.
    assert [line for line in shown if not LINE.fullmatch(line)] == [
        "Restoring best model from epoch 1.",
        "Restoring best model from epoch 0.",
    ], shown


class BatchRates(Callback):
    """The rate each training batch trains at, by epoch."""

    def on_train_begin(self, net, **kwargs):
        self.rates = []

    def on_epoch_begin(self, net, **kwargs):
        self.rates.append([])

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self.rates[-1].append(net.optimizer_.param_groups[0]["lr"])


def test_one_cycle_shows_the_rate_the_last_batch_trained_at(capsys):
    # OneCycleLR steps once more after the last batch, past the schedule's
    # end, where the rate climbs back from almost zero: not a rate trained at.
    ae = make_ae(
        verbose=1,
        learning_rate="one_cycle",
        early_stopping=False,
        batch_size=20,
        callbacks=[("rates", BatchRates())],
    ).fit(gaussian())
    rates = dict(ae.net_.callbacks_)["rates"]
    shown = re.findall(r"  lr (\S+)  ", capsys.readouterr().out)
    assert shown == [f"{epoch[-1]:.3g}" for epoch in rates.rates]
    assert float(shown[-1]) < 1e-6
