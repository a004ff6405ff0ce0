"""
===================================================
Anomaly scores from the reconstruction error
===================================================

An autoencoder fitted on normal rows reconstructs them well and unusual rows
badly. :meth:`~skae.AutoencoderTransformer.score_samples` returns the
negative reconstruction error of each row, so low scores flag anomalies, in
the convention of scikit-learn's outlier detectors.

Here the "normal" data are the digits 0 to 4. The model sees only those;
the test set holds held-out 0 to 4 and, as anomalies, the digits 5 to 9,
which it has never seen. The question is how well the score separates them,
measured by the area under the ROC curve
(:func:`~sklearn.metrics.roc_auc_score`: 1 is perfect, 0.5 is chance).
PCA's reconstruction error, with the same number of components, is the
baseline.
"""

# %%
# Train on the normal classes
# ---------------------------
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

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
ae = AutoencoderTransformer(
    n_components, hidden_layer_sizes=(128, 64), max_iter=50, random_state=0
).fit(X_normal)
pca = PCA(n_components).fit(X_normal)

# %%
# Score the test rows
# -------------------
# ``score_samples`` is higher for rows that look normal; the ROC AUC wants a
# score that is higher for anomalies, so it gets the negated score: the mean
# squared reconstruction error itself.
ae_error = -ae.score_samples(X_test)
pca_error = np.mean((X_test - pca.inverse_transform(pca.transform(X_test))) ** 2, 1)

for name, error in [("autoencoder", ae_error), ("PCA", pca_error)]:
    print(f"ROC AUC, {name}: {roc_auc_score(is_anomaly, error):.3f}")

# %%
# ROC curves and the error of each class
# --------------------------------------
# The autoencoder's error is low for the five digits it was trained on and
# higher for the others. The unseen digits with the lowest errors (here the
# 8s and 9s) are the anomalies it misses.
fig, (ax_roc, ax_box) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for name, error in [("autoencoder", ae_error), ("PCA", pca_error)]:
    fpr, tpr, _ = roc_curve(is_anomaly, error)
    auc = roc_auc_score(is_anomaly, error)
    ax_roc.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
ax_roc.plot([0, 1], [0, 1], ":", color="gray")
ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
ax_roc.legend(loc="lower right")

ax_box.boxplot([ae_error[y_test == digit] for digit in range(10)])
ax_box.set_xticks(range(1, 11), [str(digit) for digit in range(10)])
ax_box.set(
    yscale="log",
    xlabel="digit",
    ylabel="reconstruction MSE",
    title="autoencoder trained on the digits 0 to 4",
)
plt.show()

# %%
# The same score works in any scikit-learn tool that takes a score function:
# threshold it at a quantile of the training rows' scores to flag new rows,
# or use it as a feature.
