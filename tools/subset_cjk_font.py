"""Build the page's CJK web font: a WOFF2 subset of Noto Sans CJK SC Regular.

Run from the repository root when a Chinese model's vocabulary or card changes::

    pip install -r requirements-dev.txt   # fontTools + brotli; the app itself never needs them
    python tools/subset_cjk_font.py       # reads Debian's fonts-noto-cjk (apt-get install fonts-noto-cjk)

It keeps only CJK code points (``demo_core.serving.fonts.CJK_RANGES``) that the page can show:

* every one in the SentencePiece vocabularies of the models under ``checkpoints/`` that read or
  write Chinese (each folder's ``config.json`` ``tokenizer`` names the files): the pieces the
  heatmap labels;
* every one in those models' cards (examples, notes, descriptions);
* the CJK and full-width punctuation blocks;
* unless ``--vocabulary-only``: GB2312 level 1, the 3,755 most common characters of modern
  Chinese (listed by Python's gb2312 codec), and their Traditional forms (OpenCC s2t). Byte
  fallback shows any typed character outside the vocabulary as its own label, and the zh→en
  model takes Traditional input, which the input box shows as typed.

Only the Regular weight and no OpenType layout features (horizontal Chinese needs none; the
``locl``/``vert`` alternates would double the glyph count). Writes
``demo_core/serving/static/NotoSansSC-subset.woff2`` and ``FONT-LICENSE.txt`` beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import sentencepiece as spm
from fontTools import subset
from fontTools.ttLib import TTCollection, TTFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from demo_core.serving.fonts import CJK_RANGES, FONT_FILE, is_cjk  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCE_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
FACE = "Noto Sans CJK SC"
DEBIAN_COPYRIGHT = Path("/usr/share/doc/fonts-noto-cjk/copyright")
PUNCTUATION_BLOCKS = ((0x3000, 0x303F), (0xFF00, 0xFFEF))  # CJK symbols and punctuation; full-width forms
GB2312_LEVEL1_LAST_LEAD = 0xD7  # level 1 is rows 16-55: lead bytes 0xB0-0xD7


def chinese_model_dirs(checkpoints: Path) -> list[Path]:
    """Model folders whose card reads or writes Chinese (``source_lang`` or ``target_lang`` zh)."""
    found = []
    for config in sorted(checkpoints.glob("*/config.json")):
        card = json.loads(config.read_text(encoding="utf-8"))
        if any(str(card.get(side, "")).startswith("zh") for side in ("source_lang", "target_lang")):
            found.append(config.parent)
    return found


def tokenizer_files(model_dir: Path) -> list[Path]:
    """The SentencePiece models the card's ``tokenizer`` field names (source, target or joint)."""
    card = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    names = {v for v in card.get("tokenizer", {}).values() if isinstance(v, str) and v.endswith(".model")}
    return [model_dir / name for name in sorted(names)]


def vocabulary_characters(checkpoints: Path) -> set[str]:
    """Every CJK character in a piece of a Chinese model's vocabulary."""
    chars: set[str] = set()
    for model_dir in chinese_model_dirs(checkpoints):
        for path in tokenizer_files(model_dir):
            sp = spm.SentencePieceProcessor(model_file=str(path))
            chars |= {c for i in range(sp.get_piece_size()) for c in sp.id_to_piece(i) if is_cjk(c)}
    return chars


def _strings(value: object) -> Iterator[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def card_characters(checkpoints: Path) -> set[str]:
    """Every CJK character in a Chinese model's card (examples, notes, descriptions)."""
    chars: set[str] = set()
    for model_dir in chinese_model_dirs(checkpoints):
        card = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        chars |= {c for text in _strings(card) for c in text if is_cjk(c)}
    return chars


def punctuation() -> set[str]:
    """The CJK punctuation and full-width blocks."""
    return {chr(code) for start, end in PUNCTUATION_BLOCKS for code in range(start, end + 1)}


def common_characters() -> set[str]:
    """GB2312 level 1 (3,755 characters) and the Traditional forms OpenCC gives them."""
    import opencc  # a runtime dependency already (zh-hans normaliser)

    level1 = set()
    for code in range(0x4E00, 0xA000):
        try:
            encoded = chr(code).encode("gb2312")
        except UnicodeEncodeError:
            continue
        if encoded[0] <= GB2312_LEVEL1_LAST_LEAD:
            level1.add(chr(code))
    traditional = opencc.OpenCC("s2t").convert("".join(sorted(level1)))
    return level1 | {c for c in traditional if is_cjk(c)}


def open_face(path: Path, face: str) -> TTFont:
    """The font named ``face`` (name ID 1 or 4) in a collection or single font file."""
    if path.suffix.lower() in (".ttc", ".otc"):
        for number, font in enumerate(TTCollection(str(path)).fonts):
            if face in (font["name"].getDebugName(1), font["name"].getDebugName(4)):
                return TTFont(str(path), fontNumber=number, recalcTimestamp=False)  # same input, same bytes
        raise SystemExit(f"{path}: no face named {face!r}")
    return TTFont(str(path), recalcTimestamp=False)


def subset_font(font: TTFont, chars: set[str], out: Path) -> tuple[set[str], set[str]]:
    """Write ``font`` cut down to ``chars`` as WOFF2 at ``out``; returns (kept, missing from the font)."""
    cmap = font.getBestCmap()
    kept = {c for c in chars if ord(c) in cmap}
    options = subset.Options()
    options.layout_features = []  # no locl/vert/halt alternates: horizontal Chinese uses none
    options.name_IDs = ["*"]  # keep copyright, trademark and licence records
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(sorted(kept)))
    subsetter.subset(font)
    font.flavor = "woff2"  # the subsetter's flavor option only applies to its command line
    out.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(out))
    return kept, chars - kept


def ofl_text(copyright_file: Path) -> str:
    """The SIL OFL 1.1 text from Debian's copyright file (its ``License: SIL-1.1`` paragraph)."""
    lines = copyright_file.read_text(encoding="utf-8").splitlines()
    # The standalone paragraph, not the "Files: *" stanza's one-line reference to it.
    start = next(i + 1 for i, line in enumerate(lines[:-1]) if line == "License: SIL-1.1" and lines[i + 1].startswith(" "))
    body = []
    for line in lines[start:]:
        if not line.startswith(" "):
            break
        body.append("" if line.strip() == "." else line[1:])
    return "\n".join(body).strip() + "\n"


def license_text(font: TTFont, source: Path, count: int, copyright_file: Path) -> str:
    """FONT-LICENSE.txt: what the file is, whose it is, and the OFL it stays under."""
    name = font["name"]
    header = (
        f"NotoSansSC-subset.woff2 is a Modified Version (a subset of {count} characters, Regular weight,\n"
        f"converted to WOFF2) of the font \"{FACE}\" from {source}\n"
        "(Debian package fonts-noto-cjk; upstream https://github.com/notofonts/noto-cjk), made by\n"
        "tools/subset_cjk_font.py. The page's CSS calls it \"Explorer CJK\".\n\n"
        f"Copyright notice of the original font (name record 0): {name.getDebugName(0)}\n"
        f"Trademark (name record 7): {name.getDebugName(7)}\n\n"
        f"{name.getDebugName(13)}\n{name.getDebugName(14)}\n\n"
        "It is distributed under the SIL Open Font License, Version 1.1, reproduced below.\n\n"
    )
    if copyright_file.exists():
        return header + ofl_text(copyright_file)
    return header + "Full text: https://openfontlicense.org/open-font-license-official-text/\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--source", type=Path, default=SOURCE_FONT, help="Noto Sans CJK collection or font file")
    parser.add_argument("--face", default=FACE)
    parser.add_argument("--out", type=Path, default=FONT_FILE)
    parser.add_argument("--vocabulary-only", action="store_true", help="skip the common characters (GB2312 level 1 + Traditional)")
    args = parser.parse_args(argv)

    vocabulary, card = vocabulary_characters(args.checkpoints), card_characters(args.checkpoints)
    if not vocabulary:
        raise SystemExit(f"no Chinese model vocabulary under {args.checkpoints}")
    chars = vocabulary | card | punctuation() | (set() if args.vocabulary_only else common_characters())
    assert all(is_cjk(c) for c in chars), CJK_RANGES
    font = open_face(args.source, args.face)
    kept, missing = subset_font(font, chars, args.out)
    needed_missing = (vocabulary | card) & missing
    if needed_missing:
        raise SystemExit(f"{args.face} lacks characters the models show: {''.join(sorted(needed_missing))}")
    license_file = args.out.parent / "FONT-LICENSE.txt"
    license_file.write_text(license_text(font, args.source, len(kept), DEBIAN_COPYRIGHT), encoding="utf-8")
    print(f"vocabulary {len(vocabulary)}, cards {len(card)}, requested {len(chars)}, kept {len(kept)} "
          f"(not in the font: {len(missing)} code points)")
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes) and {license_file}")


if __name__ == "__main__":
    main()
