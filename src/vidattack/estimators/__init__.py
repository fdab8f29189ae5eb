"""Derivative-free gradient estimators shared by the black-box attacks.

Each estimator takes an ``objective`` that scores a batch of candidate points ``[P, D] -> [P]`` (the
caller turns candidates into videos and asks the oracle once for the whole batch, so queries are
batched and counted by the oracle) and returns an estimate of the gradient ``[D]`` at ``center``.

* :func:`nes_estimate`: natural evolution strategies with antithetic Gaussian samples and rank-based
  fitness (V-BAD Alg. 2, SVA Alg. 2).
* :func:`fd_estimate`: central finite differences on a random subset of coordinates (V-BAD's FD baseline).
* :func:`rgf_estimate`: random gradient-free estimate with Gaussian directions (Opt-attack Eq. 1).
* :func:`signsgd_estimate`, :func:`sign_opt_estimate`: sign-based estimators (SVA's Fig. 9 ablation).
"""

from vidattack.estimators.fd import fd_estimate
from vidattack.estimators.nes import fitness_transform, nes_estimate
from vidattack.estimators.rgf import rgf_estimate
from vidattack.estimators.sign_opt import sign_opt_estimate
from vidattack.estimators.signsgd import signsgd_estimate

__all__ = [
    "nes_estimate",
    "fitness_transform",
    "fd_estimate",
    "rgf_estimate",
    "signsgd_estimate",
    "sign_opt_estimate",
]
