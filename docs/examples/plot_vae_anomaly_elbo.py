"""
==================================================
Anomaly scores from the ELBO against PCA's density
==================================================

:meth:`~skae.VariationalAutoencoder.score_samples` returns each row's
evidence lower bound (ELBO): a lower bound on the log-density of the row
under the fitted model, in the data's units. Rows unlike the training data
get low scores, so it is an anomaly score, in the convention of
scikit-learn's outlier detectors (higher is more normal).

Its linear counterpart is probabilistic PCA:
:meth:`PCA.score_samples <sklearn.decomposition.PCA.score_samples>` is the
exact log-density of each row under PCA's Gaussian model. Both are fitted
on the digits 0 to 4 only; the test set holds held-out 0 to 4 and, as
anomalies, the digits 5 to 9. How well each score separates them is
measured by the area under the ROC curve
(:func:`~sklearn.metrics.roc_auc_score`: 1 is perfect, 0.5 is chance).
"""

# %%
# Fit both models on the normal classes
# -------------------------------------
# ``loss='mse'`` is a Gaussian likelihood with a learned variance, the same
# family as probabilistic PCA's, and the ELBO is then in the same units as
# PCA's log-density: the raw grey levels, no scaling needed (the estimator
# rescales internally and converts back). Both get the same number of
# components.
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import train_test_split

from skae import VariationalAutoencoder

# Few epochs on purpose: the estimator warns that max_iter was reached.
warnings.filterwarnings("ignore", category=ConvergenceWarning)

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
normal = [0, 1, 2, 3, 4]
X_normal = X_train[np.isin(y_train, normal)]
is_anomaly = ~np.isin(y_test, normal)
print(
    f"{len(X_normal)} training rows; test: {is_anomaly.sum()} anomalies, "
    f"{(~is_anomaly).sum()} normal rows"
)

n_components = 4
vae = VariationalAutoencoder(
    n_components, hidden_layer_sizes=(128, 64), max_iter=100, random_state=0
).fit(X_normal)
pca = PCA(n_components).fit(X_normal)

# %%
# Score the test rows
# -------------------
# Both scores are log-densities of a 64-pixel row (the ELBO a lower bound on
# one), so their means can be compared directly. ``roc_auc_score`` wants a
# score that is higher for anomalies: it gets the negated log-density.
scores = {
    "VAE (ELBO)": vae.score_samples(X_test),
    "probabilistic PCA": pca.score_samples(X_test),
}
for name, score in scores.items():
    print(
        f"{name:>18}: mean log-density, normal {score[~is_anomaly].mean():.1f}, "
        f"anomalies {score[is_anomaly].mean():.1f}; "
        f"ROC AUC {roc_auc_score(is_anomaly, -score):.3f}"
    )

# %%
# ROC curves and the ELBO of each digit
# -------------------------------------
fig, (ax_roc, ax_box) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for name, score in scores.items():
    fpr, tpr, _ = roc_curve(is_anomaly, -score)
    auc = roc_auc_score(is_anomaly, -score)
    ax_roc.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
ax_roc.plot([0, 1], [0, 1], ":", color="gray")
ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
ax_roc.legend(loc="lower right")

elbo = scores["VAE (ELBO)"]
ax_box.boxplot([elbo[y_test == digit] for digit in range(10)])
ax_box.set_xticks(range(1, 11), [str(digit) for digit in range(10)])
ax_box.set(
    xlabel="digit",
    ylabel="ELBO (log-density, lower bound)",
    title="VAE trained on the digits 0 to 4",
)
plt.show()

# %%
# What the ELBO adds over the reconstruction error
# ------------------------------------------------
# With a Gaussian likelihood of one learned variance, a row's ELBO is, up to
# constants, minus its squared reconstruction error (averaged over codes
# drawn from the row's posterior) over twice that variance, minus the KL
# term (how far the row's posterior is from the prior). PCA's log-density
# likewise combines its reconstruction error with the code's distance from
# the centre. So compare each density with the plain reconstruction error
# of the same model (through the posterior mean, for the VAE).
errors = {
    "VAE": np.mean((X_test - vae.inverse_transform(vae.transform(X_test))) ** 2, 1),
    "PCA": np.mean((X_test - pca.inverse_transform(pca.transform(X_test))) ** 2, 1),
}
for name, error in errors.items():
    print(
        f"ROC AUC, {name} reconstruction error: {roc_auc_score(is_anomaly, error):.3f}"
    )

# %%
# What this shows
# ---------------
# * The VAE's ELBO separates the unseen digits from the held-out normal ones
#   better than probabilistic PCA's log-density with the same number of
#   components (the printed AUCs). The box plot shows why: the ELBO of the
#   digits 5 to 9 is mostly below that of the digits 0 to 4; the 8s and 9s
#   come closest, and are the anomalies it misses.
# * On the held-out normal rows the VAE's mean ELBO is above PCA's mean
#   log-density. The ELBO is only a lower bound on the VAE's log-density, so
#   the VAE is the better density model of these digits by at least that
#   margin (up to the Monte Carlo error of the ELBO's estimate).
# * The gain comes from the nonlinear network, not from the probabilistic
#   score itself: each model's density ranks the test rows about as well as
#   its own reconstruction error does (compare the last printed AUCs with
#   the first). What the ELBO does bring is a score in meaningful units, a
#   log-density that can be compared with other density models' (such as
#   ``PCA.score_samples``) and summed or averaged over rows like one.
# * Being a bound, the ELBO falls short of the true log-density by a gap
#   that differs from row to row, so its ranking of rows need not be
#   exactly the model's likelihood ranking (this example does not measure
#   the gap).
# * This is one split of a small data set with one seed; the AUCs move a
#   little with ``random_state``. The anomalies here are whole unseen
#   classes, the easy case; rows that differ from normal ones in small
#   details would likely be harder for any of these scores.
#
# :ref:`sphx_glr_auto_examples_plot_anomaly_detection.py` scores the same
# split with a deterministic autoencoder's reconstruction error.
