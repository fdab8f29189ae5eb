"""``python -m vidattack.cli``: the same as the ``vidattack`` console script."""

from vidattack.cli import main

main()
