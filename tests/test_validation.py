import numpy as np
import pandas as pd
import pytest
import torch
from conftest import requires_cuda
from numpy.testing import assert_array_equal

from skae import AutoencoderTransformer
from skae._validation import resolve_device, seeded_torch, torch_seed, wrap_like_input


@pytest.mark.parametrize("device", ["cpu", "cpu:0"])
def test_resolve_cpu(device):
    assert resolve_device(device).type == "cpu"


def test_resolve_auto_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


@requires_cuda
@pytest.mark.cuda
def test_resolve_auto_with_cuda():
    assert resolve_device("auto").type == "cuda"


@pytest.mark.parametrize("device", ["nonsense", "cuda:abc", "", "gpu"])
def test_resolve_rejects_unknown_devices(device):
    with pytest.raises(
        ValueError,
        match=rf"device='{device}' is not a torch device; use 'auto', 'cpu', "
        r"'cuda' or 'cuda:<index>'\.",
    ):
        resolve_device(device)


@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_resolve_cuda_without_cuda(monkeypatch, device):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        ValueError,
        match=rf"device='{device}' asks for CUDA, but torch sees no CUDA device; "
        r"use device='auto' or 'cpu'\.",
    ):
        resolve_device(device)


def test_resolve_missing_cuda_index(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(
        ValueError,
        match=r"device='cuda:3', but only 1 CUDA device\(s\) are visible\.",
    ):
        resolve_device("cuda:3")


def test_seeded_torch_is_reproducible_and_restores_global_state():
    state = torch.get_rng_state()
    with seeded_torch(7):
        first = torch.rand(5)
    assert torch.equal(torch.get_rng_state(), state)
    with seeded_torch(7):
        second = torch.rand(5)
    with seeded_torch(8):
        other = torch.rand(5)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    assert torch.equal(torch.get_rng_state(), state)


def test_seeded_torch_restores_state_after_an_error():
    state = torch.get_rng_state()
    with pytest.raises(RuntimeError, match="boom"), seeded_torch(0):
        torch.rand(3)
        raise RuntimeError("boom")
    assert torch.equal(torch.get_rng_state(), state)


def test_torch_seed_draws_from_the_random_state():
    seeds = [torch_seed(np.random.RandomState(0)) for _ in range(2)]
    assert seeds[0] == seeds[1]
    assert isinstance(seeds[0], int)
    assert 0 <= seeds[0] < np.iinfo(np.int32).max
    rng = np.random.RandomState(0)
    assert torch_seed(rng) != torch_seed(rng)


@pytest.fixture
def estimator():
    # set_output needs no fit: the container is a configuration.
    return AutoencoderTransformer()


def test_wrap_like_input_without_pandas_output(estimator):
    data = np.zeros((2, 3))
    assert wrap_like_input(estimator, data, data, ["a", "b", "c"]) is data


def test_wrap_like_input_without_names(estimator):
    estimator.set_output(transform="pandas")
    data = np.zeros((2, 3))
    assert wrap_like_input(estimator, data, data, None) is data


def test_wrap_like_input_with_pandas_output(estimator):
    estimator.set_output(transform="pandas")
    data = np.arange(6.0).reshape(2, 3)
    original = pd.DataFrame(np.zeros((2, 1)), index=[10, 11])
    wrapped = wrap_like_input(estimator, data, original, ["a", "b", "c"])
    assert isinstance(wrapped, pd.DataFrame)
    assert list(wrapped.columns) == ["a", "b", "c"]
    assert list(wrapped.index) == [10, 11]
    assert_array_equal(wrapped.to_numpy(), data)
