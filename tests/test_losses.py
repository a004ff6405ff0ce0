import pytest
import torch
from numpy.testing import assert_allclose

from skae._losses import RowMeanLoss
from skae._threads import restored_threads


@pytest.mark.parametrize(
    "elementwise", [torch.nn.MSELoss, torch.nn.BCEWithLogitsLoss], ids=["mse", "bce"]
)
def test_the_loss_is_the_mean_and_the_same_on_any_thread_count(elementwise):
    # A batch of 256 Fashion-MNIST rows: 200,704 entries, which PyTorch's
    # mean of the whole batch sums in one part per thread.
    generator = torch.Generator().manual_seed(0)
    output = torch.randn(256, 784, generator=generator)
    target = torch.rand(256, 784, generator=generator)
    loss = RowMeanLoss(elementwise())
    values = []
    with restored_threads():
        for n_threads in (1, 2, 3):
            torch.set_num_threads(n_threads)
            values.append(loss(output, target))
    assert all(torch.equal(value, values[0]) for value in values)
    expected = elementwise()(output.double(), target.double()).item()
    assert_allclose(values[0].item(), expected, rtol=1e-6)
    assert_allclose(
        loss.rows(output, target).numpy(),
        elementwise(reduction="none")(output, target).mean(dim=1).numpy(),
    )


@pytest.mark.parametrize(
    "elementwise, output, target",
    [
        # A single 1-D row, and a loss that is not elementwise: both raised
        # torch's "Dimension out of range" IndexError.
        (torch.nn.MSELoss(), torch.zeros(4), torch.ones(4)),
        (
            torch.nn.CrossEntropyLoss(),
            torch.zeros(3, 4),
            torch.zeros(3, dtype=torch.long),
        ),
    ],
    ids=["one_row", "not_elementwise"],
)
def test_losses_that_are_not_of_rows_are_named(elementwise, output, target):
    loss = RowMeanLoss(elementwise)
    with pytest.raises(
        ValueError,
        match=r"^RowMeanLoss averages elementwise losses of rows, shape \(n, "
        r"n_features\), but .*Loss\(\) gave losses of shape \((4|3),\)\.",
    ):
        loss(output, target)
