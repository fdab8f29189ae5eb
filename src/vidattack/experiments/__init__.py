"""Experiments beyond one attack on one video: the universal flicker and sparse perturbations, the
propagation plot (campaigns live in :mod:`vidattack.campaign`)."""
