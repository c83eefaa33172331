"""Energy profiles: published per-operation figures and their sources."""

from __future__ import annotations

import pytest

from spiketrack.energy.profiles import DEFAULT_PROFILE, PROFILES, get_profile
from spiketrack.errors import ConfigError


def test_horowitz_45nm_figures():
    fp32 = get_profile("45nm-fp32")
    assert DEFAULT_PROFILE == "45nm-fp32"
    assert (fp32.mac_pj, fp32.ac_pj) == (4.6, 0.9)  # 3.7 + 0.9 pJ multiply + add
    assert (get_profile("45nm-fp16").mac_pj, get_profile("45nm-fp16").ac_pj) == (1.5, 0.4)
    assert get_profile("45nm-int8").mac_pj == pytest.approx(0.23)
    assert fp32.energy_pj(mac=10, sop=100) == pytest.approx(4.6 * 10 + 0.9 * 100)


def test_neuromorphic_figures_and_sources():
    assert get_profile("truenorth").ac_pj == 26.0
    assert get_profile("loihi2").ac_pj == 23.6
    for p in PROFILES.values():
        assert p.source and p.note
    assert "System-level" in get_profile("truenorth").note


def test_unknown_profile_names_the_key():
    with pytest.raises(ConfigError, match="energy.profile.*45nm-fp32"):
        get_profile("7nm-magic")
