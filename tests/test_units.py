import pickle
import re
import warnings

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose
from sklearn.decomposition import PCA

from skae._units import _INPUT_TAIL, ModelUnits, check_square_range, input_axes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mse_units_centre_and_scale_and_come_back(dtype):
    X = np.random.RandomState(0).normal(3.0, 2.0, size=(50, 4)).astype(dtype)
    units = ModelUnits(X, "mse")
    rows = units.to_model(X)
    assert rows.dtype == torch.float32
    assert_allclose(rows.mean(dim=0).numpy(), 0, atol=1e-5)
    assert float(rows.square().mean()) == pytest.approx(1.0, rel=1e-5)
    back = units.from_model(rows.numpy(), dtype)
    assert back.dtype == dtype
    assert_allclose(back, X, rtol=1e-5, atol=1e-5)


def test_constant_rows_keep_a_unit_scale():
    units = ModelUnits(np.full((5, 3), 2.0), "mse")
    assert units.scale == 1.0
    assert_allclose(units.to_model(np.full((1, 3), 3.0)).numpy(), 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rows_all_alike_keep_a_unit_scale_despite_rounding(dtype):
    # 0.1 has no exact binary form: the mean of 100 copies misses it by
    # rounding, which must not become a scale of 1e-16.
    units = ModelUnits(np.full((100, 4), 0.1, dtype=dtype), "mse")
    assert units.scale == 1.0
    moved = np.array([[0.1, 0.1, 0.1, 0.2]], dtype=dtype)
    assert_allclose(units.to_model(moved).numpy(), [[0, 0, 0, 0.1]], atol=1e-6)


def test_bce_units_are_the_data_and_outputs_are_logits():
    X = np.random.RandomState(0).uniform(size=(10, 3))
    units = ModelUnits(X, "bce")
    assert_allclose(units.to_model(X).numpy(), X, rtol=1e-6)
    assert_allclose(units.from_model(np.zeros((2, 3)), np.float64), 0.5)
    batch = torch.full((1, 3), 0.75)
    assert_allclose(units.residuals(batch, torch.zeros(1, 3)).numpy(), 0.25)


def test_residuals_are_in_data_units():
    X = np.random.RandomState(0).normal(0.0, 5.0, size=(100, 2))
    units = ModelUnits(X, "mse")
    batch = units.to_model(X[:3])
    out = units.to_model(X[:3] - 1.0)
    assert_allclose(units.residuals(batch, out).numpy(), 1.0, rtol=1e-5)


@pytest.mark.parametrize("factor", [1e40, 1e-40])
def test_residuals_of_data_beyond_float32_range_are_in_float64(factor):
    # float64 data in units far from 1 (luminosities of 1e40 erg/s): a
    # float32 residual times their scale overflowed to inf, or vanished, and
    # the explained variance of the fit was NaN, or 1 for any network.
    X = np.random.RandomState(0).normal(0.0, 5.0, size=(100, 2)) * factor
    units = ModelUnits(X, "mse")
    batch = units.to_model(X[:3])
    out = units.to_model(X[:3] - factor)
    residuals = units.residuals(batch, out)
    assert residuals.dtype == torch.float64
    assert_allclose(residuals.numpy(), factor, rtol=1e-5)


def test_read_only_and_negative_stride_input_is_converted():
    X = np.random.RandomState(0).normal(size=(6, 2))
    units = ModelUnits(X, "mse")
    view = X[::-1]
    view.flags.writeable = False
    assert_allclose(units.to_model(view).numpy(), units.to_model(X).numpy()[::-1])


def decaying(n_samples=400, n_features=12, seed=0):
    """Rotated Gaussian rows whose variances fall by half from one axis to the next."""
    rng = np.random.RandomState(seed)
    scales = 2.0 ** -np.arange(n_features)
    rotation = np.linalg.qr(rng.normal(size=(n_features, n_features)))[0]
    return (rng.normal(size=(n_samples, n_features)) * scales) @ rotation


def test_int_input_axes_are_pca_axes():
    X = decaying()
    axes = input_axes(X, 4, 2, auto=False)
    assert axes.shape == (4, 12)
    assert_allclose(axes @ axes.T, np.eye(4), atol=1e-12)
    assert_allclose(np.abs(axes), np.abs(PCA(4).fit(X).components_), atol=1e-8)


@pytest.mark.parametrize("factor", [1e-30, 1e-20, 1e20])
@pytest.mark.parametrize("n_components", [4, "auto"])
def test_input_axes_of_float32_rows_far_from_unit_scale(factor, n_components):
    # PCA in float32 overflowed at 1e20 (LinAlgError) and gave axes at
    # random at 1e-30, whose squares fall below float32's normal range.
    X = decaying(n_features=24)
    expected = input_axes(X, n_components, 2, auto=True)
    axes = input_axes((X * factor).astype(np.float32), n_components, 2, auto=True)
    assert axes.shape == expected.shape
    # The same span: projectors agree.
    assert_allclose(axes.T @ axes, expected.T @ expected, atol=1e-5)


@pytest.mark.parametrize("n_components", [4, "auto"])
def test_input_axes_of_float32_rows_far_from_the_origin(n_components):
    # PCA's covariance solver squares the rows uncentred: in float32, an
    # offset of 1e3 on rows of unit spread cancelled the covariance to
    # rounding (projectors 0.7 apart).
    X = decaying(n_features=24)
    expected = input_axes(X, n_components, 2, auto=True)
    axes = input_axes((X + 1e3).astype(np.float32), n_components, 2, auto=True)
    assert axes.shape == expected.shape
    assert_allclose(axes.T @ axes, expected.T @ expected, atol=1e-4)


def test_auto_input_axes_leave_a_fraction_of_pca_residual_outside():
    X = decaying(n_features=24)
    variances = PCA().fit(X).explained_variance_
    outside = np.append(np.cumsum(variances[::-1])[::-1], 0.0)
    axes = input_axes(X, "auto", 2, auto=True)
    n_axes = len(axes)
    assert outside[n_axes] <= _INPUT_TAIL * outside[2] < outside[n_axes - 1]
    # auto=False (the estimator's regime does not apply) and None: no axes.
    assert input_axes(X, "auto", 2, auto=False) is None
    assert input_axes(X, None, 2, auto=True) is None


def test_auto_input_axes_are_none_when_more_than_half_the_features():
    # Equal variances: the rule needs nearly every axis.
    X = np.random.RandomState(0).normal(size=(500, 10))
    assert input_axes(X, "auto", 2, auto=True) is None


def test_auto_input_axes_are_at_least_the_code_width():
    # Rank 3: no variance outside 3 axes, but the code has 5 units.
    X = np.random.RandomState(0).normal(size=(300, 3)) @ np.random.RandomState(
        1
    ).normal(size=(3, 20))
    assert len(input_axes(X, "auto", 5, auto=True)) == 5


@pytest.mark.parametrize(
    "n_axes, n_components, message",
    [
        (13, 2, "must not exceed n_samples=400 nor n_features=12"),
        (1, 2, "must be >= the code's width, n_components_=2"),
    ],
)
def test_input_axes_reject_bad_counts(n_axes, n_components, message):
    with pytest.raises(ValueError, match=message):
        input_axes(decaying(), n_axes, n_components, auto=False)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_units_with_axes_project_and_map_back_in_their_span(dtype):
    X = decaying().astype(dtype) * 3.0 + 1.0
    axes = input_axes(X, 4, 2, auto=False)
    units = ModelUnits(X, "mse", axes)
    rows = units.to_model(X)
    assert rows.shape == (len(X), 4) and rows.dtype == torch.float32
    # Scaled to a unit root mean square along the axes, as without them.
    assert float(rows.square().mean()) == pytest.approx(1.0, rel=1e-5)
    back = units.from_model(rows.numpy(), dtype)
    assert back.dtype == dtype
    projected = (X - X.mean(axis=0)) @ axes.T @ axes + X.mean(axis=0)
    assert_allclose(back, projected, rtol=1e-4, atol=1e-4)
    # Along the axes plus outside them: the whole squared norm of each row.
    along = np.sum(units.residuals(rows, torch.zeros_like(rows)).numpy() ** 2, axis=1)
    assert_allclose(
        along + units.outside(X),
        np.sum((X - units.offset) ** 2, axis=1),
        rtol=1e-4,
    )
    assert_allclose(ModelUnits(X, "mse").outside(X), 0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_axes_are_converted_once_and_not_pickled(dtype):
    X = np.random.RandomState(0).normal(size=(40, 6))
    units = ModelUnits(X, "mse", PCA(3).fit(X).components_)
    rows = units.to_rows(X).to(dtype)
    coordinates = units.project(rows)
    assert_allclose(coordinates.numpy(), rows.double().numpy() @ units.axes.T, 1e-5)
    assert_allclose(
        units.unproject(coordinates).numpy(),
        coordinates.double().numpy() @ units.axes,
        1e-5,
    )
    converted = units._axes_tensors[dtype, torch.device("cpu")]
    assert units._axes_like(rows) is converted
    loaded = pickle.loads(pickle.dumps(units))
    assert "_axes_tensors" not in vars(loaded)
    assert torch.equal(loaded.project(rows), coordinates)


def test_read_only_offset_and_axes_convert_without_warning(tmp_path):
    # joblib.load(..., mmap_mode='r') gives a fitted model read-only arrays,
    # on which torch.from_numpy warns that writing would be undefined.
    X = np.random.RandomState(0).normal(size=(40, 6))
    units = ModelUnits(X, "mse", PCA(3).fit(X).components_)
    expected = units.to_model(X)
    joblib.dump(units, tmp_path / "units.joblib")
    loaded = joblib.load(tmp_path / "units.joblib", mmap_mode="r")
    assert not loaded.offset.flags.writeable and not loaded.axes.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(loaded.to_model(X), expected)
        rows = loaded.to_rows(X).double()
        assert_allclose(loaded.project(rows).numpy(), rows.numpy() @ units.axes.T)


@pytest.mark.parametrize(
    "dtype, factor, bound, why",
    [
        (
            np.float32,
            1e-39,
            "1.2e-38",
            "float32's smallest normal number, below which the CPU flushes "
            "numbers to zero",
        ),
        (np.float64, 1e-170, "1.5e-154", "below which float64 squares vanish"),
    ],
)
def test_rows_varying_below_the_normal_range_are_refused(dtype, factor, bound, why):
    # float32 rows of 1e-39 read as zeros where inference flushes denormals:
    # fit raised that X held values "beyond float32's range". float64 rows
    # of 1e-170 have squares of 0: the scale was 1, the network saw zeros,
    # and every row got the same code.
    X = (np.random.RandomState(0).normal(size=(20, 3)) * factor).astype(dtype)
    message = (
        f"X varies about its mean by less than {bound}, {why}; rescale X "
        "(e.g. with a StandardScaler)."
    )
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        ModelUnits(X, "mse")


def test_rows_beyond_float32_once_scaled_name_the_scale():
    # Rows of 1e30 are within float32's range; divided by training rows'
    # scale of 1e-20 they are not. The message said X held values beyond
    # float32's range, which X did not.
    X = np.random.RandomState(0).normal(size=(20, 3)) * 1e-20
    units = ModelUnits(X, "mse")
    far = np.full((1, 3), 1e30)
    message = (
        f"X, centred and divided by its training rows' scale ({units.scale:.3g}), "
        "holds values beyond float32's range"
    )
    for convert in (units.to_model, units.to_rows):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
            convert(far)


@pytest.mark.parametrize("dtype, factor", [(np.float32, 1e-37), (np.float64, 1e-150)])
def test_rows_varying_just_above_the_normal_range_are_scaled(dtype, factor):
    X = (np.random.RandomState(0).normal(size=(20, 3)) * factor).astype(dtype)
    rows = ModelUnits(X, "mse").to_model(X)
    assert float(rows.square().mean()) == pytest.approx(1.0, rel=1e-4)


def test_check_square_range_sums_the_squares_where_the_span_is_large():
    # A span of 2.5e153 over 100 values fails the quick bound, but the sum
    # of squares, about 2.5e307, fits.
    check_square_range(np.random.RandomState(0).normal(size=(20, 5)) * 5e152)
    with pytest.raises(ValueError, match=r"^X deviates from its mean"):
        check_square_range(np.random.RandomState(0).normal(size=(20, 5)) * 1e154)


# ------------------------------------------------------- unusual but legitimate data


@pytest.mark.parametrize("input_components", [2, "auto"])
def test_input_axes_of_rows_all_alike_raise_no_warning(input_components):
    # Rows all alike have a total variance of 0, which PCA divides by for
    # its explained_variance_ratio_ (which the axes never read): NumPy's
    # "invalid value encountered in divide" leaked from inside scikit-learn.
    X = np.full((20, 6), 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        axes = input_axes(X, input_components, 1, auto=True)
    assert axes.shape == (1 if input_components == "auto" else 2, 6)
    assert np.isfinite(axes).all()


def test_rows_beyond_float32_come_back_from_model_units():
    # float64 rows of 1e39: the network's float32 outputs times the scale
    # were computed in float32, whose range (3.4e38) they leave: the
    # reconstruction was inf, with an overflow RuntimeWarning.
    X = np.random.RandomState(0).normal(size=(20, 3)) * 1e39
    units = ModelUnits(X, "mse")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = units.from_model(units.to_model(X).numpy(), np.float64)
    assert_allclose(back, X, rtol=1e-5)
