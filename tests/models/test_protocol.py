"""One call protocol for every model family: encode_template/track, input_spec, feature_info, build_model."""

from __future__ import annotations

import pytest
import torch

from spiketrack.config import load_config
from spiketrack.errors import ConfigError
from spiketrack.models import FAMILIES, build_model, input_spec


def _inputs(spec, zs: int, xs: int):  # noqa: ANN001, ANN202
    if spec.timesteps:
        return (torch.poisson(torch.full((spec.timesteps, 2, 2, s, s), 0.5)) for s in (zs, xs))
    return ({v: torch.rand(2, c, s, s) for v, c in spec.channels.items()} for s in (zs, xs))


@pytest.mark.parametrize("xcorr", [False, True])
@pytest.mark.parametrize("kind", sorted(FAMILIES))
def test_every_family_has_the_one_call_protocol(kind: str, xcorr: bool) -> None:
    cfg = load_config(None, [f"model.kind={kind}", "model.variant=quickstart", "model.timesteps=2",
                             "data.template_size=32", "data.search_size=64",
                             f"model.overrides={{xcorr: {str(xcorr).lower()}}}"])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    assert model.input_spec == input_spec(cfg)
    template, search = _inputs(model.input_spec, 32, 64)
    with torch.no_grad():
        whole = model(template, search, return_features=True)
        split = model.track(search, model.encode_template(template), return_features=True)
    assert torch.equal(whole["score_map"], split["score_map"]) and whole["score_map"].shape == (2, 1, 4, 4)
    assert [f.shape[-1] for f in whole["features"]] == [info["num_chs"] for info in model.feature_info]
    names = dict(model.named_modules())
    assert all(info["module"] in names for info in model.feature_info)
    assert hasattr(model, "merge_memories") == (kind == "student")  # several template slots: the student only


def test_build_model_names_the_families() -> None:
    with pytest.raises(ConfigError, match="model.kind"):
        build_model(load_config(None, ["model.kind=rnn"]))  # type: ignore[list-item]


@pytest.mark.parametrize(("kind", "variant"), [("teacher", "quickstart"), ("student", "quickstart"),
                                               ("student", "deployable"), ("student", "conv")])
def test_return_features_names_what_is_computed_and_returned(kind: str, variant: str) -> None:
    # the trainer asks only for the outputs the enabled distillation terms read (spiketrack.models.wants)
    overrides = ["model.overrides={xcorr: true}"] if variant == "quickstart" else []
    cfg = load_config(None, [f"model.kind={kind}", f"model.variant={variant}", "model.timesteps=2",
                             "data.template_size=32", "data.search_size=64", *overrides])
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    template, search = _inputs(model.input_spec, 32, 64)
    plain = {"score_map", "size_map", "offset_map", "pred_boxes"}
    with torch.no_grad():
        full = model(template, search, return_features=True)
        extra = set(full) - plain
        assert set(model(template, search)) == plain == set(model(template, search, return_features=frozenset()))
        for name in sorted(extra):
            one = model(template, search, return_features={name})
            assert set(one) == plain | {name}, name
            got, want = one[name], full[name]
            pairs = zip(got, want, strict=True) if isinstance(want, list) else [(got, want)]
            assert all(torch.equal(a, b) for a, b in pairs), name
            assert torch.equal(one["score_map"], full["score_map"])
    assert extra == {"teacher": {"features", "attentions", "correlation"},
                     "student": {"features", "similarity"} if variant == "deployable"
                     else {"features", "similarity", "correlation"}}[kind]
