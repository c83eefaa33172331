"""spiketrack.distill: distillation losses from a frozen teacher (docs/training.md, "Distillation options").

:class:`~spiketrack.distill.losses.DistillLoss` combines the enabled terms: similarity, feature, response, temporal
Fourier (:mod:`.fourier`), HAD temporal alignment (:mod:`.temporal`) and correlation KD; :mod:`.align` maps the two
models' token grids onto each other and owns the feature projections, :mod:`.ot` the optimal-transport alignment,
:mod:`.pairing` which teacher layer each student layer is compared with.
"""
