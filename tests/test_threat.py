import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vidattack import LabelOracle, QueryBudgetExceeded, ScoreOracle, WhiteBox


class Linear(torch.nn.Module):
    """Logits are linear in the mean of the video; records how many videos it saw."""

    def __init__(self, classes: int = 5) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.linspace(-1, 1, classes))
        self.seen = 0

    def forward(self, x):
        self.seen += x.shape[0]
        return x.flatten(1).mean(1, keepdim=True) * self.weight * 10 + torch.arange(5.0) * 0.01


def videos(n):
    return torch.rand(n, 2, 3, 4, 4, generator=torch.Generator().manual_seed(n))


@settings(max_examples=60, deadline=None)
@given(
    budget=st.integers(0, 40),
    batch_size=st.integers(1, 9),
    calls=st.lists(st.integers(1, 12), min_size=1, max_size=12),
)
def test_budget_is_never_exceeded(budget, batch_size, calls):
    model = Linear()
    oracle = ScoreOracle(model, budget=budget, batch_size=batch_size)
    for size in calls:
        before = oracle.queries
        try:
            oracle.query(videos(size))
        except QueryBudgetExceeded as error:
            assert before + size > budget
            assert oracle.queries == before  # a refused call costs nothing ...
            assert error.used == before and error.requested == size
        else:
            assert oracle.queries == before + size
        assert oracle.queries <= budget
        assert model.seen == oracle.queries  # ... and the model never ran for it


def test_batches_internally():
    calls = []

    def model(x):
        calls.append(x.shape[0])
        return torch.zeros(x.shape[0], 3)

    LabelOracle(model, batch_size=4).query(videos(10))
    assert calls == [4, 4, 2]


def test_score_oracle_reveals_only_detached_top_k():
    oracle = ScoreOracle(Linear(), top_k=2)
    x = videos(3).requires_grad_(True)
    answer = oracle.query(x)
    assert answer.labels.shape == (3, 2) and answer.probs.shape == (3, 2)
    assert not answer.probs.requires_grad and answer.probs.grad_fn is None
    assert (answer.probs[:, 0] >= answer.probs[:, 1]).all()
    assert set(answer._fields) == {"labels", "probs"}
    answer.probs.add_(1)  # ordinary tensors, not inference tensors
    full = torch.softmax(Linear()(videos(3)), 1)
    assert torch.allclose(full.topk(2, 1).values + 1, answer.probs)


def test_prob_of_returns_zero_outside_top_k():
    oracle = ScoreOracle(Linear(), top_k=1)
    x = videos(2)
    top = oracle.query(x).labels[:, 0]
    assert (oracle.prob_of(x, top) > 0).all()
    assert (oracle.prob_of(x, (top + 1) % 5) == 0).all()


def test_label_oracle_and_per_owner_budget():
    oracle = LabelOracle(Linear(), budget=5)
    labels = oracle.query(videos(3), owner=torch.tensor([0, 1, 1]))
    assert labels.shape == (3,) and labels.dtype == torch.long
    assert oracle.used(0) == 1 and oracle.used(1) == 2 and oracle.queries == 3
    oracle.query(videos(4), owner=0)
    assert oracle.remaining(0) == 0 and oracle.remaining(1) == 3
    with pytest.raises(QueryBudgetExceeded, match="video 0"):
        oracle.query(videos(1), owner=0)
    oracle.query(videos(3), owner=1)
    assert oracle.queries == 10


def test_oracle_rejects_bad_input():
    oracle = ScoreOracle(Linear())
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        oracle.query(videos(1) + 2)
    with pytest.raises(ValueError, match="rank 5"):
        oracle.query(torch.rand(2, 3, 4, 4))
    assert oracle.queries == 0
    with pytest.raises(ValueError, match="budget"):
        ScoreOracle(Linear(), budget=-1)
    with pytest.raises(ValueError, match="top_k"):
        ScoreOracle(Linear(), top_k=0)
    with pytest.raises(ValueError, match="logits"):
        LabelOracle(lambda x: torch.zeros(3)).query(videos(2))


def test_white_box_gradient():
    box = WhiteBox(Linear())
    x = videos(2)
    loss, grad = box.gradient(x, lambda logits: logits[:, 0])
    assert loss.shape == (2,) and grad.shape == x.shape
    assert torch.allclose(grad, torch.full_like(grad, -10 / x[0].numel()))
    assert box.forward_calls == 2
