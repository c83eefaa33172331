"""Event data: everything before a model sees a tensor (docs/data.md; the file format in docs/architecture.md,
"Sequence files").

- Event streams and sequence files: :mod:`.events` (``EventArray``, four parallel numpy arrays), :mod:`.h5seq`
  (native HDF5 sequence files: write, read a frame window, validate), :mod:`.sequence` (the ``Sequence`` interface
  every reader provides), :mod:`.dataset` (a folder of sequence files plus split lists).
- Public datasets: :mod:`.readers` (EventVOT, FE108, VisEvent, COESOT, FELT read in place or converted; AEDAT 4 and
  Prophesee event files).
- Simulation: :mod:`.esim` (the ESIM event simulator), :mod:`.esim_calibration` (its contrast threshold fitted on a
  real DAVIS346 recording), :mod:`.synth` with :mod:`.synth_render`, :mod:`.synth_multi`, :mod:`.synth_attributes`
  and :mod:`.textures` (the synthetic benchmark).
- Model inputs: :mod:`.representations` (count frames ``[2, H, W]``, voxel grids ``[B, H, W]``, timestep bins
  ``[T, 2, H, W]``), :mod:`.crop` (square crops around a box), :mod:`.inputs` (the one place where a crop becomes a
  model input, shared by training and tracking).
- :mod:`.command`: ``spiketrack data synth | convert | info | validate``.

This package imports nothing from the rest of spiketrack but the shared top-level helpers (errors, atomic writes,
output checks, worker processes); every other layer builds on it.
"""
