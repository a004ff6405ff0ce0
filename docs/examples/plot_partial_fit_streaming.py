"""
==============================================
Training on data streamed from disk, in chunks
==============================================

When the training rows do not fit in memory, ``partial_fit`` trains an
autoencoder on them one chunk at a time, as
:class:`~sklearn.decomposition.IncrementalPCA` fits PCA: read a chunk from
disk, call ``partial_fit(chunk)``, read the next. Here the digits' training
rows are written to a :class:`numpy.memmap` file, as if they were too large
to load, and an :class:`~skae.AutoencoderTransformer` makes several passes
over the file in chunks of 200 rows. Its reconstruction error on held-out
rows, measured after each pass, is compared with IncrementalPCA's over the
same chunks and with an ordinary ``fit`` on all the rows in memory.
"""

# %%
# The training rows on disk
# -------------------------
# The bundled 8x8 digits, scaled to [0, 1], are split into training rows
# and a quarter held out to score the models. The training rows are written
# to a file in a temporary folder as float32, a common format for large
# data. ``train_test_split`` returns them in random order; a second file
# holds the same rows sorted by digit, the way data often come (by class,
# by date, by source), to show what the order does.
import copy
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.decomposition import IncrementalPCA
from sklearn.model_selection import train_test_split

from skae import AutoencoderTransformer

X, y = load_digits(return_X_y=True)
X = X / 16
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, random_state=0
)
n_rows, n_features = X_train.shape
chunk_size = 200

tmpdir = tempfile.TemporaryDirectory()
files = {
    "shuffled": Path(tmpdir.name) / "digits_shuffled.f32",
    "sorted by digit": Path(tmpdir.name) / "digits_sorted.f32",
}
orders = {
    "shuffled": np.arange(n_rows),
    "sorted by digit": np.argsort(y_train, kind="stable"),
}
for name, path in files.items():
    on_disk = np.memmap(path, dtype=np.float32, mode="w+", shape=(n_rows, n_features))
    on_disk[:] = X_train[orders[name]]
    on_disk.flush()
    del on_disk
print(f"{n_rows} training rows on disk, {len(X_test)} held out")
first_sorted = np.unique(y_train[orders["sorted by digit"]][:chunk_size])
print(f"digits in the first chunk of the sorted file: {first_sorted}")


# %%
# Train chunk by chunk
# --------------------
# ``chunks`` opens the file read-only and yields ``chunk_size`` rows at a
# time; only the current chunk is read into memory. Each pass over the
# file calls ``partial_fit`` once per chunk, and each call trains **one
# epoch over its chunk**, in batches of ``batch_size`` rows taken from that
# chunk.
#
# The first call does more: it sets the model up from its chunk, the code
# width, the scaling of the data (the chunk's mean and root mean square)
# and, with ``init='pca'`` (the default), the network's starting point,
# PCA's solution on that chunk. ``batch_size='auto'`` is also settled then,
# from the first chunk's size. So the first chunk must be representative of
# all the rows: shuffle the rows once when writing the file.
#
# Nothing holds rows out and nothing stops early: ``max_iter``,
# ``early_stopping`` and its companions do not apply to ``partial_fit``,
# which keeps the latest weights. Deciding when to stop is up to the loop.
# Here it scores the held-out rows after each pass and keeps a copy of the
# best model so far.
n_passes = 15
n_components = 8


def chunks(path):
    rows = np.memmap(path, dtype=np.float32, mode="r", shape=(n_rows, n_features))
    for start in range(0, n_rows, chunk_size):
        yield np.asarray(rows[start : start + chunk_size])


def held_out_mse(model):
    return np.mean((X_test - model.inverse_transform(model.transform(X_test))) ** 2)


curves, best_models = {}, {}
for name, path in files.items():
    ae = AutoencoderTransformer(n_components=n_components, random_state=0)
    curves[name] = []
    for _ in range(n_passes):
        for chunk in chunks(path):
            ae.partial_fit(chunk)
        curves[name].append(held_out_mse(ae))
        if curves[name][-1] == min(curves[name]):
            best_models[name] = copy.deepcopy(ae)
    best_pass = int(np.argmin(curves[name])) + 1
    print(
        f"{name}: held-out MSE {curves[name][0]:.4f} after 1 pass, "
        f"{curves[name][-1]:.4f} after {n_passes} (best: pass {best_pass}); "
        f"{ae.n_iter_} partial_fit calls, {ae.n_samples_seen_} rows seen"
    )

# %%
# ``n_iter_`` counts the calls, one epoch over a chunk each, and
# ``n_samples_seen_`` the rows, each as many times as there were passes.
#
# The references
# --------------
# IncrementalPCA makes one pass over the same chunks, updating its mean and
# leading components chunk by chunk, close to PCA on all the rows; it has
# no use for more passes. The reference
# autoencoder is fitted in memory with the default settings and the same
# code width: ``fit`` holds out 10 % of its rows and stops when their loss
# stops improving, keeping the best epoch's weights.
ipca = IncrementalPCA(n_components=n_components)
for chunk in chunks(files["shuffled"]):
    ipca.partial_fit(chunk)
ipca_mse = held_out_mse(ipca)

fitted = AutoencoderTransformer(n_components=n_components, random_state=0)
fitted.fit(X_train)
fit_mse = held_out_mse(fitted)
print(f"IncrementalPCA: held-out MSE {ipca_mse:.4f}")
print(
    f"AutoencoderTransformer.fit: held-out MSE {fit_mse:.4f} "
    f"({fitted.n_iter_} epochs, weights kept from epoch {fitted.best_epoch_})"
)
tmpdir.cleanup()

# %%
# Held-out error pass by pass
# ---------------------------
passes = np.arange(1, n_passes + 1)
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
for name, curve in curves.items():
    ax.plot(passes, curve, marker="o", ms=3, label=f"partial_fit, rows {name}")
ax.axhline(ipca_mse, color="gray", ls="--", label="IncrementalPCA")
ax.axhline(fit_mse, color="black", ls=":", label="fit, in memory")
ax.set_xlabel("passes over the file")
ax.set_ylabel("held-out reconstruction MSE")
ax.set_xticks(passes[1::2])
ax.set_title(f"{n_components} components, chunks of {chunk_size} rows")
ax.legend()
plt.show()

# %%
# After the first pass over the shuffled file the autoencoder already
# reconstructs the held-out rows better than IncrementalPCA, PCA's linear
# reconstruction at the same width, and each further pass brings it closer
# to the in-memory ``fit``, with diminishing gains. When the curve flattens
# it is time to stop; the loop above kept the best model so far in
# ``best_models``, since ``partial_fit`` itself keeps the latest weights.
#
# The file sorted by digit trains worse throughout. Its first chunk holds
# only the digits printed at the top, so the scaling and the PCA start come
# from rows unlike the rest; and within each pass the network sees one digit
# after another, each chunk pulling the weights towards its own digits.
# Shuffling the rows once, when writing them, avoids both.
#
# ``fit`` is the way to go when the rows fit in memory: it holds rows out
# and stops by itself. They need not fit on the GPU: on a CUDA device,
# ``fit`` keeps training rows that exceed half the free device memory in
# pinned host memory and copies the batches over (see
# :ref:`devices_and_persistence`).
