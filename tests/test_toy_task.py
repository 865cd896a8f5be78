"""The toy reversal task: each attention kind learns the mirrored alignment."""

import pytest

from demo_core.tasks.toy import alignment_accuracy, toy_sources


@pytest.mark.parametrize("kind", ["additive", "dot", "general"])
def test_attention_learns_mirrored_alignment(toy_models, kind):
    """After seconds of training, >= 90% of output rows attend most to the mirrored source position."""
    exact, aligned = alignment_accuracy(toy_models[kind], toy_sources(100))
    assert exact >= 0.9, f"{kind}: only {exact:.0%} of reversals are right"
    assert aligned >= 0.9, f"{kind}: only {aligned:.0%} of attention rows point at the mirrored position"
