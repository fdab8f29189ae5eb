"""Evaluating one attack: the per-video record with its 8-bit and H.264 re-checks
(:mod:`~vidattack.evaluation.record`), the files written for it (:mod:`~vidattack.evaluation.artifacts`)
and gradient diagnostics (:mod:`~vidattack.evaluation.diagnostics`)."""
