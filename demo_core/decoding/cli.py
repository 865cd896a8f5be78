"""The decoding options as command-line flags, derived from ``DecodeConfig``'s options.

``generate`` and ``evaluate`` share them: ``--beam-size`` is the option ``beam_size``, with
its type, default and help text.
"""

from __future__ import annotations

import argparse

from demo_core.decoding.config import OPTIONS, DecodeConfig, config_from


def add_decoding_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per decoding option (``--strategy``, ``--beam-size``, ...)."""
    for opt in OPTIONS:
        parser.add_argument(opt.flag, dest=opt.name, type=opt.kind, default=opt.default, choices=opt.choices,
                            help=opt.help)


def decode_config(args: argparse.Namespace) -> DecodeConfig:
    """DecodeConfig from parsed flags; raises ValueError naming a bad parameter."""
    return config_from({opt.name: getattr(args, opt.name) for opt in OPTIONS})
