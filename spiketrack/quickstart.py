"""`spiketrack quickstart`: the whole pipeline on the embedded synthetic benchmark, on a CPU, in minutes.

Stages (each resumable: a finished stage leaves ``<work>/<stage>.done`` and is skipped on the next run;
an interrupted stage continues where it stopped — data files and tracked sequences already written are
kept, training resumes from its newest checkpoint). A stage that is redone — every stage with ``--force``,
and every stage after one that ran again — first deletes its outputs in the work folder, so it starts
from scratch instead of resuming from what the earlier run left:

1. ``data``     synthetic benchmark (simulated events, exact boxes)      -> ``<work>/synth``
2. ``teacher``  ANN ViT teacher on RGB + events                           -> ``<work>/teacher``
3. ``student``  spiking conv Siamese student distilled from the teacher   -> ``<work>/student``
4. ``track``    teacher, student, event-density and NCC baselines         -> ``<work>/results/<tracker>``
5. ``probe``    template-dependence probe of teacher, student and NCC     -> ``<work>/probe/<tracker>``
               (zeroed and foreign templates; foreign needs >= 2 test sequences)
6. ``report``   SR/PR/NPR (EventVOT protocol) + energy per sequence       -> ``energy_reports/quickstart``
               + the probe's SR drops

Each stage prints the ordinary command that does the same, so a user learns them as the demo runs. The
printed line and the run come from one argument list (:class:`StageCommand`): the stage parses it with the
``spiketrack`` parser and calls the command's library function with the parsed arguments.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spiketrack.atomic import atomic_write_text
from spiketrack.config import ExperimentConfig, from_dict, load_config, parse_override
from spiketrack.errors import ConfigError
from spiketrack.outputs import check_output_dir_possible, prepare_output_dir

STAGES = ("data", "teacher", "student", "track", "probe", "report")
NON_LEARNED_TRACKERS = ("event-density", "ncc")  # the references every learned tracker is read against
# attributes the probe reports apart: multi-object scenes, and of those the look-alike and distinct-appearance ones
# (template following shows where appearance decides: DA)
PROBE_ATTRIBUTES = ("MO", "LA", "DA")
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class QuickstartConfig:
    """Settings of the quickstart itself (change them with ``--set quickstart.KEY=VALUE``)."""

    # 120, not 40: validation one-step IoU 0.462 -> 0.498 (the teacher over-fits 40 objects; docs/benchmarks.md,
    # "How the single-object configuration was chosen")
    train_sequences: int = 120
    # 14 scenes give >= 30 test sequences with multi_object 0.5 (one per annotated object in a multi-object scene)
    test_sequences: int = 14
    frames: str = "80:80"  # MIN:MAX annotation frames per synthetic sequence
    size: str = "346x260"  # synthetic sensor (DAVIS346)
    seed: int = 0
    teacher_config: str = "configs/quickstart_teacher.yaml"
    # the spiking conv Siamese student: validation split, 2 seeds, SR 30.1 +- 1.1 against 23.3 +- 1.1 for the Spiking
    # MetaFormer student of configs/quickstart_student.yaml (docs/benchmarks.md, "A spiking conv student")
    student_config: str = "configs/quickstart_student_conv.yaml"
    report_out: str = "energy_reports/quickstart"
    workers: int = 2  # processes for data generation and tracking
    # share of multi-object synthetic scenes (data synth --multi-object; every other object visible in a test
    # scene's first frame is also a test sequence of its own); 0 keeps the single-object benchmark
    multi_object: float = 0.5
    # templates the probe stage tries (zeroed, foreign). Both: a zeroed drop alone also rewards a model that merely
    # fails on an empty template (validation split: HAD OT and GRU students drop 9-13 SR points with a zeroed
    # template but only ~2 with another sequence's; docs/benchmarks.md, "Training-time components")
    probe_modes: str = "zeroed,foreign"


@dataclass
class QuickstartPlan:
    """Resolved settings of one quickstart run."""

    work: Path
    options: QuickstartConfig
    teacher: ExperimentConfig
    student: ExperimentConfig
    teacher_config_path: Path
    student_config_path: Path
    teacher_overrides: list[str]
    student_overrides: list[str]

    @property
    def data_dir(self) -> Path:
        return self.work / "synth"

    def results_dir(self, tracker: str) -> Path:
        return self.work / "results" / tracker

    def probe_dir(self, tracker: str) -> Path:
        return self.work / "probe" / tracker


def _resolve_config_path(name: str) -> Path:
    """A config path as given, else relative to the project (``configs/`` ships beside the package)."""
    path = Path(name)
    if path.is_file() or path.is_absolute():
        return path
    candidate = PROJECT_ROOT / name
    return candidate if candidate.is_file() else path


def dataset_override(root: Path) -> str:
    """The ``--set`` text that makes ``root`` a config's only training dataset (the quickstart benchmark)."""
    return f"data.datasets=[{{root: {json.dumps(str(root))}, weight: 1.0}}]"


def plan(work: str | Path, overrides: list[str] | None = None) -> QuickstartPlan:
    """Split ``--set`` overrides by prefix and load both configs.

    ``quickstart.KEY=V`` sets :class:`QuickstartConfig`; ``teacher.K=V`` / ``student.K=V`` set one model's
    config; any other ``K=V`` applies to both (e.g. ``train.epochs=1``).
    """
    work = Path(work)
    q: dict[str, Any] = {}
    teacher_o: list[str] = []
    student_o: list[str] = []
    for text in overrides or []:
        key, value = parse_override(text)
        head, _, rest = key.partition(".")
        if head == "quickstart":
            q[rest] = value
        elif head == "teacher":
            teacher_o.append(text.split(".", 1)[1])
        elif head == "student":
            student_o.append(text.split(".", 1)[1])
        else:
            teacher_o.append(text)
            student_o.append(text)
    options = from_dict(QuickstartConfig, q, prefix="quickstart", source="--set")
    data_root = dataset_override(work / "synth")
    t_path = _resolve_config_path(options.teacher_config)
    s_path = _resolve_config_path(options.student_config)
    teacher_o = [data_root, *teacher_o]
    student_o = [data_root, *student_o]
    teacher = load_config(t_path, teacher_o)
    student = load_config(s_path, student_o)
    if teacher.model.kind != "teacher" or student.model.kind != "student":
        raise ConfigError(
            f"quickstart: {t_path} must configure a teacher and {s_path} a student "
            f"(got model.kind {teacher.model.kind!r} and {student.model.kind!r})"
        )
    return QuickstartPlan(work, options, teacher, student, t_path, s_path, teacher_o, student_o)


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"key 'quickstart.size': expected WIDTHxHEIGHT, got {text!r}") from None
    return w, h


def _frames(text: str) -> tuple[int, int]:
    try:
        lo, hi = (int(v) for v in text.split(":"))
    except ValueError:
        raise ConfigError(f"key 'quickstart.frames': expected MIN:MAX, got {text!r}") from None
    return lo, hi


def _sets(overrides: list[str]) -> list[str]:
    """``--set KEY=VALUE`` arguments, one pair per override."""
    return [arg for o in overrides for arg in ("--set", o)]


@dataclass(frozen=True)
class StageCommand:
    """A ``spiketrack`` command line: a stage prints it and runs what the CLI's own parser reads from it."""

    argv: tuple[str, ...]

    def __str__(self) -> str:
        return shlex.join(("spiketrack", *self.argv))

    def args(self) -> argparse.Namespace:
        """``argv`` parsed by the ``spiketrack`` parser, exactly as the printed command line would be."""
        from spiketrack.cli import build_parser

        return build_parser(self.argv[0]).parse_args(list(self.argv))


def _command(*argv: str | Path | int) -> StageCommand:
    return StageCommand(tuple(str(a) for a in argv))


class _Stages:
    """Marker files that make stages resumable and skippable."""

    def __init__(self, work: Path, force: bool, say: Callable[[str], None]) -> None:
        self.work, self.force, self.say = work, force, say
        self.upstream_ran = False  # a stage ran in this call: the later stages' outputs are stale

    def marker(self, stage: str) -> Path:
        return self.work / f"{stage}.done"

    def run(
        self,
        stage: str,
        commands: Sequence[StageCommand],
        fn: Callable[[], dict[str, Any]],
        outputs: tuple[Path, ...] = (),
    ) -> dict[str, Any]:
        """Run ``fn`` unless the stage is done; returns the stage's recorded outputs.

        ``commands`` are printed as the stage's ordinary command lines (``fn`` runs what they parse to).

        ``outputs`` (folders inside the work folder) are deleted first when the stage is redone rather than
        resumed: with ``--force``, or when an earlier stage ran in this call (its inputs changed).
        """
        index = STAGES.index(stage) + 1
        marker = self.marker(stage)
        redo = self.force or self.upstream_ran
        if marker.is_file() and not redo:
            self.say(f"[{index}/{len(STAGES)}] {stage}: done already ({marker}); --force to redo")
            return json.loads(marker.read_text())
        self.upstream_ran = True
        marker.unlink(missing_ok=True)
        if redo:
            for path in outputs:
                if path.exists():
                    self.say(f"    removing {path} (stage redone from scratch)")
                    shutil.rmtree(path)
        listed = "\n    $ ".join(str(c) for c in commands)
        self.say(f"[{index}/{len(STAGES)}] {stage}\n    $ {listed}")
        start = time.perf_counter()
        info = fn()
        info["seconds"] = round(time.perf_counter() - start, 1)
        atomic_write_text(marker, json.dumps(info, indent=1, default=str))
        self.say(f"    {stage} finished in {info['seconds']:.0f} s")
        return info


def quickstart(
    work: str | Path = "work/quickstart",
    overrides: list[str] | None = None,
    force: bool = False,
    progress: bool = True,
    say: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every stage; returns the report dict (also written to ``quickstart.report_out``)."""
    from spiketrack.data.synth import SynthOptions, generate_benchmark
    from spiketrack.energy.command import report_from_args
    from spiketrack.energy.meter import EnergyMeter
    from spiketrack.energy.report import render_markdown, write_report
    from spiketrack.evaluation.command import evaluate_from_args
    from spiketrack.evaluation.probe import read_probe
    from spiketrack.evaluation.probe_command import probe_from_args
    from spiketrack.evaluation.show_command import show_from_args
    from spiketrack.tracking.command import track_from_args
    from spiketrack.train.command import distill_from_args, train_from_args
    from spiketrack.train.sampling import shared_preload

    p = plan(work, overrides)
    o = p.options
    prepare_output_dir(p.work, "quickstart work folder")
    check_output_dir_possible(o.report_out, "report folder (quickstart.report_out)")  # before the long stages
    stages = _Stages(p.work, force, say)

    synth = _command("data", "synth", "--out", p.data_dir, "--train", o.train_sequences, "--test", o.test_sequences,
                     "--seed", o.seed, "--size", o.size, "--frames", o.frames, "--workers", o.workers,
                     *(("--multi-object", f"{o.multi_object:g}") if o.multi_object > 0 else ()))

    def data() -> dict[str, Any]:
        a = synth.args()
        jobs = generate_benchmark(
            Path(a.out), a.train, a.test, seed=a.seed, size=_size(a.size), frames=_frames(a.frames),
            options=SynthOptions(fps=float(a.fps), rgb=not a.no_rgb, multi_object=float(a.multi_object),
                                 lookalike_objects=float(a.lookalike_objects)),
            workers=a.workers, progress=progress,
        )
        return {"dataset": a.out, "sequences": len(jobs)}

    stages.run("data", [synth], data, outputs=(p.data_dir,))

    def fit(result) -> dict[str, Any]:  # noqa: ANN001 - TrainResult
        ckpt = result.best_checkpoint or result.last_checkpoint
        return {"checkpoint": str(ckpt), "run_dir": str(result.run_dir), "step": result.step,
                "metrics": result.metrics}

    teacher_dir = p.work / "teacher"
    student_dir = p.work / "student"
    teach = _command("train", p.teacher_config_path, *_sets(p.teacher_overrides), "--out", teacher_dir, "--resume")
    with shared_preload():  # both trainings read the same training split: decode it once
        t_info = stages.run("teacher", [teach], lambda: fit(train_from_args(teach.args(), progress)),
                            outputs=(teacher_dir,))
        learn = _command("distill", p.student_config_path, "--teacher", t_info["checkpoint"],
                         *_sets(p.student_overrides), "--out", student_dir, "--resume")
        s_info = stages.run("student", [learn], lambda: fit(distill_from_args(learn.args(), progress)),
                            outputs=(student_dir,))

    split = p.student.data.test_split
    trackers = {
        "teacher": _command("track", "--config", p.teacher_config_path, *_sets(p.teacher_overrides),
                            "--checkpoint", t_info["checkpoint"], "--dataset", p.data_dir,
                            "--split", p.teacher.data.test_split, "--out", p.results_dir("teacher"),
                            "--workers", o.workers, "--energy"),
        "student": _command("track", "--config", p.student_config_path, *_sets(p.student_overrides),
                            "--checkpoint", s_info["checkpoint"], "--dataset", p.data_dir, "--split", split,
                            "--out", p.results_dir("student"), "--workers", o.workers, "--energy"),
        **{name: _command("track", "--tracker", name, "--config", p.student_config_path,
                          *_sets(p.student_overrides), "--dataset", p.data_dir, "--split", split,
                          "--out", p.results_dir(name), "--workers", o.workers)
           for name in NON_LEARNED_TRACKERS},
    }

    def track() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, command in trackers.items():
            say(f"    tracking with the {name}")
            a = command.args()
            summary = track_from_args(a, EnergyMeter.from_config, progress=progress)
            out[name] = {"results": a.out, "fps": summary.fps}
        return out

    stages.run("track", list(trackers.values()), track, outputs=tuple(p.results_dir(n) for n in trackers))

    probed = ("teacher", "student", "ncc")  # the NCC matcher's drops: what following appearance alone gives
    test_split = p.student.data.test_split

    def probe_plan() -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Modes (foreign needs two sequences) and attributes to report apart (MO where the split has it)."""
        from spiketrack.data.dataset import SequenceDataset

        ds = SequenceDataset(p.data_dir)
        names = ds.names(test_split) if (p.data_dir / f"{test_split}.txt").is_file() else []
        codes: set[str] = set()
        for name in names:
            with ds.open(name) as seq:
                codes.update(seq.attributes)
        modes = tuple(m.strip() for m in o.probe_modes.split(",") if m.strip())
        if len(names) < 2:  # a foreign template needs another sequence
            modes = tuple(m for m in modes if m != "foreign")
        return modes, tuple(c for c in PROBE_ATTRIBUTES if c in codes)

    modes, attributes = probe_plan()
    models = {"teacher": (p.teacher_config_path, p.teacher_overrides, ("--checkpoint", t_info["checkpoint"])),
              "student": (p.student_config_path, p.student_overrides, ("--checkpoint", s_info["checkpoint"])),
              "ncc": (p.student_config_path, p.student_overrides, ("--tracker", "ncc"))}
    probes = {
        name: _command("probe", "template", "--config", models[name][0], *_sets(models[name][1]),
                       *models[name][2], "--dataset", p.data_dir, "--split", test_split,
                       "--out", p.probe_dir(name), "--modes", ",".join(modes),
                       *[arg for code in attributes for arg in ("--attribute", code)],
                       "--real-results", p.results_dir(name), "--name", name, "--workers", o.workers)
        for name in probed
    }

    def probe() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, command in probes.items():
            say(f"    probing the {name}'s template dependence ({', '.join(modes)})")
            res = probe_from_args(command.args(), progress=progress)
            out[name] = {"probe": str(p.probe_dir(name)), "drop": res.drop}
        return out

    stages.run("probe", list(probes.values()), probe, outputs=tuple(p.probe_dir(n) for n in probed))

    report_out = Path(o.report_out)
    evaluate = _command("evaluate", "--dataset", p.data_dir, "--split", split,
                        "--results", *[p.results_dir(n) for n in NON_LEARNED_TRACKERS], "--names", *NON_LEARNED_TRACKERS)
    runs_of = ("teacher", "student")
    runs = [f"{name}={p.results_dir(name)}" for name in runs_of]
    reporting = _command("report", "--dataset", p.data_dir, "--split", split,
                         *[arg for run in runs for arg in ("--run", run)],
                         *[arg for n in probed if n in runs_of and (p.probe_dir(n) / "probe.json").is_file()
                           for arg in ("--probe", f"{n}={p.probe_dir(n)}")],
                         "--out", report_out)
    # each tracker's worst test sequence with every tracker's boxes, events only at sensor size (small files)
    showing = _command("show", "--dataset", p.data_dir, "--worst", "--split", split,
                       "--results", *(p.results_dir(n) for n in trackers), "--names", *trackers,
                       "--out", report_out / "show", "--no-rgb", "--scale", 1)
    quickstart_command = _command("quickstart", "--work", p.work, *_sets(overrides or []))

    def report() -> dict[str, Any]:
        report_start = time.perf_counter()
        r, e = reporting.args(), evaluate.args()
        rep = report_from_args(r)
        base = evaluate_from_args(e).to_dict()["trackers"]
        rep["baselines"] = {name: base[name] | {"results": results} for name, results in zip(e.names, e.results)}
        for name, b in rep["baselines"].items():  # a probed non-learned tracker's drops, as the runs have theirs
            if (p.probe_dir(name) / "probe.json").is_file():
                b["template_drop"] = {m: round(float(v), 1) for m, v in read_probe(p.probe_dir(name))["drop"].items()}
                b["probe"] = str(p.probe_dir(name))
        rep["generated_by"] = {
            "command": str(quickstart_command),
            "date": time.strftime("%Y-%m-%d"),
            # every stage's own time (stages done by an earlier run count with the time they took then)
            "seconds_total": round(sum(
                json.loads(stages.marker(s).read_text())["seconds"] for s in STAGES[:-1]
                if stages.marker(s).is_file()
            ) + time.perf_counter() - report_start, 1),
        }
        write_report(rep, r.out)
        shown = show_from_args(showing.args())
        return {"report": r.out, "show": sorted(str(res.gif) for res in shown.values())}

    stages.run("report", [evaluate, reporting, showing], report)
    rep = json.loads((report_out / "report.json").read_text())
    say("")
    say(render_markdown(rep).split("\n## ")[0].strip())
    say(f"\nreport: {report_out}/report.md, report.json, accuracy_energy.png; worst sequences: {report_out}/show/")
    return rep


def add_arguments_quickstart(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work", default="work/quickstart", help="work folder (data, checkpoints, results)")
    parser.add_argument(
        "--force", action="store_true",
        help="redo every stage from scratch (deletes the work folder's data, checkpoints and results first)",
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="quickstart.KEY (train_sequences, test_sequences, frames, size, seed, teacher_config, "
        "student_config, report_out, workers, multi_object, probe_modes), teacher.KEY / student.KEY for one model, other keys for both",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_quickstart(args: argparse.Namespace) -> int:
    quickstart(args.work, args.overrides, force=args.force, progress=not args.no_progress)
    return 0
