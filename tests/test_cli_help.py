"""``snn-motifs <command> --help`` shows every option's default (issue: the default output folder
``runs/<dataset>_<ablation>`` surprised users)."""

from __future__ import annotations

import argparse

import pytest

from snn_motifs.cli import build_parser


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


@pytest.mark.parametrize("command", sorted(_subcommands()))
def test_every_option_says_its_default(command):
    sub = _subcommands()[command]
    text = sub.format_help()
    for action in sub._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS or action.dest == "help":
            continue
        assert action.help, f"{command} {action.option_strings[0]} has no help"
        flag = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))
        if action.required or flag:
            continue
        shown = sub._get_formatter()._get_help_string(action)
        assert "default" in shown, f"{command} {action.option_strings[0]}: {shown!r} does not say its default"
    if command == "search":
        assert "runs/<dataset>_<ablation>" in text
