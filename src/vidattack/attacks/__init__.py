"""Attacks, one module per paper; each registers itself in :mod:`vidattack.attacks.registry`."""

from vidattack.attacks.pgd import adversarial_loss, pgd

__all__ = ["pgd", "adversarial_loss"]
