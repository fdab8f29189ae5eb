"""vidattack: adversarial robustness evaluation for video recognition models.

The public entry points: threat models (:class:`WhiteBox`, :class:`ScoreOracle`, :class:`LabelOracle`,
:class:`QueryBudgetExceeded`), the result type :class:`AttackResult`, the attacks in
:mod:`vidattack.attacks`, metrics in :mod:`vidattack.metrics` and models in :mod:`vidattack.models`.
"""

__version__ = "0.1.0"

from vidattack.result import AttackResult, is_adversarial  # noqa: E402
from vidattack.threat import LabelOracle, QueryBudgetExceeded, ScoreOracle, WhiteBox  # noqa: E402

__all__ = [
    "__version__",
    "AttackResult",
    "is_adversarial",
    "WhiteBox",
    "ScoreOracle",
    "LabelOracle",
    "QueryBudgetExceeded",
]
