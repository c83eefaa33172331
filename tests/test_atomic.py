"""Atomic text writes: whole content under the final name, no temporary file left, old file replaced."""

from __future__ import annotations

from pathlib import Path

from spiketrack.atomic import atomic_write_text


def test_atomic_write_text_replaces_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    assert atomic_write_text(path, "first\n") == path
    atomic_write_text(path, "second\nline\n")
    assert path.read_text() == "second\nline\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


# ------------------------------------------------------------------------------------------------ full disk
# A write that fails on a full disk raises OSError(ENOSPC) naming no file (the write, flush or close of an open
# file object). Every writer must turn it into one line naming the file it was writing and leave no temporary
# file (issue 31); the writers are simulated on a full disk by replacing Path.write_text / write_bytes /
# Figure.savefig with ones that write part of the data and then fail.
import errno  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def _full(self, data, *a, **k):  # noqa: ANN001, ANN002, ANN003
    with open(self, "wb") as fh:
        fh.write(b"partial")
    raise OSError(errno.ENOSPC, "No space left on device")


def _full_savefig(self, path, *a, **k):  # noqa: ANN001, ANN002, ANN003
    Path(path).write_bytes(b"\x89PNG partial")
    raise OSError(errno.ENOSPC, "No space left on device")


def _results(folder: Path) -> Path:
    from spiketrack.tracking.runner import write_results

    write_results(folder, "seq", np.ones((3, 4)), np.ones(3))
    return folder / "seq_time.txt"  # the first file written


def _config(folder: Path) -> Path:
    from spiketrack.config import dump_config, load_config

    dump_config(load_config(None), folder / "config.yaml")
    return folder / "config.yaml"


def _split(folder: Path) -> Path:
    from spiketrack.data.dataset import write_split

    write_split(folder, "test", ["a", "b"])
    return folder / "test.txt"


def _report(folder: Path) -> Path:
    from spiketrack.energy.report import write_report

    write_report({"runs": [], "notes": [], "published_reference": []}, folder / "rep")
    return folder / "rep" / "report.json"


def _sequence(folder: Path) -> Path:
    from spiketrack.data.events import EventArray
    from spiketrack.data.h5seq import write_sequence

    ev = EventArray.from_arrays(np.arange(1, 11), np.arange(10), np.arange(10), np.arange(10) % 2)
    write_sequence(folder / "s.h5", name="s", width=32, height=32, events=ev, frame_times=[5, 10],
                   boxes=[[1, 1, 4, 4], [2, 2, 4, 4]], absent=[0, 0])
    return folder / "s.h5"


def _plot(folder: Path) -> Path:
    from spiketrack.evaluation.evaluate import EvaluationResult
    from spiketrack.evaluation.plots import plot_curve
    from spiketrack.evaluation.protocols import get_protocol

    result = EvaluationResult(get_protocol("eventvot"), "ds", None, [], {})
    plot_curve(result, "success", folder / "success.png")
    return folder / "success.png"


@pytest.mark.filterwarnings("ignore:No artists with labels")  # the plot of an empty evaluation has no curves
@pytest.mark.parametrize("writer, patch", [(_results, "write_text"), (_config, "write_text"), (_split, "write_text"),
                                           (_report, "write_text"), (_sequence, "write_bytes"), (_plot, "savefig")])
def test_full_disk_is_one_line_naming_the_file_and_no_temporary_file(tmp_path, monkeypatch, writer, patch) -> None:
    from spiketrack.errors import OutputError, environment_error_message

    if patch == "savefig":
        from matplotlib.figure import Figure

        monkeypatch.setattr(Figure, "savefig", _full_savefig)
    else:
        monkeypatch.setattr(Path, patch, _full)
    with pytest.raises((OSError, OutputError)) as info:
        writer(tmp_path)
    monkeypatch.undo()
    err = info.value
    message = str(err) if isinstance(err, OutputError) else environment_error_message(err)
    assert message is not None and "no space left on the device" in message, message
    assert "<unknown file>" not in message and "\n" not in message
    names = [p.name for p in tmp_path.rglob("*") if p.is_file()]
    assert not [n for n in names if ".tmp-" in n] and not [n for n in names if n.endswith((".txt", ".json", ".yaml",
                                                                                              ".h5", ".png"))], names
    target = {"_results": "seq_time.txt", "_config": "config.yaml", "_split": "test.txt", "_report": "report.json",
              "_sequence": "s.h5", "_plot": "success.png"}[writer.__name__]
    assert target in message, message
