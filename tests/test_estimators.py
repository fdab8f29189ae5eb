import pytest
import torch

from vidattack.estimators import fd_estimate, fitness_transform, nes_estimate, rgf_estimate


def quadratic(weights):
    """f(x) = w . x - 0.5 |x|^2 over a batch [P, D], gradient at x: w - x."""
    return lambda batch: batch @ weights - 0.5 * (batch**2).sum(dim=1)


def cosine(a, b):
    return float(torch.nn.functional.cosine_similarity(a, b, dim=0))


@pytest.mark.parametrize("fitness", ["rank", "value"])
def test_nes_points_along_the_true_gradient(fitness):
    weights = torch.linspace(-1, 1, 10)
    center = torch.zeros(10)
    calls = []

    def objective(batch):
        calls.append(batch.shape[0])
        return quadratic(weights)(batch)

    estimate = nes_estimate(objective, center, population=400, sigma=1e-2, fitness=fitness,
                            generator=torch.Generator().manual_seed(0))
    assert calls == [400]  # one batched evaluation
    assert cosine(estimate, weights) > 0.9


def test_nes_value_fitness_is_unbiased_in_scale_and_deterministic():
    weights = torch.tensor([2.0, -1.0, 0.5])
    runs = [nes_estimate(quadratic(weights), torch.zeros(3), population=4000, sigma=1e-3, fitness="value",
                         generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])
    assert torch.allclose(runs[0], weights, atol=0.15)


def test_fitness_rank_handles_ties_and_range():
    values = torch.tensor([0.3, 0.1, 0.3, 0.9])
    assert fitness_transform(values).tolist() == pytest.approx([0.5, 0.0, 0.5, 1.0])
    assert fitness_transform(values, "centered-rank").tolist() == pytest.approx([0.0, -0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="fitness"):
        fitness_transform(values, "bogus")


def test_fd_is_exact_on_chosen_coordinates_for_a_quadratic():
    weights = torch.linspace(-1, 1, 6)
    center = torch.full((6,), 0.2)
    estimate = fd_estimate(quadratic(weights), center, queries=12, step=1e-2)
    assert torch.allclose(estimate, weights - center, atol=1e-4)
    partial = fd_estimate(quadratic(weights), center, queries=4, generator=torch.Generator().manual_seed(0))
    assert int((partial != 0).sum()) == 2


def test_rgf_points_along_the_gradient():
    weights = torch.linspace(-1, 1, 8)
    center = torch.zeros(8)
    value = float(quadratic(weights)(center.reshape(1, -1)))
    estimate = rgf_estimate(quadratic(weights), center, value, samples=500, beta=1e-3,
                            generator=torch.Generator().manual_seed(1))
    assert cosine(estimate, weights) > 0.9


def test_estimators_reject_bad_arguments():
    with pytest.raises(ValueError, match="population"):
        nes_estimate(quadratic(torch.ones(2)), torch.zeros(2), population=3)
    with pytest.raises(ValueError, match="sigma"):
        nes_estimate(quadratic(torch.ones(2)), torch.zeros(2), sigma=0)
    with pytest.raises(ValueError, match="one value per candidate"):
        nes_estimate(lambda b: torch.zeros(1), torch.zeros(2), population=4)
    with pytest.raises(ValueError, match="beta"):
        rgf_estimate(quadratic(torch.ones(2)), torch.zeros(2), 0.0, beta=0)
