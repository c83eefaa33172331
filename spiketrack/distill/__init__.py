"""spiketrack.distill: distillation from a frozen teacher (docs/training.md, "Distillation options").

:mod:`.terms` holds one class per ``distill.<term>`` section (similarity, feature, response, temporal Fourier,
HAD temporal alignment, correlation KD) in one table, :data:`~spiketrack.distill.terms.KD_TERMS`;
:class:`~spiketrack.distill.terms.DistillLoss` adds up the enabled ones. :mod:`.losses` holds the loss functions,
:mod:`.fourier` and :mod:`.temporal` the temporal terms, :mod:`.align` maps the two models' token grids onto each other
and owns the feature projections, :mod:`.ot` the optimal-transport alignment, :mod:`.pairing` which teacher layer
each student layer is compared with.
"""
