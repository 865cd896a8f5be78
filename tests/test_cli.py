"""The command-line tools, end to end, as outside checks call them."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run(args, stdin="", cwd=REPO):
    return subprocess.run([sys.executable, "-m", *args], input=stdin, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_list_prints_models_as_json(tiny_model_dir):
    """--list prints a JSON array with id, task, languages and architecture."""
    out = run(["demo_core.generate", "--list", "--checkpoints", str(tiny_model_dir.parent)])
    assert out.returncode == 0, out.stderr
    models = json.loads(out.stdout)
    assert models[0]["id"] == "tiny-rnn"
    assert {"id", "task", "source_lang", "target_lang", "architecture"} <= set(models[0])


def test_generate_streams_one_line_per_input(tiny_model_dir):
    """Each stdin line gives one stdout line, in order, even when a line is empty."""
    out = run(["demo_core.generate", "--model", "tiny-rnn", "--checkpoints", str(tiny_model_dir.parent),
               "--strategy", "beam", "--beam-size", "3", "--max-len", "6"], stdin="ein hund\n\nzwei kinder 🐱\n")
    assert out.returncode == 0, out.stderr
    assert len(out.stdout.split("\n")) == 4  # three lines + trailing newline
    assert "empty" in out.stderr


def test_generate_json_lines(tiny_model_dir):
    """--json writes one parseable object per input with n-best, scores and attention."""
    out = run(["demo_core.generate", "--model", "tiny-rnn", "--checkpoints", str(tiny_model_dir.parent), "--json",
               "--strategy", "sample", "--num-samples", "2", "--seed", "3", "--max-len", "5"], stdin="ein hund\nkatze\n")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 2 and all(len(r["hypotheses"]) == 2 for r in rows)
    assert all("attention" in h and "token_probs" in h for r in rows for h in r["hypotheses"])


def test_generate_refuses_bad_parameters_by_name(tiny_model_dir):
    """An invalid decoding parameter exits with status 2 and names the parameter."""
    bad = (("--beam-size", "0", "beam_size"), ("--temperature", "0", "temperature"), ("--top-p", "1.5", "top_p"))
    for flag, value, name in bad:
        out = run(["demo_core.generate", "--model", "tiny-rnn", "--checkpoints", str(tiny_model_dir.parent), flag, value])
        assert out.returncode == 2 and name in out.stderr
    out = run(["demo_core.generate", "--model", "missing", "--checkpoints", str(tiny_model_dir.parent)])
    assert out.returncode == 2 and "unknown model" in out.stderr


def test_generate_prefix_gives_what_the_api_gives(tiny_model_dir):
    """``generate --prefix`` and the API's ``prefix`` force the same start and give the same output, step data too."""
    from demo_core.pipeline import ModelRegistry
    from tests.serving import demo_for

    prefix = "ein"
    out = run(["demo_core.generate", "--model", "tiny-rnn", "--checkpoints", str(tiny_model_dir.parent), "--json",
               "--strategy", "greedy", "--max-len", "6", "--prefix", prefix], stdin="ein hund\n")
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)
    api = demo_for(ModelRegistry(tiny_model_dir.parent).root).page.generate(
        "ein hund", "tiny-rnn", "greedy", max_len=6, prefix=prefix, steps=True)
    assert api["text"] == cli["text"] and api["hypotheses"][0]["ids"] == cli["hypotheses"][0]["ids"]
    assert api["prefix_tokens"] >= 1 and api["steps"]["forced"] == api["prefix_tokens"]
    assert [s["token"] for s in api["steps"]["steps"]] == api["hypotheses"][0]["ids"]
