"""spiketrack.tracking."""
