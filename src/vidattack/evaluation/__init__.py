"""Evaluations built on attacks and campaigns: the one-command robustness evaluation of a model
(:mod:`~vidattack.evaluation.robustness`, its suites and report), the files written for one attacked
video (:mod:`~vidattack.evaluation.artifacts`) and gradient diagnostics
(:mod:`~vidattack.evaluation.diagnostics`). The per-video record every run produces lives below, in
:mod:`vidattack.methods.record`, since campaigns write it too."""
