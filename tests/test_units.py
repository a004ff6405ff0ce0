import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from skae._units import ModelUnits


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


def test_read_only_and_negative_stride_input_is_converted():
    X = np.random.RandomState(0).normal(size=(6, 2))
    units = ModelUnits(X, "mse")
    view = X[::-1]
    view.flags.writeable = False
    assert_allclose(units.to_model(view).numpy(), units.to_model(X).numpy()[::-1])
