"""The command line: every option explained with its default; -v shows tracebacks."""
import argparse
import logging

import pytest

from holovae.cli import build_parser, main


def _commands():
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_has_help_and_shows_its_default(name):
    command = _commands()[name]
    for action in command._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"holovae {name} {action.option_strings or action.dest}: no help text"
    text = command.format_help()
    for action in command._actions:
        if action.option_strings and action.default not in (None, False, [], argparse.SUPPRESS) \
                and not action.required:
            assert f"(default: {action.default})" in " ".join(text.split()), (name, action.option_strings)


def test_verbose_shows_the_traceback(tmp_path, caplog):
    bad = tmp_path / "x.h5"
    bad.write_text("not hdf5")
    with caplog.at_level(logging.ERROR, logger="holovae"):
        assert main(["merge", str(bad), "--out", str(tmp_path / "m.h5")]) == 1
    assert "not an HDF5 file" in caplog.text and "Traceback" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="holovae"):
        assert main(["-v", "merge", str(bad), "--out", str(tmp_path / "m.h5")]) == 1
    assert "Traceback" in caplog.text and "not an HDF5 file" in caplog.text
