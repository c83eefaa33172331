import numpy as np
import pytest
import torch
from eventgen import make_events

from spiketrack.data.events import EventArray
from spiketrack.data.representations import count_frame, count_frames, timestep_bins, timestep_index, voxel_grid


def _ev(t, x, y, p) -> EventArray:
    return EventArray.from_arrays(np.array(t), np.array(x), np.array(y), np.array(p))


def test_count_frame_hand_counted() -> None:
    ev = _ev([1, 2, 3, 4, 5], [0, 0, 3, 3, 3], [1, 1, 2, 2, 2], [1, 1, 0, 1, 0])
    c = count_frame(ev, 4, 5)
    assert c.shape == (2, 4, 5) and c.dtype == torch.float32
    assert c[1, 1, 0] == 2 and c[0, 2, 3] == 2 and c[1, 2, 3] == 1 and c.sum() == 5


def test_count_frame_ignores_events_outside_sensor() -> None:
    ev = _ev([1, 2], [0, 9], [0, 0], [1, 1])
    assert count_frame(ev, 2, 5).sum() == 1


def test_count_frames_batched_equals_single() -> None:
    parts = [make_events(300, 16, 12, 1000, seed=s) for s in range(3)]
    batch = count_frames(parts, 12, 16)
    for b, e in enumerate(parts):
        torch.testing.assert_close(batch[b], count_frame(e, 12, 16))


def test_timestep_bins_are_true_temporal_slices() -> None:
    # window (0, 100], T = 4: slices (0,25], (25,50], (50,75], (75,100]
    ev = _ev([1, 25, 26, 50, 51, 99, 100], [0, 1, 2, 3, 4, 5, 6], [0] * 7, [1] * 7)
    np.testing.assert_array_equal(timestep_index(ev.t, 0, 100, 4), [0, 0, 1, 1, 2, 3, 3])
    bins = timestep_bins(ev, 1, 7, 4, 0, 100)
    assert bins.shape == (4, 2, 1, 7)
    assert bins[0, 1, 0, :2].tolist() == [1, 1] and bins[1, 1, 0, 2:4].tolist() == [1, 1]
    assert bins[2, 1, 0, 4] == 1 and bins[3, 1, 0, 5:].tolist() == [1, 1]
    # summing the slices gives the count frame
    torch.testing.assert_close(bins.sum(0), count_frame(ev, 1, 7))


def test_timestep_bins_differ_from_copies() -> None:
    ev = make_events(2000, 8, 8, 1000)
    bins = timestep_bins(ev, 8, 8, 4, 0, 1000)
    assert not torch.equal(bins[0], bins[3])
    assert [int(b.sum()) for b in bins] == [int(np.sum((ev.t > i * 250) & (ev.t <= (i + 1) * 250))) for i in range(4)]


def test_voxel_grid_bilinear_in_time() -> None:
    # bins = 3 over (0, 100]: positions 0, 1, 2 at t = 0, 50, 100
    ev = _ev([25, 50, 100], [0, 1, 2], [0, 0, 0], [1, 0, 1])
    v = voxel_grid(ev, 1, 3, 3, 0, 100)
    assert v[:, 0, 0].tolist() == pytest.approx([0.5, 0.5, 0.0])  # ON at position 0.5
    assert v[:, 0, 1].tolist() == pytest.approx([0.0, -1.0, 0.0])  # OFF at position 1
    assert v[:, 0, 2].tolist() == pytest.approx([0.0, 0.0, 1.0])  # ON at the end
    # the total signed mass is ON - OFF
    assert float(v.sum()) == pytest.approx(1.0)


def test_empty_window() -> None:
    ev = EventArray.empty()
    assert count_frame(ev, 3, 3).sum() == 0
    assert timestep_bins(ev, 3, 3, 2, 0, 10).shape == (2, 2, 3, 3)
    assert voxel_grid(ev, 3, 3, 4, 0, 10).abs().sum() == 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_gpu_matches_cpu() -> None:
    ev = make_events(5000, 32, 24, 1000)
    for fn, args in [(count_frame, ()), (timestep_bins, (4, 0, 1000)), (voxel_grid, (5, 0, 1000))]:
        cpu = fn(ev, 24, 32, *args)
        gpu = fn(ev, 24, 32, *args, device="cuda")
        torch.testing.assert_close(gpu.cpu(), cpu)
