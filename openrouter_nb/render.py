"""Model text made safe to show: sanitized HTML, terminal text, fenced code (pure functions).

Model output is untrusted (a prompt-injected page can make a model write anything), and
JupyterLab does not sanitize the outputs of a cell the user has just run, so this module is
the only defence. It does not patch patterns: Markdown is parsed by a CommonMark parser
(markdown-it-py) that escapes every raw HTML tag (``html=False``) and emits only tags of its
own; every link and image target is then checked the way a browser reads it.

- :func:`to_html`: sanitized HTML in a ``<div class="orn-md">``. Links only ``http``,
  ``https``, ``mailto`` or relative; images only ``http``, ``https`` or
  ``data:image/(png|jpeg|gif|webp)``; anything else is shown as text.
- :func:`terminal_text`: no ANSI/C1 control sequence, no control character but ``\\n``, ``\\t``.
- :func:`code_blocks`: the fenced code blocks, as the parser sees them; :func:`fenced` writes
  one that no backtick inside can close.

Everything is linear in the length of the text. markdown-it-py is linear, but pure Python: on
markup-dense text it spends up to ~65 µs a line or markup character, so only the longest
prefix whose estimated cost fits :data:`BUDGET_MS` is parsed as Markdown; the rest is shown,
escaped, as plain text (with a note saying so).
"""

from __future__ import annotations

import functools
import html
import re
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from markdown_it import MarkdownIt
    from markdown_it.rules_core import StateCore

BUDGET_MS = 200.0  # estimated worst-case Markdown parsing time of one render
PREVIEW_BUDGET_MS = 50.0  # while an answer streams (re-rendered up to 15 times a second)
MAX_NESTING = 20  # markdown-it's guard against deep nesting (quotes, lists, brackets)
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
IMAGE_SCHEMES = frozenset({"http", "https"})

# -- URLs as a browser reads them -------------------------------------------------------------------
_C0_OR_SPACE = "".join(map(chr, range(0x21)))
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp)[;,]", re.IGNORECASE)


def url_scheme(url: str) -> str | None:
    """The scheme a browser reads in ``url`` (lower case), or None for a relative URL.

    As the WHATWG URL parser does: leading and trailing C0 controls and spaces are dropped,
    tabs and newlines anywhere are removed, then ``scheme:`` is read. ``url`` is the attribute
    value after entity decoding.
    """
    match = _SCHEME.match(_TAB_OR_NEWLINE.sub("", url.strip(_C0_OR_SPACE)))
    return match.group(1).lower() if match else None


def link_allowed(url: str) -> bool:
    """A link target we emit: ``http``, ``https``, ``mailto`` or relative (``#x``, ``a/b``)."""
    scheme = url_scheme(url)
    return scheme is None or scheme in LINK_SCHEMES


def image_allowed(url: str) -> bool:
    """An image source we emit: ``http``, ``https`` or a PNG/JPEG/GIF/WebP ``data:`` URL."""
    scheme = url_scheme(url)
    if scheme == "data":
        return bool(_DATA_IMAGE.match(_TAB_OR_NEWLINE.sub("", url.strip(_C0_OR_SPACE))))
    return scheme in IMAGE_SCHEMES


# -- the parser -------------------------------------------------------------------------------------
class _Destination:
    __slots__ = ("lines", "ok", "pos", "str")  # markdown-it-py 3 also reads ``lines`` (always 0)

    def __init__(self) -> None:
        self.ok, self.pos, self.lines, self.str = False, 0, 0, ""


_DEST_STOP = re.compile(r"[\x00-\x20\x7f\\()]")


def _link_destination(string: str, pos: int, maximum: int) -> Any:
    """markdown-it's ``parseLinkDestination``, skipping ordinary characters with a regex.

    The original steps through every character in Python, and a run of ``[](`` can make it
    rescan the same text up to 32 times (its parenthesis limit); same results, ~30x less work.
    """
    from markdown_it import helpers
    from markdown_it.common.utils import unescapeAll

    if string.startswith("<", pos):
        return helpers.parseLinkDestination(string, pos, maximum)
    result, start, level = _Destination(), pos, 0
    while True:
        stop = _DEST_STOP.search(string, pos, maximum)
        if stop is None:
            pos = maximum
            break
        pos, char = stop.start(), stop.group()
        if char == "\\" and pos + 1 < maximum:
            if string[pos + 1] == " ":
                break
            pos += 2
        elif char == "\\":
            pos += 1
        elif char == "(":
            level += 1
            if level > 32:
                return result
            pos += 1
        elif char == ")" and level:
            level -= 1
            pos += 1
        else:  # a space, a control character or an unbalanced ")"
            break
    if pos == start or level:
        return result
    result.ok, result.pos, result.str = True, pos, unescapeAll(string[start:pos])
    return result


def _enforce_targets(state: StateCore) -> None:
    """Core rule: per-kind target policy (``validateLink`` cannot tell links from images)."""
    for block in state.tokens:
        for token in block.children or ():
            if token.type == "link_open" and not link_allowed(str(token.attrGet("href") or "")):
                token.attrs.pop("href", None)
            elif token.type == "image" and not image_allowed(str(token.attrGet("src") or "")):
                token.type, token.tag, token.attrs, token.children = "text", "", {}, None
                token.content = f"[image: {token.content}]" if token.content else "[image]"


@functools.cache
def _parser(inline: bool = True) -> MarkdownIt:
    """CommonMark, raw HTML escaped, only safe targets; tables and strikethrough on.

    Built on first use (markdown-it costs ~80 ms to import). ``inline=False``: blocks only,
    what :func:`code_blocks` needs.
    """
    from markdown_it import MarkdownIt, helpers

    class SafeMarkdown(MarkdownIt):
        def validateLink(self, url: str) -> bool:
            return link_allowed(url) or image_allowed(url)

    parser = SafeMarkdown("commonmark", {"html": False, "maxNesting": MAX_NESTING,
                                         "linkify": False, "typographer": False})
    parser.enable(["table", "strikethrough"])
    parser.helpers = SimpleNamespace(  # type: ignore[assignment]
        parseLinkDestination=_link_destination, parseLinkLabel=helpers.parseLinkLabel,
        parseLinkTitle=helpers.parseLinkTitle)
    if inline:
        parser.core.ruler.after("inline", "orn_targets", _enforce_targets)
    else:
        parser.disable(["inline", "text_join"])
    return parser

# -- the cost bound ---------------------------------------------------------------------------------
# Worst cases measured on markdown-it-py 4.3 on a busy 2-core machine: ~65 µs a line ("1. a",
# one-column table rows), ~30 µs a markup character ("![", "[" or "*_" repeated), ~0.3 µs a
# character (long reference labels, runs of spaces). Plain prose costs ~0.03 µs a character.
_US_PER_LINE, _US_PER_MARK, _US_PER_CHAR = 65.0, 30.0, 0.3
_MARKS = "!#$%&*+-:<=>@[\\]^_`{|}~()"
_DROP_MARKS = str.maketrans("", "", _MARKS + "\n")
_CHUNK = 512


def _cost_us(chunk: str) -> float:
    lines = chunk.count("\n")
    marks = len(chunk) - len(chunk.translate(_DROP_MARKS)) - lines
    return lines * _US_PER_LINE + marks * _US_PER_MARK + len(chunk) * _US_PER_CHAR


def markdown_extent(text: str, budget_ms: float = BUDGET_MS) -> int:
    """How much of ``text`` to parse as Markdown: a prefix that fits ``budget_ms``.

    The prefix ends at a line end when the text has one before the point where the budget
    runs out. The whole text when it fits.
    """
    budget, spent = budget_ms * 1000.0, 0.0
    for start in range(0, len(text), _CHUNK):
        spent += _cost_us(text[start:start + _CHUNK])
        if spent > budget:
            line_end = text.rfind("\n", 0, start)
            return line_end + 1 if line_end >= 0 else start
    return len(text)


# -- views ------------------------------------------------------------------------------------------
def to_html(text: str, *, budget_ms: float = BUDGET_MS) -> str:
    """``text`` (Markdown) as sanitized HTML in a ``<div class="orn-md">``.

    No tag the text writes survives (all are escaped), no script or ``data:`` link does.
    Past the part that fits ``budget_ms``, the text is shown as escaped plain text.
    """
    extent = markdown_extent(text, budget_ms)
    body = _parser().render(text[:extent])
    if extent < len(text):
        rest = len(text) - extent
        body += (f'<p class="orn-rest"><em>The last {rest:,} characters are shown as plain '
                 f"text: too long to render as Markdown.</em></p>\n{pre_html(text[extent:])}")
    return f'<div class="orn-md">\n{body}</div>'


def pre_html(text: str) -> str:
    """``text`` as escaped, wrapped preformatted HTML."""
    return f'<pre style="white-space:pre-wrap">{html.escape(text)}</pre>'


def code_html(code: str, lang: str = "") -> str:
    """A code block, as markdown-it renders a fence (``lang`` escaped into its class)."""
    attr = f' class="language-{html.escape(lang)}"' if lang else ""
    return f"<pre><code{attr}>{html.escape(code, quote=False)}</code></pre>"


_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI, e.g. colours, cursor moves, clear screen
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC DCS SOS PM APC
    r"|\x1b[ -/]*[0-~]?"  # other escape sequences (charsets, reset, keypad...)
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal_text(text: str) -> str:
    """``text`` safe to print on a terminal: escape sequences and control characters removed.

    CSI, OSC (titles, OSC 8 hyperlinks, OSC 52 clipboard), DCS, SOS, PM and APC sequences go
    whole; so do C1 controls (U+0080-U+009F) and every C0 control but ``\\n`` and ``\\t``.
    A carriage return becomes a line end (it could otherwise overwrite what came before).
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def code_blocks(text: str, *, budget_ms: float = BUDGET_MS) -> list[tuple[str, str]]:
    """``(language, code)`` of every fenced code block, in order, as CommonMark reads them.

    Only fences count (not indented code); ``code`` has no final line end. ``[]`` when the
    text has none. Blocks past the part that fits ``budget_ms`` are not looked at.
    """
    if "```" not in text and "~~~" not in text:
        return []
    from markdown_it.common.utils import unescapeAll

    blocks = []
    for token in _parser(inline=False).parse(text[:markdown_extent(text, budget_ms)]):
        if token.type == "fence":
            info = unescapeAll(token.info).strip()
            code = token.content[:-1] if token.content.endswith("\n") else token.content
            blocks.append((info.split(maxsplit=1)[0] if info else "", code))
    return blocks


_BACKTICKS = re.compile(r"`+")
_LANG_CHARS = re.compile(r"[^\w+#.-]")


def fenced(code: str, lang: str = "") -> str:
    """A Markdown code block whose fence is longer than any backtick run inside ``code``.

    ``lang`` keeps only word characters and ``+#.-``; so :func:`code_blocks` reads back
    exactly ``(lang, code)``.
    """
    longest = max((len(run) for run in _BACKTICKS.findall(code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{_LANG_CHARS.sub('', lang)}\n{code}\n{fence}"
