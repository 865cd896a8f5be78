"""Decoding: one config of every option, logits processors, a recorder, and the searches.

    from demo_core.decoding import DecodeConfig, decode
    hypotheses, beam_tree = decode(model, src, DecodeConfig(strategy="beam", beam_size=5))
"""

from demo_core.decoding.config import MAX_BEAM, MAX_OUTPUT_TOKENS, OPTION, OPTIONS, STRATEGIES, DecodeConfig, Option
from demo_core.decoding.recorder import BeamNode, Hypothesis
from demo_core.decoding.search import beam_search, decode, greedy_search, sample

__all__ = ["MAX_BEAM", "MAX_OUTPUT_TOKENS", "OPTION", "OPTIONS", "STRATEGIES", "BeamNode", "DecodeConfig", "Hypothesis",
           "Option", "beam_search", "decode", "greedy_search", "sample"]
