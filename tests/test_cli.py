import pytest

from spiketrack.cli import COMMANDS, main


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in ["data", "train", "distill", "track", "evaluate", "energy", "report", "quickstart", "model"]:
        assert name in COMMANDS
        assert f"    {name}" in out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_user_error_is_a_message_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "info", "/no/such/file.h5"]) == 2
    err = capsys.readouterr().err
    assert "/no/such/file.h5" in err and "file not found" in err and "Traceback" not in err
