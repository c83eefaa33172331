"""spiketrack.models.spiking."""
