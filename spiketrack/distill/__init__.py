"""spiketrack.distill: distillation terms (:mod:`~spiketrack.distill.terms`, one class per ``distill.<term>``
section), their loss functions (similarity, feature, response, temporal Fourier, HAD temporal) and alignment."""
