"""Print the README's model table and model cards from the shipped cards and metrics.

    python -m demo_core.report > /tmp/models.md

Every number comes from a ``metrics.json`` written by ``demo_core.train`` (validation,
training time, hardware) or ``demo_core.evaluate`` (test), next to the command that
measured it, so the README never carries a number nobody measured.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from demo_core.checkpoint import DEFAULT_ROOT, find_models, read_metrics


def headline(values: dict[str, Any] | None) -> str:
    """The metric block in words, whatever the task: BLEU/chrF, WER/PER, ROUGE, exact match."""
    if not values:
        return "not measured"
    if "bleu" in values:
        if "tok:zh" in str(values.get("bleu_signature", "")):
            return f"BLEU {values['bleu']:.1f} (Chinese tokenizer), chrF {values['chrf']:.1f}"
        return f"BLEU {values['bleu']:.1f} (lowercased {values['bleu_lc']:.1f}), chrF {values['chrf']:.1f}"
    if "wer" in values:
        return f"WER {values['wer']:.1f}%, PER {values['per']:.1f}%"
    if "rougeL" in values:
        text = f"ROUGE-1/2/L {values['rouge1']:.1f} / {values['rouge2']:.1f} / {values['rougeL']:.1f}"
        if "lead_rougeL" in values:
            text += f" (first-{values['lead_words']}-words baseline: ROUGE-L {values['lead_rougeL']:.1f})"
        return text
    if "exact_match" in values:
        return f"exact match {values['exact_match']:.2f}%"
    return ", ".join(f"{k} {v}" for k, v in values.items() if isinstance(v, (int, float)))


def decoding_label(values: dict[str, Any]) -> str:
    d = values.get("decoding", "greedy")
    if isinstance(d, dict):
        return f"beam {d['beam_size']}" if d.get("strategy") == "beam" else str(d.get("strategy"))
    return str(d)


def table(entries: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    lines = [
        "| model | task | architecture | parameters | test | validation |",
        "|---|---|---|---|---|---|",
    ]
    for card, m in entries:
        test, valid = m.get("test"), m.get("valid")
        test_cell = f"{headline(test)} on `{test['split']}`, {decoding_label(test)}" if test else "not measured yet"
        valid_cell = f"{headline(valid)}, {decoding_label(valid)}" if valid else "-"
        lines.append(
            f"| `{card['id']}` | {card.get('task_label', card['task'])} | {card.get('display_name', card['architecture'])} "
            f"| {m.get('parameters', 0) / 1e6:.1f} M | {test_cell} | {valid_cell} |"
        )
    return "\n".join(lines)


def model_card(card: dict[str, Any], m: dict[str, Any]) -> str:
    data = card.get("data", {})
    lines = [
        f"### `{card['id']}`: {card.get('display_name', '')}",
        "",
        card.get("description", ""),
        "",
        f"- **Task:** {card.get('task_label', card['task'])} ({card['source_lang']} → {card['target_lang']})",
        f"- **Size:** {m.get('parameters', 0):,} parameters, weights stored in fp16",
        f"- **Training:** best validation epoch {m.get('best_epoch', '?')}, reached after "
        f"{m.get('training_seconds', 0) / 3600:.2f} h on {m.get('hardware', '?')}"
        f"{', ' + m['training_precision'] if 'training_precision' in m else ''}, {m.get('date', '?')}, "
        f"commit `{str(m.get('commit', '?'))[:10]}`; the whole curve is in `checkpoints/{card['id']}/train_log.csv`",
        f"- **Trained with:** `{m.get('train_command', '?')}`",
        f"- **Data:** {data.get('name', '?')}. Licence: {data.get('licence', '?')}. {data.get('attribution', '')}",
    ]
    for key in ("valid", "test"):
        if key in m:
            v = m[key]
            command = v.get("command", m.get("train_command", ""))
            lines.append(f"- **{key}** (`{v.get('split')}`, {decoding_label(v)}): {headline(v)}; measured by `{command}`")
            if "bleu_signature" in v:
                lines.append(f"  - signatures: `{v['bleu_signature']}`, `{v['bleu_lc_signature']}`")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_ROOT)
    args = parser.parse_args()
    entries = [(e.card, read_metrics(e.path)) for e in find_models(args.checkpoints) if e.available]
    print(table(entries))
    print()
    for card, m in entries:
        print(model_card(card, m))
        print()


if __name__ == "__main__":
    main()
