import copy
import inspect
import re
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity

from skae import AutoencoderTransformer, DenoisingAutoencoder, VariationalAutoencoder
from skae._validation import torch_seed
from skae.plotting import (
    DenoisingDisplay,
    LatentSpaceDisplay,
    LossCurveDisplay,
    ReconstructionDisplay,
    SamplesDisplay,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

TINY = dict(hidden_layer_sizes=(8,), max_iter=2, random_state=0)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def digits_data():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X[:300] / 16, y[:300]


@pytest.fixture(scope="module")
def ae(digits_data):
    return AutoencoderTransformer(4, **TINY).fit(digits_data[0])


@pytest.fixture(scope="module")
def dae(digits_data):
    return DenoisingAutoencoder(4, noise_level=0.3, **TINY).fit(digits_data[0])


@pytest.fixture(scope="module")
def tabular():
    rng = np.random.RandomState(0)
    return rng.normal(size=(60, 6))


@pytest.fixture(scope="module")
def tabular_ae(tabular):
    return AutoencoderTransformer(2, **TINY).fit(tabular)


def reconstruct(estimator, X):
    return estimator.inverse_transform(estimator.transform(X))


def images_of(fig):
    return [im for ax in fig.get_axes() for im in ax.get_images()]


def row_titles(display):
    return [subfig.get_suptitle() for subfig in display.figure_.subfigs]


# ------------------------------------------------------- lazy matplotlib


def test_import_does_not_import_matplotlib():
    code = "import sys, skae, skae.plotting; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


# ------------------------------------------------------- reconstruction


def test_reconstruction_images(ae, digits_data):
    X, y = digits_data
    display = ReconstructionDisplay.from_estimator(ae, X, y, n_samples=5)

    assert display.axes_.shape == (2, 5)
    assert len(display.figure_.get_axes()) == 10
    assert len(images_of(display.figure_)) == 10
    assert display.images_.shape == (2, 5)
    assert display.lines_ is None
    assert row_titles(display) == ["original", "reconstruction"]
    expected = reconstruct(ae, X[:5])
    for j in range(5):
        assert isinstance(display.images_[0, j], AxesImage)
        assert_array_equal(display.images_[0, j].get_array(), X[j].reshape(8, 8))
        assert_allclose(display.images_[1, j].get_array(), expected[j].reshape(8, 8))
        # Both rows share the originals' range, so they compare at a glance.
        assert display.images_[1, j].get_clim() == (0.0, 1.0)
        assert display.axes_[0, j].get_title() == str(y[j])


def test_reconstruction_n_samples_beyond_data(ae, digits_data):
    display = ReconstructionDisplay.from_estimator(ae, digits_data[0][:3])
    assert display.axes_.shape == (2, 3)


def test_reconstruction_image_shape_from_estimator():
    # 48 features are no square: only the estimator's image_shape makes images.
    X = np.random.RandomState(0).uniform(size=(40, 3 * 4 * 4))
    conv = AutoencoderTransformer(
        2, image_shape=(3, 4, 4), conv_channels=(4,), **TINY
    ).fit(X)
    display = ReconstructionDisplay.from_estimator(conv, X, n_samples=2)
    assert display.images_[0, 0].get_array().shape == (4, 4, 3)


def test_reconstruction_image_shape_argument_wins(ae, digits_data):
    X = digits_data[0]
    display = ReconstructionDisplay.from_estimator(
        ae, X, n_samples=2, image_shape=(1, 4, 16)
    )
    assert_array_equal(display.images_[0, 1].get_array(), X[1].reshape(4, 16))


@pytest.mark.parametrize("n_features, images", [(9, False), (16, True), (20, False)])
def test_reconstruction_square_guess(n_features, images):
    X = np.random.RandomState(0).uniform(size=(10, n_features))
    display = ReconstructionDisplay.from_estimator(PCA(2).fit(X), X, n_samples=2)
    assert (display.images_ is not None) == images
    assert (display.lines_ is None) == images


def test_reconstruction_rgb():
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(20, 3 * 4 * 5))
    pca = PCA(5).fit(X)
    display = ReconstructionDisplay.from_estimator(
        pca, X, n_samples=3, image_shape=(3, 4, 5)
    )

    original = display.images_[0, 2].get_array()
    assert original.shape == (4, 5, 3)
    # Rows are channel-first (C, H, W); images are shown channel-last.
    assert_allclose(original, X[2].reshape(3, 4, 5).transpose(1, 2, 0))
    reconstructed = display.images_[1, 2].get_array()
    assert reconstructed.shape == (4, 5, 3)
    assert 0 <= reconstructed.min() and reconstructed.max() <= 1


def test_reconstruction_tabular(tabular_ae, tabular):
    display = ReconstructionDisplay.from_estimator(tabular_ae, tabular, n_samples=4)

    assert display.axes_.shape == (1, 4)
    assert display.images_ is None
    assert images_of(display.figure_) == []
    assert display.lines_.shape == (2, 4)
    expected = reconstruct(tabular_ae, tabular[:4])
    for j, ax in enumerate(display.axes_[0]):
        assert ax.get_lines() == list(display.lines_[:, j])
        original, reconstruction = display.lines_[:, j]
        assert_array_equal(original.get_xdata(), np.arange(6))
        assert_array_equal(original.get_ydata(), tabular[j])
        assert original.get_marker() == "o"
        assert_allclose(reconstruction.get_ydata(), expected[j])
        assert reconstruction.get_linestyle() == "--"
    legend_texts = [t.get_text() for t in display.figure_.legends[0].get_texts()]
    assert legend_texts == ["original", "reconstruction"]


def test_reconstruction_draws_into_given_figure(ae, digits_data):
    fig = plt.figure()
    left, _ = fig.subfigures(1, 2)
    display = ReconstructionDisplay.from_estimator(
        ae, digits_data[0], n_samples=2, fig=left
    )
    assert display.figure_ is left
    assert len(fig.get_axes()) == 4


@pytest.mark.parametrize(
    "params, message",
    [
        (
            dict(reconstructions=np.zeros((3, 63))),
            "reconstructions has shape (3, 63), but originals has shape (3, 64)",
        ),
        (
            dict(image_shape=(1, 28, 28)),
            "image_shape=(1, 28, 28) implies 784 features, but originals has 64 "
            "features.",
        ),
        (
            dict(image_shape=(2, 4, 8)),
            "image_shape=(2, 4, 8) has 2 channels; only 1 (grayscale) or 3 (RGB) "
            "channels can be shown as images.",
        ),
        (
            dict(image_shape=(8, 8, 1, 1)),
            "image_shape must be (channels, height, width), got (8, 8, 1, 1).",
        ),
        # The estimators' own check: (H, W) is refused there, so here too.
        (
            dict(image_shape=(8, 8)),
            "image_shape must be (channels, height, width), got (8, 8); for "
            "single-channel images pass image_shape=(1, 8, 8).",
        ),
        (dict(labels=[1, 2]), "labels has shape (2,), but originals has 3 rows"),
    ],
)
def test_reconstruction_bad_inputs(params, message):
    data = dict(originals=np.zeros((3, 64)), reconstructions=np.zeros((3, 64)))
    data.update(params)
    display = ReconstructionDisplay(
        data.pop("originals"), data.pop("reconstructions"), **data
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        display.plot()


def test_reconstruction_from_estimator_checks_X_and_y(ae, digits_data):
    X, y = digits_data
    with pytest.raises(TypeError, match="dense data is required"):
        ReconstructionDisplay.from_estimator(ae, scipy.sparse.csr_matrix(X))
    with pytest.raises(ValueError, match=re.escape("labels has shape (), but X")):
        ReconstructionDisplay.from_estimator(ae, X, 3)


def test_image_shape_is_checked_as_the_estimators_check_it(ae, digits_data):
    X = digits_data[0]
    with pytest.raises(ValueError) as by_estimator:
        AutoencoderTransformer(image_shape=(8, 8), **TINY).fit(X)
    with pytest.raises(ValueError) as by_display:
        ReconstructionDisplay.from_estimator(ae, X, image_shape=(8, 8))
    assert str(by_display.value) == str(by_estimator.value)


@pytest.mark.parametrize("n_samples", [0, 2.5, True])
def test_reconstruction_bad_n_samples(ae, digits_data, n_samples):
    with pytest.raises(ValueError, match="n_samples must be a positive int"):
        ReconstructionDisplay.from_estimator(ae, digits_data[0], n_samples=n_samples)


@pytest.mark.parametrize(
    "from_estimator",
    [
        lambda est, X: ReconstructionDisplay.from_estimator(est, X),
        lambda est, X: LatentSpaceDisplay.from_estimator(est, X),
        lambda est, X: LossCurveDisplay.from_estimator(est),
        lambda est, X: DenoisingDisplay.from_estimator(est, X),
        lambda est, X: SamplesDisplay.from_estimator(est),
    ],
)
def test_not_fitted(from_estimator, tabular):
    with pytest.raises(NotFittedError):
        from_estimator(DenoisingAutoencoder(), tabular)


@pytest.mark.parametrize(
    "from_estimator, missing",
    [
        (ReconstructionDisplay.from_estimator, "transform and inverse_transform"),
        (LatentSpaceDisplay.from_estimator, "transform"),
        (DenoisingDisplay.from_estimator, "transform and inverse_transform"),
    ],
)
def test_estimator_of_the_wrong_kind(from_estimator, missing, tabular):
    regressor = LinearRegression().fit(tabular, tabular[:, 0])
    with pytest.raises(
        ValueError, match=re.escape(f"LinearRegression has no {missing} to ")
    ):
        from_estimator(regressor, tabular)


@pytest.mark.parametrize(
    "draw, message",
    [
        (
            lambda fig, ax: ReconstructionDisplay(
                np.zeros((2, 6)), np.zeros((2, 6))
            ).plot(fig=ax),
            "fig must be a matplotlib Figure or SubFigure, got Axes.",
        ),
        (
            lambda fig, ax: ReconstructionDisplay(
                np.zeros((2, 64)), np.zeros((2, 64)), image_shape=(1, 8, 8)
            ).plot(fig=ax),
            "fig must be a matplotlib Figure or SubFigure, got Axes.",
        ),
        (
            lambda fig, ax: SamplesDisplay(np.zeros((2, 6))).plot(fig=ax),
            "fig must be a matplotlib Figure or SubFigure, got Axes.",
        ),
        (
            lambda fig, ax: LossCurveDisplay([1.0, 0.5]).plot(ax=fig),
            "ax must be matplotlib Axes, got Figure.",
        ),
        (
            lambda fig, ax: LatentSpaceDisplay(np.zeros((3, 2))).plot(axes=fig),
            "axes must be matplotlib Axes, got Figure.",
        ),
    ],
)
def test_the_wrong_matplotlib_object_to_draw_into(draw, message):
    # An Axes for fig, or a Figure for ax, failed in matplotlib with an
    # AttributeError ("'Axes' object has no attribute 'subplots'").
    fig, ax = plt.subplots()
    with pytest.raises(TypeError, match=re.escape(message)):
        draw(fig, ax)


@pytest.mark.parametrize(
    "draw, message",
    [
        (
            lambda dae, X: SamplesDisplay(np.zeros((2, 28, 28))).plot(),
            "samples has shape (2, 28, 28), but the display takes images as flat "
            "rows, of shape (n_samples, n_features). Pass "
            "samples.reshape(len(samples), -1), to shape (2, 784), with "
            "image_shape=(1, 28, 28) (channels, height, width).",
        ),
        (
            lambda dae, X: ReconstructionDisplay(
                np.zeros((2, 3, 32, 32)), np.zeros((2, 3, 32, 32))
            ).plot(),
            "Pass originals.reshape(len(originals), -1), to shape (2, 3072), with "
            "image_shape=(3, 32, 32)",
        ),
        (
            lambda dae, X: SamplesDisplay(np.zeros((2, 32, 32, 3))).plot(),
            "Pass samples.transpose(0, 3, 1, 2).reshape(len(samples), -1), to "
            "shape (2, 3072), with image_shape=(3, 32, 32)",
        ),
        (
            lambda dae, X: DenoisingDisplay.from_estimator(dae, X.reshape(-1, 8, 8)),
            "X_clean has shape (300, 8, 8), but the display takes images as flat rows",
        ),
        # The estimator's message gave the shape of the first n_samples rows,
        # (8, 8, 8), as X's.
        (
            lambda dae, X: ReconstructionDisplay.from_estimator(
                dae, X.reshape(-1, 8, 8)
            ),
            "X has shape (300, 8, 8), but the display takes images as flat rows, "
            "of shape (n_samples, n_features). Pass X.reshape(len(X), -1), to "
            "shape (300, 64), with image_shape=(1, 8, 8)",
        ),
    ],
)
def test_arrays_of_images_get_the_reshape_that_draws_them(
    dae, digits_data, draw, message
):
    # Images as the fetchers' ``images`` hold them: scikit-learn's message,
    # "Found array with dim 3", said neither how to flatten nor image_shape.
    with pytest.raises(ValueError, match=re.escape(message)):
        draw(dae, digits_data[0])


# --------------------------------------------------------- latent space


def test_latent_space_with_pca(ae, digits_data):
    X, y = digits_data
    display = LatentSpaceDisplay.from_estimator(ae, X, y)

    assert len(display.axes_) == 2
    assert len(display.figure_.get_axes()) == 2
    codes = ae.transform(X)
    assert_allclose(display.scatters_[0].get_offsets(), codes[:, :2])
    pca_codes = PCA(2, random_state=0).fit_transform(X)
    assert_allclose(display.scatters_[1].get_offsets(), pca_codes)
    # Colours are mapped when drawn.
    display.figure_.canvas.draw()
    for scatter in display.scatters_:
        colours = np.unique(scatter.get_facecolors(), axis=0)
        assert len(colours) == len(np.unique(y))
    # 4 components: the title says which two are shown.
    assert "1-2 of 4" in display.axes_[0].get_title()
    assert display.axes_[1].get_title() == "PCA codes"
    legend = display.axes_[-1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [str(c) for c in range(10)]


def test_latent_space_same_colour_per_label():
    codes = np.arange(12.0).reshape(6, 2)
    labels = np.array(["b", "a", "b", "c", "a", "c"])
    display = LatentSpaceDisplay(codes, labels=labels).plot()
    display.figure_.canvas.draw()

    colours = display.scatters_[0].get_facecolors()
    for label in np.unique(labels):
        assert len(np.unique(colours[labels == label], axis=0)) == 1
    assert len(np.unique(colours, axis=0)) == 3


def test_latent_space_many_numeric_labels_use_a_colorbar():
    rng = np.random.RandomState(0)
    codes = rng.normal(size=(50, 2))
    display = LatentSpaceDisplay(codes, labels=rng.uniform(size=50)).plot()
    assert display.axes_[0].get_legend() is None
    # The colorbar is an axis of its own.
    assert len(display.figure_.get_axes()) == 2


def test_latent_space_into_given_axis(ae, digits_data):
    X, _ = digits_data
    fig, ax = plt.subplots()
    display = LatentSpaceDisplay.from_estimator(ae, X, compare_pca=False, axes=ax)

    assert display.axes_[0] is ax
    assert display.figure_ is fig
    assert len(fig.get_axes()) == 1
    assert_allclose(ax.collections[0].get_offsets(), ae.transform(X)[:, :2])
    assert ax.get_legend() is None


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(codes=np.zeros((5, 1))), "codes has 1 column, but a latent space"),
        (
            dict(pca_codes=np.zeros((4, 2))),
            "pca_codes has shape (4, 2), but codes has 5 rows",
        ),
        (dict(labels=np.zeros(4)), "labels has shape (4,), but codes has 5 rows"),
        (dict(axes="two"), "axes holds 1 axes, but 2 panel(s) are drawn"),
    ],
)
def test_latent_space_bad_inputs(params, message):
    data = dict(codes=np.zeros((5, 3)), pca_codes=np.zeros((5, 2)))
    data.update(params)
    axes = data.pop("axes", None)
    if axes is not None:
        axes = plt.subplots()[1]
    display = LatentSpaceDisplay(data.pop("codes"), **data)
    with pytest.raises(ValueError, match=re.escape(message)):
        display.plot(axes)


def test_latent_space_from_estimator_compares_pca_on_two_rows_at_least(ae, digits_data):
    X, y = digits_data
    with pytest.raises(ValueError, match=r"compare_pca=True needs PCA's 2"):
        LatentSpaceDisplay.from_estimator(ae, X[:1], y[:1])
    display = LatentSpaceDisplay.from_estimator(ae, X[:1], compare_pca=False)
    assert display.pca_codes is None


@pytest.mark.parametrize("compare_pca", ["no", None, 0])
def test_latent_space_compare_pca_must_be_a_bool(ae, digits_data, compare_pca):
    # Truthiness drew PCA's panel for "no" and silently dropped it for None.
    with pytest.raises(
        TypeError, match=re.escape(f"compare_pca must be a bool, got {compare_pca!r}.")
    ):
        LatentSpaceDisplay.from_estimator(ae, digits_data[0], compare_pca=compare_pca)


@pytest.mark.parametrize("labels", [np.arange(5) % 2, np.arange(30)])
def test_latent_space_axes_of_one_figure(labels):
    # With a colorbar (many labels), matplotlib failed with "Unable to create
    # a colorbar Axes as not all parents share the same figure"; with a
    # legend, figure_ named the first figure only.
    rows = np.random.RandomState(0).normal(size=(len(labels), 2))
    display = LatentSpaceDisplay(rows, labels=labels, pca_codes=rows)
    left, right = plt.figure().subfigures(1, 2)
    for axes in [
        [plt.subplots()[1], plt.subplots()[1]],
        [left.subplots(), right.subplots()],
    ]:
        with pytest.raises(
            ValueError,
            match=re.escape(
                "axes holds axes of different figures (or subfigures); pass axes "
                "of one figure"
            ),
        ):
            display.plot(axes)
    fig, axes = plt.subplots(1, 2)
    assert display.plot(axes).figure_ is fig


def test_latent_space_from_estimator_checks_y_against_X(ae, digits_data):
    # The message named codes, which the caller of from_estimator never saw.
    X, y = digits_data
    with pytest.raises(
        ValueError,
        match=re.escape("labels has shape (5,), but X has 300 rows; pass one label"),
    ):
        LatentSpaceDisplay.from_estimator(ae, X, y[:5])


def test_latent_space_labels_of_mixed_types():
    labels = np.array([1, "a", 2, "a"], dtype=object)
    display = LatentSpaceDisplay(np.zeros((4, 2)), labels=labels).plot()
    legend = display.axes_[-1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["1", "2", "a"]


def test_latent_space_legend_follows_a_given_cmap():
    labels = np.array([0, 1, 2, 0, 1, 2])
    codes = np.random.RandomState(0).normal(size=(6, 2))
    display = LatentSpaceDisplay(codes, labels=labels).plot(cmap="magma")
    display.figure_.canvas.draw()
    colours = display.scatters_[0].get_facecolors()[:, :3]
    handles = display.axes_[0].get_legend().legend_handles
    assert len(np.unique(colours, axis=0)) == 3
    for label, handle in zip(range(3), handles, strict=True):
        assert_allclose(colours[labels == label][0], to_rgb(handle.get_color()))


@pytest.mark.parametrize("colour", ["c", "color"])
def test_latent_space_labels_and_a_colour_are_refused(colour):
    display = LatentSpaceDisplay(np.zeros((3, 2)), labels=[0, 1, 0])
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{colour}='red' colours every point, but labels colour them by "
            "label; pass labels=None (y=None to from_estimator) or drop "
            f"{colour}."
        ),
    ):
        display.plot(**{colour: "red"})
    display = LatentSpaceDisplay(np.zeros((3, 2))).plot(**{colour: "red"})
    assert_allclose(display.scatters_[0].get_facecolors()[:, :3], [to_rgb("red")])


def test_latent_space_from_estimator_passes_kwargs_to_scatter(ae, digits_data):
    X, y = digits_data
    display = LatentSpaceDisplay.from_estimator(ae, X, y, s=3, marker="x")
    for scatter in display.scatters_:
        assert_array_equal(scatter.get_sizes(), [3])


def test_latent_space_refuses_ax(ae, digits_data):
    # scikit-learn's name for it; passed on to scatter, it failed there with
    # "Axes.scatter() got multiple values for argument 'ax'".
    _, ax = plt.subplots()
    message = "pass axes=, one axis per panel (two with PCA's codes), not ax="
    with pytest.raises(TypeError, match=re.escape(message)):
        LatentSpaceDisplay(np.zeros((3, 2))).plot(ax=ax)
    with pytest.raises(TypeError, match=re.escape(message)):
        LatentSpaceDisplay.from_estimator(ae, digits_data[0], compare_pca=False, ax=ax)


def test_latent_space_many_text_labels_have_no_legend():
    # A legend of one entry per label stops being readable (and takes
    # seconds to lay out with thousands); colours still follow the labels.
    labels = np.array([f"id{i % 30}" for i in range(60)])
    codes = np.random.RandomState(0).normal(size=(60, 2))
    display = LatentSpaceDisplay(codes, labels=labels).plot()
    assert display.axes_[0].get_legend() is None
    assert display.figure_.get_axes() == [display.axes_[0]]
    display.figure_.canvas.draw()
    colours = display.scatters_[0].get_facecolors()
    for label in np.unique(labels):
        assert len(np.unique(colours[labels == label], axis=0)) == 1


# ----------------------------------------------------------- loss curve


def test_loss_curve_from_estimator(ae):
    display = LossCurveDisplay.from_estimator(ae)

    train, validation = display.lines_["train"], display.lines_["validation"]
    assert_array_equal(train.get_xdata(), [1, 2])
    assert_allclose(train.get_ydata(), ae.loss_curve_)
    assert_allclose(validation.get_ydata(), ae.validation_loss_curve_)
    assert display.ax_.get_yscale() == "log"
    assert display.figure_ is display.ax_.figure


def test_loss_curve_best_epoch_line():
    display = LossCurveDisplay(
        [4.0, 2.0, 1.0, 1.5], validation_loss_curve=[5.0, 3.0, 2.0, 2.5], best_epoch=3
    ).plot()

    best = display.lines_["best_epoch"]
    assert_array_equal(best.get_xdata(), [3, 3])
    assert best.get_linestyle() == "--"
    assert "best epoch (3)" in [t.get_text() for t in display.ax_.get_legend().texts]


def test_loss_curve_initial_state_kept():
    display = LossCurveDisplay([1.0, 2.0], best_epoch=0).plot()
    assert display.lines_["best_epoch"] is None
    assert display.lines_["validation"] is None
    assert "initial weights were kept" in display.ax_.get_title()


def test_loss_curve_into_given_axis():
    fig, (left, right) = plt.subplots(1, 2)
    display = LossCurveDisplay([3.0, 2.0, 1.0]).plot(ax=right)
    assert display.ax_ is right
    assert right.get_lines() == [display.lines_["train"]]
    assert left.get_lines() == []


def test_loss_curve_within_a_decade_has_plain_tick_labels():
    display = LossCurveDisplay([0.34, 0.3, 0.27, 0.25, 0.22]).plot()
    display.figure_.canvas.draw()
    labels = [t.get_text() for t in display.ax_.get_yticklabels() if t.get_text()]
    assert len(labels) >= 3
    for label in labels:
        float(label)


@pytest.mark.parametrize(
    "loss_curve, validation_loss_curve",
    [
        ([3.0, -1.0, -2.0], [4.0, 0.5, -1.5]),
        ([3.0, 1.0, 0.5], [4.0, 0.5, -1.5]),
        ([1.0, 0.0, 0.0], None),
    ],
)
def test_loss_curve_not_positive_on_a_linear_scale(loss_curve, validation_loss_curve):
    # A variational autoencoder's loss, a Gaussian negative log-likelihood,
    # goes below 0: a log scale would silently drop those epochs.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        display = LossCurveDisplay(
            loss_curve, validation_loss_curve=validation_loss_curve
        ).plot()
        display.figure_.canvas.draw()
    assert display.ax_.get_yscale() == "linear"
    low, high = display.ax_.get_ylim()
    drawn = [*loss_curve, *(validation_loss_curve or [])]
    assert low <= min(drawn) and max(drawn) <= high


def test_loss_curve_of_a_variational_autoencoder():
    # Rank-2 data: the learned likelihood variance shrinks and the held-out
    # negative log-likelihood goes below 0 within two epochs.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 2)) @ rng.normal(size=(2, 6))
    vae = VariationalAutoencoder(2, **TINY).fit(X)
    assert min(vae.validation_loss_curve_) < 0
    display = LossCurveDisplay.from_estimator(vae)
    assert display.ax_.get_yscale() == "linear"
    assert_allclose(
        display.lines_["validation"].get_ydata(), vae.validation_loss_curve_
    )


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(loss_curve=[]), "loss_curve must be a non-empty 1-D sequence"),
        (
            dict(validation_loss_curve=[1.0]),
            "validation_loss_curve has shape (1,), but loss_curve has shape (2,)",
        ),
        (dict(best_epoch=3), "best_epoch must be an int in [0, 2]"),
        (dict(best_epoch=1.0), "best_epoch must be an int in [0, 2]"),
        (
            dict(loss_curve=["a", "b"]),
            "loss_curve must be a sequence of numbers, one loss per epoch: could "
            "not convert string to float: 'a'.",
        ),
        (
            dict(validation_loss_curve=[1.0, {}]),
            "validation_loss_curve must be a sequence of numbers",
        ),
    ],
)
def test_loss_curve_bad_inputs(params, message):
    display = LossCurveDisplay(**{"loss_curve": [2.0, 1.0], **params})
    with pytest.raises(ValueError, match=re.escape(message)):
        display.plot()


def test_loss_curve_needs_a_loss_curve(tabular):
    with pytest.raises(ValueError, match="PCA has no loss_curve_ to plot"):
        LossCurveDisplay.from_estimator(PCA(2).fit(tabular))


# ------------------------------------------------------------ denoising


def psnr(clean, other, data_range):
    return 10 * np.log10(data_range**2 / np.mean((clean - other) ** 2))


def test_denoising_images(dae, digits_data):
    X, _ = digits_data
    display = DenoisingDisplay.from_estimator(dae, X, n_samples=4, random_state=0)

    assert display.axes_.shape == (3, 4)
    assert len(images_of(display.figure_)) == 12
    clean = np.stack([im.get_array() for im in display.images_[0]]).reshape(4, -1)
    noisy = np.stack([im.get_array() for im in display.images_[1]]).reshape(4, -1)
    denoised = np.stack([im.get_array() for im in display.images_[2]]).reshape(4, -1)
    assert_array_equal(clean, X[:4])
    # The very layer the estimator trained with (Gaussian noise clipped to
    # the data's range), drawing from a generator seeded by random_state.
    layer = copy.deepcopy(dae.module_.corruption).train()
    seed = torch_seed(np.random.RandomState(0))
    layer.set_generator(torch.Generator().manual_seed(seed))
    assert_array_equal(noisy, layer(torch.from_numpy(X[:4])).numpy())
    assert not np.array_equal(noisy, clean)
    # The denoiser's whole network, its skip path included.
    assert_allclose(denoised, dae.denoise(noisy))

    data_range = X.max() - X.min()
    expected = {
        "noisy": psnr(clean, noisy, data_range),
        "denoised": psnr(clean, denoised, data_range),
    }
    assert display.psnr_ == pytest.approx(expected)
    titles = row_titles(display)
    assert titles[0] == "clean"
    assert titles[1] == f"noisy (PSNR {expected['noisy']:.1f} dB)"
    assert titles[2] == f"denoised (PSNR {expected['denoised']:.1f} dB)"


@pytest.mark.parametrize("noise", ["masking", "salt_pepper"])
def test_denoising_fraction_noise(dae, digits_data, noise):
    X, _ = digits_data
    display = DenoisingDisplay.from_estimator(
        dae, X, noise=noise, noise_level=0.25, n_samples=3
    )
    noisy = np.stack([im.get_array() for im in display.images_[1]]).reshape(3, -1)
    changed = noisy != X[:3]
    # Exactly 16 of 64 entries are chosen per row; some already had the value.
    assert (changed.sum(axis=1) <= 16).all()
    assert changed.any()
    allowed = [0.0] if noise == "masking" else [X.min(), X.max()]
    assert np.isin(noisy[changed], allowed).all()


def test_denoising_given_noisy_rows(ae, digits_data):
    X, _ = digits_data
    X_noisy = np.clip(X + 0.1, 0, 1)
    # A plain autoencoder has no noise parameters: X_noisy is enough.
    display = DenoisingDisplay.from_estimator(ae, X, X_noisy=X_noisy, n_samples=2)
    assert_array_equal(display.images_[1, 1].get_array(), X_noisy[1].reshape(8, 8))


def test_denoising_given_noisy_frame_keeps_feature_names(digits_data):
    X = pd.DataFrame(digits_data[0]).add_prefix("pixel")
    ae = AutoencoderTransformer(4, **TINY).fit(X)
    with warnings.catch_warnings():
        # "X does not have valid feature names, but ... was fitted with
        # feature names": the display handed the estimator a bare array.
        warnings.simplefilter("error")
        display = DenoisingDisplay.from_estimator(
            ae, X, X_noisy=(X + 0.1).clip(0, 1), n_samples=2
        )
    expected = reconstruct(ae, (X + 0.1).clip(0, 1).iloc[:2])
    assert_allclose(display.denoised, expected, rtol=1e-5)


def test_denoising_own_noise_on_a_frame_keeps_feature_names(digits_data):
    # The display corrupts the rows itself: they go back into the frame's
    # container before the estimator sees them.
    X = pd.DataFrame(digits_data[0]).add_prefix("pixel")
    dae = DenoisingAutoencoder(4, noise_level=0.1, **TINY).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        display = DenoisingDisplay.from_estimator(dae, X, n_samples=2)
    assert display.denoised.shape == (2, X.shape[1])


def test_denoising_read_only_rows(dae, digits_data):
    X = digits_data[0].copy()
    X.flags.writeable = False
    with warnings.catch_warnings():
        # torch warns on read-only arrays it is handed without a copy.
        warnings.simplefilter("error")
        display = DenoisingDisplay.from_estimator(dae, X, n_samples=2)
    assert_array_equal(X, digits_data[0])
    assert display.psnr_["noisy"] < np.inf


def test_denoising_tabular(tabular):
    dae = DenoisingAutoencoder(2, **TINY).fit(tabular)
    display = DenoisingDisplay.from_estimator(dae, tabular, n_samples=3)

    assert display.axes_.shape == (1, 3)
    assert display.lines_.shape == (3, 3)
    assert display.images_ is None
    labels = [line.get_label() for line in display.lines_[:, 0]]
    assert labels[0] == "clean"
    assert f"{display.psnr_['noisy']:.1f} dB" in labels[1]
    assert f"{display.psnr_['denoised']:.1f} dB" in labels[2]


def shift(x, generator):
    return x + 0.5


def test_denoising_callable_noise(tabular):
    dae = DenoisingAutoencoder(2, noise=shift, **TINY).fit(tabular)
    display = DenoisingDisplay.from_estimator(dae, tabular, n_samples=3)
    noisy = np.stack([line.get_ydata() for line in display.lines_[1]])
    # The estimator's callable, clipped to the data's range as in training.
    assert_allclose(noisy, np.clip(tabular[:3] + 0.5, tabular.min(), tabular.max()))
    display = DenoisingDisplay.from_estimator(dae, tabular, X_noisy=tabular + 1)
    assert display.psnr_["noisy"] == pytest.approx(
        psnr(0, 1, tabular.max() - tabular.min())
    )


@pytest.mark.parametrize(
    "params, message",
    [
        (
            dict(noise="blur"),
            "noise must be one of ('gaussian', 'masking', 'salt_pepper') or a "
            "callable fn(x, generator), got 'blur'.",
        ),
        (
            dict(noise="masking", noise_level=1.5),
            "noise_level (the fraction masked) must be in the range [0, 1], got 1.5.",
        ),
        (
            dict(noise_level=-1.0),
            "noise_level (the std of noise='gaussian') must be a finite number >= "
            "0, got -1.0.",
        ),
        (dict(X_noisy=np.zeros((5, 64))), "X_noisy has shape (5, 64), but X_clean"),
        (
            dict(X_noisy=np.zeros((300, 64)), noise_level=0.1),
            "Pass either X_noisy or noise/noise_level, not both",
        ),
    ],
)
def test_denoising_bad_inputs(dae, digits_data, params, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        DenoisingDisplay.from_estimator(dae, digits_data[0], **params)


@pytest.mark.parametrize("data_range", ["a", 0, -1.0, np.inf])
def test_denoising_data_range_is_checked(data_range):
    rows = np.zeros((3, 16))
    display = DenoisingDisplay(rows, rows, rows, data_range=data_range)
    with pytest.raises(ValueError, match=r"data_range must be a positive finite"):
        display.plot()


def test_denoising_constant_rows_have_no_data_range(dae):
    # The PSNR over a range of 0 was -inf dB (nan for rows denoised exactly),
    # and from_estimator blamed data_range, which it does not take.
    rows = np.full((3, 64), 0.5)
    message = "clean is constant (every entry is 0.5): it has no range to give "
    with pytest.raises(ValueError, match=re.escape(message + "the PSNR; pass")):
        DenoisingDisplay(rows, rows + 0.1, rows).plot()
    with pytest.raises(ValueError, match=re.escape("X_" + message)):
        DenoisingDisplay.from_estimator(dae, rows)


def test_denoising_plain_estimator_needs_noise(tabular):
    with pytest.raises(ValueError, match="PCA has no noise or noise_level"):
        DenoisingDisplay.from_estimator(PCA(2).fit(tabular), tabular)


def test_denoising_mismatched_rows():
    display = DenoisingDisplay(np.zeros((2, 4)), np.zeros((2, 4)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match=re.escape("denoised has shape (3, 4)")):
        display.plot()


# -------------------------------------------------------------- samples


@pytest.fixture(scope="module")
def vae(digits_data):
    # A Gaussian likelihood: samples leave the data's range [0, 1].
    return VariationalAutoencoder(4, **TINY).fit(digits_data[0])


def test_samples_images(vae):
    display = SamplesDisplay.from_estimator(vae, n_samples=10, n_cols=4)

    assert display.axes_.shape == (3, 4)
    assert display.images_.shape == (10,)
    assert display.lines_ is None
    # The cells past the last sample are hidden.
    assert [ax.get_visible() for ax in display.axes_.flat] == [True] * 10 + [False] * 2
    drawn = np.stack([im.get_array() for im in display.images_]).reshape(10, -1)
    assert_array_equal(drawn, vae.sample(10, random_state=0))
    # The training data's range, [0, 1], not the samples' own.
    assert drawn.min() < 0
    assert all(im.get_clim() == (0.0, 1.0) for im in display.images_)


def test_samples_clip(vae):
    display = SamplesDisplay.from_estimator(vae, n_samples=3, clip=True)
    drawn = np.stack([im.get_array() for im in display.images_]).reshape(3, -1)
    assert_array_equal(drawn, vae.sample(3, random_state=0, clip=True))


def test_samples_random_state(vae):
    first, same, other = (
        SamplesDisplay.from_estimator(vae, n_samples=2, random_state=seed)
        for seed in (1, 1, 2)
    )
    assert_array_equal(first.images_[0].get_array(), same.images_[0].get_array())
    assert not np.array_equal(
        first.images_[0].get_array(), other.images_[0].get_array()
    )


def test_samples_tabular(tabular):
    vae = VariationalAutoencoder(2, **TINY).fit(tabular)
    display = SamplesDisplay.from_estimator(vae, n_samples=5)

    assert display.axes_.shape == (1, 1)
    assert display.images_ is None
    assert display.lines_.shape == (5,)
    drawn = np.stack([line.get_ydata() for line in display.lines_])
    assert_array_equal(drawn, vae.sample(5, random_state=0))


def test_samples_value_range():
    samples = np.random.RandomState(0).uniform(size=(3, 16))
    display = SamplesDisplay(samples, image_shape=(1, 4, 4), value_range=(-1, 2))
    display.plot()
    assert all(im.get_clim() == (-1.0, 2.0) for im in display.images_)


def test_samples_draws_into_given_figure(vae):
    fig = plt.figure()
    display = SamplesDisplay.from_estimator(vae, n_samples=4, fig=fig)
    assert display.figure_ is fig
    assert len(images_of(fig)) == 4


def test_samples_need_a_sample_method(tabular):
    with pytest.raises(
        ValueError,
        match=re.escape(
            "PCA has no sample method to draw rows with; pass a fitted "
            "VariationalAutoencoder."
        ),
    ):
        SamplesDisplay.from_estimator(PCA(2).fit(tabular))


@pytest.mark.parametrize(
    "estimator, missing",
    [
        (GaussianMixture(2, random_state=0), "random_state or clip"),
        (KernelDensity(), "clip"),
    ],
)
def test_samples_need_a_sample_method_like_the_vaes(tabular, estimator, missing):
    # Their sample methods failed at the call, with "got an unexpected
    # keyword argument 'random_state'".
    estimator.fit(tabular)
    name = type(estimator).__name__
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{name}.sample takes no {missing}, which the display passes it; pass "
            "a fitted VariationalAutoencoder."
        ),
    ):
        SamplesDisplay.from_estimator(estimator)


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(n_cols=0), "n_cols must be a positive int, got 0."),
        (
            dict(value_range=(1, 0)),
            "value_range must be a pair (low, high) of finite numbers with "
            "low < high, got (1, 0).",
        ),
        (
            dict(value_range=(0, np.inf)),
            "value_range must be a pair (low, high) of finite numbers",
        ),
        # Not numbers: float() failed, naming neither value_range nor a pair.
        (
            dict(value_range=(None, 1)),
            "value_range must be a pair (low, high) of finite numbers with "
            "low < high, got (None, 1).",
        ),
        (
            dict(value_range="ab"),
            "value_range must be a pair (low, high) of finite numbers with "
            "low < high, got 'ab'.",
        ),
        (
            dict(image_shape=(4, 4)),
            "image_shape must be (channels, height, width), got (4, 4); for "
            "single-channel images pass image_shape=(1, 4, 4).",
        ),
        (
            dict(image_shape=(1, 4, 5)),
            "image_shape=(1, 4, 5) implies 20 features, but samples has 16 features.",
        ),
    ],
)
def test_samples_bad_inputs(params, message):
    n_cols = params.pop("n_cols", 8)
    display = SamplesDisplay(np.zeros((3, 16)), **params)
    with pytest.raises(ValueError, match=re.escape(message)):
        display.plot(n_cols=n_cols)


# ----------------------------------------------------------- docstrings


@pytest.mark.parametrize(
    "method", ["__init__", "plot", "from_estimator"], ids=lambda name: name
)
@pytest.mark.parametrize(
    "display",
    [
        DenoisingDisplay,
        LatentSpaceDisplay,
        LossCurveDisplay,
        ReconstructionDisplay,
        SamplesDisplay,
    ],
    ids=lambda display: display.__name__,
)
def test_docstrings_are_filled(display, method):
    # The paragraphs the displays share are written once in skae._plotting
    # and filled in; each parameter is still documented, and only once.
    doc = (display if method == "__init__" else getattr(display, method)).__doc__
    assert "%(" not in doc
    for name in inspect.signature(getattr(display, method)).parameters:
        if name not in ("self", "kwargs"):
            documented = re.findall(rf"^ *(?:\w+, )*{name}(?:, \w+)* : ", doc, re.M)
            assert len(documented) == 1, name
