"""
=====================================================
Watching and stopping training with sklearn callbacks
=====================================================

scikit-learn 1.9 added an experimental callback API, :mod:`sklearn.callback`.
skae's estimators support it: ``fit`` is a task with one sub-task per epoch,
so callbacks set on a search, a Pipeline or the autoencoder itself see every
epoch of training.

This example shows the three uses: a nested progress bar over a grid search,
a :class:`~sklearn.callback.ScoringMonitor` that logs the reconstruction score
at every epoch, and a small callback of our own that stops training once the
autoencoder beats PCA by a margin, all on the 8x8 digits
(:func:`~sklearn.datasets.load_digits`). It needs scikit-learn >= 1.9, and
``rich`` for the progress bar.
"""

# %%
# A progress bar for a whole search
# ---------------------------------
# :class:`~sklearn.callback.ProgressBar` is set on the outermost estimator and
# propagated to the estimators inside it; ``max_propagation_depth=None``
# follows it down to the autoencoder, whose bar advances once per epoch.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.callback import ProgressBar, ScoringMonitor
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

from skae import AutoencoderTransformer

# Few epochs on purpose: the estimator warns that max_iter was reached.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

pipe = make_pipeline(
    AutoencoderTransformer(hidden_layer_sizes=(16,), max_iter=3, random_state=0),
    LogisticRegression(max_iter=500),
)
search = GridSearchCV(pipe, {"autoencodertransformer__n_components": [4, 8]}, cv=2)
search.set_callbacks(ProgressBar(max_propagation_depth=None))
search.fit(X_train, y_train)
print("best:", search.best_params_)

# %%
# The reconstruction score at every epoch
# ---------------------------------------
# At the end of each epoch, :class:`~sklearn.callback.ScoringMonitor` scores
# the model as it stands then (a copy, so training is untouched) on the
# training data. Its scorer is called as ``scorer(estimator, X, y)``; here it
# is the autoencoder's own :meth:`~skae.AutoencoderTransformer.score`, the
# negative mean squared reconstruction error.
#
# The monitor scores only when ``fit`` receives a ``y``: for ``fit(X)`` it
# logs the epochs without a score. An autoencoder ignores ``y``, so pass the
# labels (or any placeholder of ``len(X)`` values) to monitor it.


def reconstruction(estimator, X, y):
    """Negative mean squared reconstruction error: higher is better."""
    return estimator.score(X)


monitor = ScoringMonitor(scoring={"reconstruction": reconstruction})
ae = AutoencoderTransformer(
    n_components=8, hidden_layer_sizes=(64,), max_iter=10, random_state=0
)
ae.set_callbacks(monitor).fit(X_train, y_train)

log = [row for row in monitor.get_logs().data if row["task_name"] == "epoch"]
epochs = [row["task_id"] + 1 for row in log]
scores = [row["reconstruction"] for row in log]
pca = PCA(n_components=8).fit(X_train)


def pca_score(X):
    """PCA's negative mean squared reconstruction error, to compare."""
    return -np.mean((X - pca.inverse_transform(pca.transform(X))) ** 2)


fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
ax.plot(epochs, scores, marker="o", label="autoencoder, after each epoch")
ax.axhline(pca_score(X_train), color="gray", linestyle="--", label="PCA, 8 components")
ax.set(xlabel="epoch", ylabel="score (negative MSE)", title="Training data")
ax.legend()
plt.show()

# %%
# Stopping from outside
# ---------------------
# A callback is any object with the four hooks of
# :class:`~sklearn.callback.FitCallback`. A hook declares the keyword
# arguments it wants: ``fitted_estimator`` is the model as it stands at that
# epoch, ready to ``transform`` and ``score``. Returning True from
# ``on_fit_task_end`` stops training after that epoch. The model is usable,
# ``n_iter_`` counts the epochs run, and early stopping still restores the
# best weights it saw.


class StopWhenBetterThan:
    """Stop once the held-out score beats ``target``."""

    def __init__(self, target, X_val):
        self.target = target
        self.X_val = X_val

    def setup(self, estimator, context):
        self.scores = []

    def on_fit_task_begin(self, estimator, context):
        pass

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        if context.task_name != "epoch":
            return False
        self.scores.append(fitted_estimator.score(self.X_val))
        return self.scores[-1] > self.target

    def teardown(self, estimator, context):
        pass


# 10% less held-out error than PCA's.
stopper = StopWhenBetterThan(target=0.9 * pca_score(X_test), X_val=X_test)
ae = AutoencoderTransformer(
    n_components=8, hidden_layer_sizes=(64,), max_iter=100, random_state=0
)
ae.set_callbacks(stopper).fit(X_train)
print(f"PCA's held-out score: {pca_score(X_test):.2f}, target: {stopper.target:.2f}")
print(f"stopped after {ae.n_iter_} of max_iter=100 epochs")
print("held-out score per epoch:", np.round(stopper.scores, 2))
