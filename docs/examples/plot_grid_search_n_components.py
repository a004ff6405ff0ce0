"""
==========================================================
Choosing ``n_components`` with a Pipeline and GridSearchCV
==========================================================

:class:`~skae.AutoencoderTransformer` is a scikit-learn transformer, so it
slots into a :class:`~sklearn.pipeline.Pipeline` in front of a classifier and
its ``n_components`` is searched like any other hyper-parameter.

This example searches ``n_components`` on the digits and records two scores
for every candidate: the classifier's accuracy, and the autoencoder's own
:meth:`~skae.AutoencoderTransformer.score` (the negative reconstruction
error). The reconstruction score keeps improving with more components, so on
its own it would always pick the largest code; the downstream accuracy tells
you what each added component is worth to the task.
"""

# %%
# The data and the pipeline
# -------------------------
# The 8x8 digits have 64 pixel features. A small network and a few epochs
# keep this example fast; they are far from the defaults
# (``hidden_layer_sizes=(512, 256, 128)``, and ``max_iter='auto'``: up to 200
# epochs on data this size), which fit better.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderTransformer

# Few epochs on purpose: the estimator warns that max_iter was reached.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

pipe = make_pipeline(
    AutoencoderTransformer(hidden_layer_sizes=(64,), max_iter=10, random_state=0),
    StandardScaler(),
    LogisticRegression(max_iter=1000),
)

# %%
# Two scores per candidate
# ------------------------
# ``scoring`` takes several scorers; ``refit`` says which one picks the
# model. The reconstruction scorer calls the autoencoder's ``score`` on the
# held-out fold.


def reconstruction(pipeline, X, y=None):
    """Negative mean squared reconstruction error of the pipeline's encoder."""
    return pipeline[0].score(X)


search = GridSearchCV(
    pipe,
    {"autoencodertransformer__n_components": [2, 4, 8, 16, 32]},
    scoring={"accuracy": "accuracy", "reconstruction": reconstruction},
    refit="accuracy",
    cv=3,
)
search.fit(X_train, y_train)
print("best n_components:", search.best_params_)
print(f"test accuracy of the refitted pipeline: {search.score(X_test, y_test):.3f}")

# %%
# Reconstruction always asks for more
# -----------------------------------
# The left panel is the autoencoder's own score: it rises with every added
# component, because a wider code makes reconstruction easier. The right
# panel is what the pipeline is for: the accuracy gained per doubling of
# ``n_components`` shrinks. The search refits the most accurate width; where
# a smaller code matters, the smallest width within one standard deviation
# of the best is a common choice. Pick ``n_components`` on this panel.
ks = np.array(search.cv_results_["param_autoencodertransformer__n_components"])
fig, (ax_rec, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
for ax, name, label in [
    (ax_rec, "reconstruction", "score (negative MSE)"),
    (ax_acc, "accuracy", "accuracy"),
]:
    mean = search.cv_results_[f"mean_test_{name}"]
    std = search.cv_results_[f"std_test_{name}"]
    ax.errorbar(ks, mean, yerr=std, marker="o", capsize=3)
    ax.set(xscale="log", xlabel="n_components", ylabel=label, title=name)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.minorticks_off()
plt.show()
