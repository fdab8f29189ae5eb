"""Attacks: one paper's algorithm per module, pure functions over threat models (see the README's
architecture). The methods layer (:mod:`vidattack.methods`) runs them by name."""

from vidattack.attacks.pgd import adversarial_loss, pgd

__all__ = ["pgd", "adversarial_loss"]
