"""
===============================================
One-class outlier detection with an autoencoder
===============================================

:class:`~skae.AutoencoderOutlierDetector` is an autoencoder with
scikit-learn's outlier-detector interface, the interface of
:class:`~sklearn.ensemble.IsolationForest`: ``predict`` returns +1 for
inliers and -1 for outliers, ``decision_function`` is negative for outliers,
and ``score_samples`` is lower the more abnormal a row is. The score is
minus the mean of the row's reconstruction error, with each pixel's squared
error divided by that pixel's mean error on the training rows, and of the
distance of its code from the training rows' codes (see
:ref:`anomaly_scores`).

The protocol is the usual one-class one: the detector is fitted on a single
digit, the 8s, and scores a test set of all ten digits. Everything that is
not an 8 counts as an anomaly. The score is compared by ROC curves with
:class:`~sklearn.ensemble.IsolationForest` and with PCA's reconstruction
error at the detector's code width.
"""

# %%
# Train on one digit
# ------------------
# The bundled 8x8 digits, scaled to [0, 1], are split in half, stratified.
# The detector sees only the training half's 8s, under a hundred images.
# With the defaults (``n_components=0.8``: as many components as PCA needs
# to explain 80 % of the training variance), training is a planned run of
# ``max_iter=30`` epochs of a one-cycle learning-rate schedule, in seconds;
# early stopping does not cut it short but keeps the weights of the epoch
# that reconstructs the held-out rows best.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.ensemble import IsolationForest
from sklearn.metrics import RocCurveDisplay, roc_auc_score
from sklearn.model_selection import train_test_split

from skae import AutoencoderOutlierDetector

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.5, stratify=y, random_state=0
)
normal_digit = 8
X_normal = X_train[y_train == normal_digit]
is_anomaly = y_test != normal_digit
print(
    f"{len(X_normal)} training rows (all {normal_digit}s); test: "
    f"{(~is_anomaly).sum()} {normal_digit}s and {is_anomaly.sum()} other digits"
)

detector = AutoencoderOutlierDetector(random_state=0).fit(X_normal)
print(
    f"code width {detector.n_components_}, {detector.n_iter_} epochs, "
    f"weights kept from epoch {detector.best_epoch_}"
)

# %%
# Flag outliers with ``predict``
# ------------------------------
# ``decision_function`` is ``score_samples`` minus the threshold
# ``offset_``, and ``predict`` returns -1 exactly where it is negative. With
# the default ``contamination='auto'`` the threshold is Tukey's outer fence
# of the training errors, widened by how much worse the held-out training
# rows reconstruct; no fraction of outliers has to be guessed.
labels = detector.predict(X_test)
decision = detector.decision_function(X_test)
assert np.array_equal(labels == -1, decision < 0)

flagged = labels == -1
print(f"flagged as outliers: {flagged[~is_anomaly].mean():.1%} of the test 8s")
print(f"                     {flagged[is_anomaly].mean():.1%} of the other digits")
for digit in range(10):
    if digit != normal_digit:
        rate = flagged[y_test == digit].mean()
        print(f"  {digit}: {rate:.0%}", end="")
print()

# %%
# Most other digits are flagged, and only a few of the test 8s: those are
# false alarms, rows of the normal class beyond the fence. The misses
# concentrate on two digits (here the 1s, then the 3s): a plain vertical
# stroke lies where 8s have ink anyway, and a 3 is an 8 without the left
# side of its loops, so both score closer to the 8s than the other digits
# do.
# When false alarms matter more than catching every anomaly, pick a
# threshold on ``score_samples`` directly, or set ``contamination`` to the
# fraction of training rows to flag, with ``trim_fraction=0`` where they are
# all normal, as here: a float ``contamination`` says that the training rows
# hold that share of outliers, and by default the detector then leaves
# twice it out of training.
#
# The most and least anomalous images
# -----------------------------------
# Each image is drawn beside its reconstruction,
# ``inverse_transform(transform(X))``, under its digit and score. The least
# anomalous test rows are 8s that the detector reconstructs well, scoring
# above -1, as most training rows do. The most anomalous are digits with ink
# where no training 8 has any, such as the foot of a 1 or a 2: the error of
# such a pixel is divided by its small training error (floored at a few
# percent of the average pixel's), so their scores run far below -1. The
# bottom row shows the other digits that score the most normal, the
# anomalies that are hardest to catch; their reconstructions stay close to
# the original.
scores = detector.score_samples(X_test)
reconstructions = detector.inverse_transform(detector.transform(X_test))
most_normal_first = np.argsort(-scores)
n_shown = 6
groups = {
    "least anomalous test images": most_normal_first[:n_shown],
    "most anomalous test images": most_normal_first[::-1][:n_shown],
    "other digits that score the most normal": most_normal_first[
        is_anomaly[most_normal_first]
    ][:n_shown],
}

fig = plt.figure(figsize=(10, 6.3), layout="constrained")
subfigs = fig.subfigures(len(groups), 1)
for subfig, (title, rows) in zip(subfigs, groups.items(), strict=True):
    subfig.suptitle(title)
    axes = subfig.subplots(1, 2 * n_shown)
    for i, row in enumerate(rows):
        pair = axes[2 * i : 2 * i + 2]
        for ax, image in zip(pair, [X_test, reconstructions], strict=True):
            ax.imshow(image[row].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[2 * i].set_title(f"{y_test[row]}: {scores[row]:.1f}", fontsize="small")
        axes[2 * i + 1].set_title("rec.", fontsize="small")
plt.show()

# %%
# Tell the detector that the rows are images
# ------------------------------------------
# Flat rows are scored pixel by pixel. With ``image_shape`` the detector
# knows which pixels are neighbours, and scores the residual averaged over
# the 3x3 square around each pixel (``error_window=3``) before squaring it:
# a stroke where an 8 has none leaves a patch of error, while a normal 8
# that is drawn a pixel off leaves scattered errors of both signs, which
# the average cancels. The network stays the dense one (the detector's
# ``conv_channels=()``), so only the score differs from the detector above.
image_detector = AutoencoderOutlierDetector(image_shape=(1, 8, 8), random_state=0).fit(
    X_normal
)
image_scores = image_detector.score_samples(X_test)

# %%
# ROC curves against IsolationForest and PCA
# -------------------------------------------
# Each method ranks the test rows by how abnormal it finds them; the ROC
# curve and its area (AUC: 1 is perfect, 0.5 is chance) measure how well that
# ranking puts the other digits ahead of the 8s, whatever the threshold.
# IsolationForest is fitted on the same 8s. PCA's plain squared
# reconstruction error uses as many components as the detector's code.
iforest = IsolationForest(random_state=0).fit(X_normal)
pca = PCA(detector.n_components_, random_state=0).fit(X_normal)
pca_error = np.mean((X_test - pca.inverse_transform(pca.transform(X_test))) ** 2, 1)

# Each score is negated where needed so that higher means more abnormal.
anomaly_scores = {
    "AutoencoderOutlierDetector, image rows": -image_scores,
    "AutoencoderOutlierDetector, flat rows": -scores,
    "IsolationForest": -iforest.score_samples(X_test),
    f"PCA, {detector.n_components_} components": pca_error,
}
fig, ax = plt.subplots(figsize=(5, 4.5), layout="constrained")
for name, anomaly_score in anomaly_scores.items():
    print(f"ROC AUC, {name}: {roc_auc_score(is_anomaly, anomaly_score):.3f}")
    RocCurveDisplay.from_predictions(
        is_anomaly,
        anomaly_score,
        name=name,
        ax=ax,
        plot_chance_level=name == "IsolationForest",
    )
ax.legend(loc="lower right", fontsize="small")
ax.set_title(f"trained on the {normal_digit}s, anomalies: all other digits")
plt.show()

# %%
# The autoencoder ranks far better than IsolationForest. On flat rows it
# ranks about as well as PCA's plain reconstruction error, a linear model
# with the same number of components: with under a hundred 8x8 training
# images there is little for a nonlinear network to learn beyond PCA's
# solution, from which the detector starts (``init='pca'``), and the
# per-pixel weights of its error are estimated from those few rows. The
# windowed error of image rows moves it ahead. The benchmark in the user
# guide (:ref:`anomaly_scores`) measures both scores over all ten digits and
# on Fashion-MNIST, with thousands of larger training images per class.
