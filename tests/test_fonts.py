"""The page's CJK web font (issue #16): Chinese renders on a machine without CJK system fonts.

The file is checked against the Chinese models' own vocabularies and cards (read here through
the project's card and tokenizer code, not the build tool's), served by a launched app, and
drawn by Chromium with every CJK system font hidden (a fontconfig file that lists only Latin
fonts). fontTools is a dev dependency: without it the glyph-coverage checks skip.
"""

from __future__ import annotations

import os
import re
import urllib.error
import urllib.request
from pathlib import Path

import gradio as gr
import pytest

import app
from demo_core.checkpoint import find_models
from demo_core.serving import fonts
from demo_core.text.tokenizer import Tokenizer
from tests.serving import close, demo_for, free_port, serving

CHROMIUM = Path("/usr/bin/chromium")
LATIN_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
GENERIC_FAMILIES = {"serif", "sans-serif", "monospace", "cursive", "fantasy", "system-ui", "ui-sans-serif", "ui-serif",
                    "-apple-system", "blinkmacsystemfont"}
CHINESE = "我们明天去公园吧。這是我的書。"


def chinese_cards() -> list:
    """Cards of the servable models that read or write Chinese."""
    return [e for e in find_models() if e.card is not None and "zh" in (e.card.source_lang[:2], e.card.target_lang[:2])]


def chinese_characters() -> set[str]:
    """Every CJK character a Chinese model can label a token with (its vocabularies) or shows as an example."""
    chars: set[str] = set()
    for entry in chinese_cards():
        for name in {entry.card.tokenizer.source, entry.card.tokenizer.target}:
            tok = Tokenizer(entry.path / name)
            chars |= {c for i in range(tok.vocab_size) for c in tok.piece(i) if fonts.is_cjk(c)}
        chars |= {c for text in (*entry.card.examples, *entry.card.example_notes) for c in text if fonts.is_cjk(c)}
    return chars


def font_cmap() -> set[str]:
    ttlib = pytest.importorskip("fontTools.ttLib")
    font = ttlib.TTFont(fonts.FONT_FILE)
    assert font.flavor == "woff2"
    return {chr(code) for code in font.getBestCmap()}


def cjk_before_generics(stack: str) -> bool:
    """True when the CJK face comes before every generic or system family of a CSS font list
    (after one, Chromium left Han text in tofu in our checks, see the module docstring)."""
    names = [name.strip().strip("'\"").lower() for name in stack.split(",")]
    cjk = fonts.CJK_FAMILY.lower()
    return cjk in names and all(names.index(cjk) < i for i, name in enumerate(names) if name in GENERIC_FAMILIES)


def test_font_file_is_a_small_woff2():
    """The shipped font is a WOFF2 file of at most 2 MB, with its licence beside it."""
    data = fonts.FONT_FILE.read_bytes()
    assert data[:4] == b"wOF2"
    assert len(data) <= 2_000_000
    licence = (fonts.STATIC_DIR / "FONT-LICENSE.txt").read_text(encoding="utf-8")
    assert "SIL Open Font License" in licence and "Noto Sans CJK SC" in licence


def test_font_covers_every_character_the_chinese_models_show():
    """Every CJK character in a Chinese model's vocabularies and examples has a glyph."""
    needed = chinese_characters()
    assert len(needed) > 1000, "expected the shipped Chinese models' vocabularies"
    missing = needed - font_cmap()
    assert not missing, "".join(sorted(missing))


def test_font_is_declared_for_cjk_code_points_only():
    """The @font-face rule names the family and the URL and limits the face to CJK code points."""
    css = fonts.font_face_css()
    assert f"font-family: {fonts.CJK_FAMILY_CSS};" in css and fonts.font_url() in css and "format('woff2')" in css
    assert all(fonts.is_cjk(c) for c in "我們、。（）") and not any(fonts.is_cjk(c) for c in "Aé▁“”<")
    declared = re.search(r"unicode-range: (.*);", css).group(1)
    ranges = [tuple(int(h, 16) for h in r.strip().removeprefix("U+").split("-")) for r in declared.split(",")]
    assert all(any(lo <= ord(c) <= hi for lo, hi in ranges) for c in chinese_characters())
    assert cjk_before_generics(fonts.FIGURE_FONT_FAMILY)


@pytest.fixture(scope="module")
def url(tiny_model_dir):
    """The app over a tiny model, with the static folder registered as app.py registers it."""
    gr.set_static_paths(paths=[fonts.STATIC_DIR])
    with serving(demo_for(tiny_model_dir.parent)) as url:
        yield url


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as reply:
            return reply.status, reply.headers["content-type"], reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["content-type"], b""


def test_launched_app_serves_the_font(url):
    """The font URL of the @font-face rule answers 200 with a font content type and the file's bytes."""
    status, kind, body = get(url.rstrip("/") + fonts.font_url())
    assert status == 200 and kind == fonts.FONT_MIME
    assert body == fonts.FONT_FILE.read_bytes()


def test_static_folder_exposes_nothing_else(url):
    """Registering the static folder serves no other file of the project (code, checkpoints)."""
    for path in (Path(fonts.__file__), Path(app.__file__), next(Path("checkpoints").resolve().glob("*/config.json"))):
        assert get(url.rstrip("/") + fonts.FILE_ROUTE + str(path.resolve()))[0] == 403


@pytest.mark.skipif(fonts.font_url() not in app.CSS, reason="app.py does not declare the CJK @font-face yet (issue #16)")
def test_page_and_figures_put_the_cjk_face_before_generic_families():
    """Wherever the app's CSS, theme or figures name the CJK face, it precedes every generic family."""
    from demo_core import figures

    assert fonts.font_face_css() in app.CSS
    stacks = [m.group(1) for m in re.finditer(r"font-family:\s*([^;}]+)", app.CSS) if fonts.CJK_FAMILY in m.group(1)]
    for stack in [*stacks, app.THEME.font, figures.FONT["family"]]:
        assert cjk_before_generics(stack), stack


@pytest.mark.skipif(not CHROMIUM.exists() or not LATIN_FONT_DIR.is_dir(),
                    reason=f"needs Debian's chromium at {CHROMIUM} and fonts-dejavu-core at {LATIN_FONT_DIR}")
def test_chinese_renders_with_the_web_font_when_no_system_font_has_it(tmp_path):
    """Chromium with only Latin system fonts draws Chinese page text with the served web font."""
    from playwright.sync_api import sync_playwright

    (tmp_path / "fonts.conf").write_text(
        f'<?xml version="1.0"?><fontconfig><dir>{LATIN_FONT_DIR}</dir>'
        f'<include ignore_missing="yes">/etc/fonts/conf.d</include><cachedir>{tmp_path / "cache"}</cachedir></fontconfig>')
    gr.set_static_paths(paths=[fonts.STATIC_DIR])
    with gr.Blocks(analytics_enabled=False) as page_app:
        gr.HTML(f'<p id="zh" style="font-family: {fonts.FIGURE_FONT_FAMILY}">{CHINESE}</p>')
    port = free_port()
    page_app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=fonts.font_face_css())
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"],
                                        env=dict(os.environ, FONTCONFIG_FILE=str(tmp_path / "fonts.conf")))
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#zh")
            page.evaluate("document.fonts.ready")
            page.wait_for_function("() => [...document.fonts].some(f => f.status === 'loaded' && f.family.includes('CJK'))")
            cdp = page.context.new_cdp_session(page)
            cdp.send("DOM.enable")
            cdp.send("CSS.enable")
            root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
            node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#zh"})["nodeId"]
            used = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
            browser.close()
    finally:
        close(page_app)
    web = [f for f in used if f["isCustomFont"]]
    assert web and web[0]["familyName"] == "Noto Sans CJK SC"
    assert sum(f["glyphCount"] for f in web) == len(CHINESE)  # every character, punctuation included
