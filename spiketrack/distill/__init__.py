"""spiketrack.distill: distillation losses (similarity, feature, response, temporal Fourier) and alignment."""
