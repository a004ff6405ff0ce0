import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

requires_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device"
)


@pytest.fixture
def curved():
    """Rows near a curved 1-D manifold in 6-D, where PCA needs 2+ components."""
    rng = np.random.RandomState(0)
    t = rng.uniform(-2, 2, size=400)
    basis = np.linalg.qr(rng.normal(size=(6, 3)))[0].T
    X = np.c_[t, t**2, np.sin(2 * t)] @ basis
    return X + 0.01 * rng.normal(size=X.shape)


@pytest.fixture
def digits():
    from sklearn.datasets import load_digits

    return load_digits(return_X_y=True)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Run torch and BLAS on one thread for the tests' tiny problems.

    Threads only add overhead at these sizes, and on a busy machine they spin
    waiting for each other, making the suite many times slower.
    """
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(n_threads)
