"""spiketrack.energy."""
