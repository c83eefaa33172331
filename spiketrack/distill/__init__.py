"""spiketrack.distill."""
