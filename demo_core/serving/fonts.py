"""The CJK web font the page ships, so Chinese text renders on machines without CJK system fonts.

The page's own fonts (Montserrat from the theme, Inter or the system sans-serif in figures) are
Latin only, so a browser with no CJK font installed draws every Han character in a tick label as
an empty box. ``static/NotoSansSC-subset.woff2`` is a subset of Noto Sans CJK SC Regular (SIL Open
Font License 1.1, see ``static/FONT-LICENSE.txt``) holding every character the Chinese models'
vocabularies and cards use plus the common characters of modern Chinese; it is built by
``python tools/subset_cjk_font.py``. The app serves the folder as Gradio static files and the
``@font-face`` rule below limits the font to CJK code points (``unicode-range``), so a browser
fetches it only for a page that shows CJK text, and Latin text never changes face.

No gradio import here (``demo_core`` never imports it): the app registers :data:`STATIC_DIR` with
``gr.set_static_paths`` and adds :func:`font_face_css` to its CSS.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import quote

STATIC_DIR = Path(__file__).resolve().parent / "static"
FONT_FILE = STATIC_DIR / "NotoSansSC-subset.woff2"
FONT_MIME = "font/woff2"
CJK_FAMILY = "Explorer CJK"
CJK_FAMILY_CSS = f"'{CJK_FAMILY}'"  # as a font list writes it (a theme's ``font`` takes it as a plain string)
FILE_ROUTE = "/gradio_api/file="  # Gradio 6 serves allowed and static files at this route

# Code points the font is used for (inclusive): radicals, CJK punctuation, the unified ideographs
# with extension A, compatibility ideographs and forms, full-width punctuation and letters.
CJK_RANGES: tuple[tuple[int, int], ...] = (
    (0x2E80, 0x2FDF),  # CJK radicals supplement, Kangxi radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation: 、。《》「」
    (0x3400, 0x4DBF),  # CJK unified ideographs extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # half-width and full-width forms: ，！？（）
)

# Name the CJK face right after the Latin one, before any generic or system family (in the page's
# theme font and CSS too): named after ``sans-serif`` or ``system-ui``, Chromium 156 with no CJK
# system font left Han text as empty boxes (tests/test_fonts.py). ``unicode-range`` keeps it off Latin text.
FIGURE_FONT_FAMILY = f"Inter, {CJK_FAMILY_CSS}, system-ui, sans-serif"

# Gradio types a served file with ``mimetypes``; slim Python images have no /etc/mime.types,
# where .woff2 would go out as application/octet-stream.
mimetypes.add_type(FONT_MIME, ".woff2")


def is_cjk(char: str) -> bool:
    """True for a character in :data:`CJK_RANGES`, the code points the CJK font is used for."""
    code = ord(char)
    return any(start <= code <= end for start, end in CJK_RANGES)


def unicode_range() -> str:
    """:data:`CJK_RANGES` as a CSS ``unicode-range`` value, e.g. ``U+2E80-2FDF, U+3000-303F, …``."""
    return ", ".join(f"U+{start:04X}-{end:04X}" for start, end in CJK_RANGES)


def font_url(font_file: Path = FONT_FILE) -> str:
    """Where a Gradio app that registered :data:`STATIC_DIR` as a static path serves ``font_file``.

    The route takes the file's absolute path; it is root-relative, which suits an app served at
    the root of its host (a Space, ``python app.py``).
    """
    return FILE_ROUTE + quote(font_file.resolve().as_posix())


def font_face_css(font_file: Path = FONT_FILE) -> str:
    """The ``@font-face`` rule that declares :data:`CJK_FAMILY` (regular weight; bold is synthesised)."""
    return (
        "@font-face {\n"
        f"  font-family: {CJK_FAMILY_CSS};\n"
        f"  src: url('{font_url(font_file)}') format('woff2');\n"
        "  font-weight: 400;\n"
        "  font-style: normal;\n"
        "  font-display: swap;\n"
        f"  unicode-range: {unicode_range()};\n"
        "}\n"
    )
