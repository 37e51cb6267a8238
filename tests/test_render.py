"""Rendering untrusted model text: every view, checked by parsing what it emits.

Each payload of tests/data/xss_corpus.py goes through every view (``to_html``, the stream
preview, the final answer in each ``--format``, ``Answer``'s repr, the compare view, error
messages, ``terminal_text``). The HTML is parsed with ``html.parser.HTMLParser`` and held to
an allow-list of elements and attributes, with link and image targets read the way a browser
reads them (entities decoded, edge controls and spaces dropped, tabs and newlines removed).
Hypothesis adds random text rich in markup and control characters.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openrouter_nb.api.errors import MinuteRateLimit
from openrouter_nb.api.types import StreamDelta
from openrouter_nb.notebook.compare_view import CompareView
from openrouter_nb.notebook.display import (
    FORMATS,
    StreamingDisplay,
    answer_bundle,
    error_bundle,
    extract_code,
)
from openrouter_nb.render import (
    BUDGET_MS,
    code_blocks,
    fenced,
    markdown_extent,
    terminal_text,
    to_html,
    url_scheme,
)
from tests.data.xss_corpus import PAYLOADS

from .conftest import make_answer

# Hypothesis: derandomized (the same examples on every run, so CI cannot flake), no example
# database written into the work tree, no deadline (a busy 2-core machine is not a bug).
PROPERTY = settings(max_examples=300, derandomize=True, database=None, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

# -- the checker: what a browser would do with the HTML ----------------------------------------------
# Elements and attributes our views emit; anything else is a finding.
ALLOWED: dict[str, set[str]] = {
    "div": {"class", "style"}, "p": {"class"}, "span": {"style"}, "small": {"style"},
    "pre": {"style"}, "code": {"class"}, "a": {"href", "title"}, "img": {"src", "alt", "title"},
    "em": set(), "strong": set(), "b": set(), "s": set(), "br": set(), "hr": set(),
    "h1": set(), "h2": set(), "h3": set(), "h4": set(), "h5": set(), "h6": set(),
    "ul": set(), "ol": {"start"}, "li": set(), "blockquote": set(),
    "table": set(), "thead": set(), "tbody": set(), "tr": set(), "th": {"style"}, "td": {"style"},
    "details": {"open", "style"}, "summary": set(),  # the folded reasoning
}
FORBIDDEN = {"script", "iframe", "frame", "object", "embed", "style", "base", "meta", "form",
             "link", "svg", "math", "template", "input", "button", "textarea", "applet"}
_STYLE = re.compile(r"[a-z-]+:[#\w .%-]+(;[a-z-]+:[#\w .%-]+)*;?")  # no url(), quotes, escapes
_EDGES = "".join(map(chr, range(0x21)))
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|gif|webp)[;,]", re.IGNORECASE)
_PLAIN_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def browser_url(value: str) -> tuple[str | None, str]:
    """(scheme or None, cleaned URL) of an attribute value already entity-decoded."""
    cleaned = re.sub(r"[\t\n\r]", "", value.strip(_EDGES))
    match = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", cleaned)
    return (match.group(1).lower() if match else None), cleaned


class Checker(HTMLParser):
    """Collects every unsafe thing in a document (attribute values arrive entity-decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.findings: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in FORBIDDEN or tag not in ALLOWED:
            self.findings.append(f"element <{tag}>")
            return
        for name, value in attrs:
            value = value or ""
            if name.startswith("on") or name not in ALLOWED[tag]:
                self.findings.append(f"attribute {name} on <{tag}>")
            elif name == "style" and not _STYLE.fullmatch(value):
                self.findings.append(f"style {value!r}")
            elif name == "href":
                scheme, _ = browser_url(value)
                if scheme not in (None, "http", "https", "mailto"):
                    self.findings.append(f"href {value!r}")
            elif name == "src":
                scheme, cleaned = browser_url(value)
                if scheme not in ("http", "https") and not _DATA_IMAGE.match(cleaned):
                    self.findings.append(f"src {value!r}")

    handle_startendtag = handle_starttag

    def handle_comment(self, data: str) -> None:
        self.findings.append("comment")

    def handle_decl(self, decl: str) -> None:
        self.findings.append("declaration")

    def handle_pi(self, data: str) -> None:
        self.findings.append("processing instruction")

    def unknown_decl(self, data: str) -> None:
        self.findings.append("CDATA or unknown declaration")


def html_findings(document: str) -> list[str]:
    checker = Checker()
    checker.feed(document)
    checker.close()
    return checker.findings


def plain_findings(text: str) -> list[str]:
    return [f"control {char!r}" for char in set(_PLAIN_UNSAFE.findall(text))]


def test_checker_catches_what_it_must() -> None:
    """The checker itself: each of these must be flagged (else the suite proves nothing)."""
    bad = ["<script>x</script>", "<img src=x onerror=alert(1)>", "<iframe src=//e>",
           '<a href="jav&#x61;script:x">a</a>', '<a href=" \x01java\tscript:x">a</a>',
           '<img src="data:image/svg+xml,x">', '<a href="data:text/html,x">a</a>',
           '<div style="background:url(javascript:x)">', "<!-- c -->", "<![CDATA[x]]>",
           "<base href=//e>", "<meta http-equiv=refresh>", "<form>", "<object>", "<embed>",
           "<style>x</style>", '<img src="/relative.png">', '<p onclick="x">']
    for document in bad:
        assert html_findings(document), document
    good = ('<div class="orn-md"><p><a href="https://x.example/a?b=1&amp;c">a</a> '
            '<a href="#top">t</a> <a href="mailto:a@b.example">m</a> <a href="rel/x">r</a> '
            '<img src="data:image/png;base64,AA" alt="i" /></p></div>')
    assert html_findings(good) == []
    assert plain_findings("a\x1b[2Jb\x9bc") and plain_findings("ok\n\ttext") == []


# -- every view ------------------------------------------------------------------------------------
class Recorder:
    def __init__(self) -> None:
        self.bundles: list[dict[str, str]] = []

    def show(self, bundle: dict[str, str], *, updatable: bool) -> None:
        self.bundles.append(bundle)

    def update(self, bundle: dict[str, str]) -> None:
        self.bundles.append(bundle)


class Shell:
    next_input: str | None = None

    def set_next_input(self, text: str, replace: bool = False) -> None:
        self.next_input = text


class SteppingClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def streamed(text: str, fmt: str) -> list[dict[str, str]]:
    """Every bundle a live stream of ``text`` shows: waiting line, re-ask, reasoning, preview,
    final (``text`` is also the reasoning)."""
    target = Recorder()
    view = StreamingDisplay(live=True, fmt=fmt, target=target, clock=SteppingClock(),
                            shell=Shell())
    view.start("openrouter/free")
    view.on_delta(StreamDelta(text[: len(text) // 2]))
    view.on_event("reask", {"error": text, "attempt": 1})
    view.on_delta(StreamDelta(text, kind="reasoning"))
    view.on_delta(StreamDelta(text))
    view.finish(make_answer(text, reasoning=f"{text}."))
    return target.bundles


def compare_html(text: str) -> list[str]:
    view = CompareView(["a/b:free", "c/d:free"],
                       [make_answer(text, model=text[:80]), MinuteRateLimit(text)])
    return [child.value for column in view.columns for child in column.children]


def all_views(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(HTML outputs, text/plain outputs) of ``text`` in every view, by name."""
    htmls: dict[str, str] = {"to_html": to_html(text)}
    plains: dict[str, str] = {"terminal_text": terminal_text(text)}
    answers = {"": make_answer(text), " with data and reasoning": make_answer(
        text, validated=True, data={"text": text, "c1": "\x9b\x85"}, model=text[:80],
        reasoning=f"{text}.")}
    for label, answer in answers.items():
        htmls[f"Answer._repr_html_{label}"] = answer._repr_html_()
        for fmt in FORMATS:
            bundle, _ = answer_bundle(answer, fmt)
            htmls[f"final {fmt}{label}"] = bundle["text/html"]
            plains[f"final {fmt}{label}"] = bundle["text/plain"]
    for fmt in FORMATS:
        for index, bundle in enumerate(streamed(text, fmt)):
            plains[f"stream {fmt} #{index}"] = bundle["text/plain"]
            if "text/html" in bundle:
                htmls[f"stream {fmt} #{index}"] = bundle["text/html"]
    for index, value in enumerate(compare_html(text)):
        htmls[f"compare #{index}"] = value
    error = MinuteRateLimit(text)
    error.partial_text = text
    bundle = error_bundle(error)
    htmls["error"], plains["error"] = bundle["text/html"], bundle["text/plain"]
    return htmls, plains


def assert_safe(text: str) -> None:
    htmls, plains = all_views(text)
    findings = {name: found for name, html in htmls.items() if (found := html_findings(html))}
    findings |= {name: found for name, plain in plains.items() if (found := plain_findings(plain))}
    assert not findings, f"{text!r}: {findings}"


def test_corpus_is_large_enough() -> None:
    assert len(PAYLOADS) >= 60
    assert len({name for name, _ in PAYLOADS}) == len(PAYLOADS)


@pytest.mark.parametrize("text", [text for _, text in PAYLOADS],
                         ids=[name for name, _ in PAYLOADS])
def test_payload_is_safe_in_every_view(text: str) -> None:
    assert_safe(text)


def test_every_view_is_checked() -> None:
    htmls, plains = all_views("*hi*")
    assert len(htmls) >= 20 and len(plains) >= 15
    assert all("<em>hi</em>" in htmls[name] for name in ("to_html", "final markdown",
                                                         "Answer._repr_html_", "compare #2"))


# -- hostile random text ----------------------------------------------------------------------------
_TOKENS = ["<", ">", "&", '"', "'", "`", "```", "~~~", "    ", ":", "[", "]", "(", ")", "*",
           "_", "~", "!", "#", "|", "-", "=", "\\", "/", ";", "\n", "\t", " ", "a", "1",
           "javascript", "JaVaScRiPt", "vbscript", "data", "image/svg+xml", "image/png",
           "script", "img", "svg", "iframe", "onerror=", "onload=", "src=", "href=", "alert(1)",
           "&#x61;", "&#10;", "&#9;", "&colon;", "&#0;", "&lt;", "http://x", "mailto:",
           "<!--", "-->", "<![CDATA[", "\x00", "\x01", "\x07", "\x1b", "\x1b[", "\x1b]",
           "\x0b", "\x0c", "\r", "\x7f", "\x85", "\x9b", "\x9c", "\x9d", "\u2028", "\u00a0"]
_CHARS = "<>&\"'`:[]()*_~\n\t !#|\\/=;javscriptdmgeo\x00\x01\x1b\x0b\x0c\r\x7f\x85\x9b\x9c\u2028"
hostile_text = st.one_of(st.lists(st.sampled_from(_TOKENS), max_size=60).map("".join),
                         st.text(alphabet=_CHARS, max_size=200))


@PROPERTY
@given(hostile_text)
def test_random_text_never_yields_unsafe_html(text: str) -> None:
    findings = html_findings(to_html(text))
    for fmt in FORMATS:
        bundle, _ = answer_bundle(make_answer(text), fmt)
        findings += html_findings(bundle["text/html"]) + plain_findings(bundle["text/plain"])
    findings += html_findings(make_answer(text)._repr_html_())
    assert not findings, f"{text!r}: {findings}"


@PROPERTY
@given(hostile_text)
def test_random_text_in_stream_and_compare_views(text: str) -> None:
    findings = [found for bundle in streamed(text, "markdown")
                for found in html_findings(bundle.get("text/html", ""))
                + plain_findings(bundle["text/plain"])]
    findings += [found for html in compare_html(text) for found in html_findings(html)]
    assert not findings, f"{text!r}: {findings}"


@settings(PROPERTY, max_examples=500)
@given(st.text(alphabet=st.characters(max_codepoint=0x2030), max_size=120) | hostile_text)
def test_terminal_text_leaves_no_control(text: str) -> None:
    assert plain_findings(terminal_text(text)) == []


@PROPERTY
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")) | st.sampled_from("\n\t"),
               max_size=200))
def test_terminal_text_keeps_printable_text(text: str) -> None:
    assert terminal_text(text) == text


@PROPERTY
@given(st.text(alphabet=st.characters(blacklist_characters="\r\x00", blacklist_categories=("Cs",)),
               max_size=200),
       st.text(max_size=12))
def test_fenced_reads_back_exactly(code: str, lang: str) -> None:
    clean = re.sub(r"[^\w+#.-]", "", lang)
    assert code_blocks(fenced(code, lang)) == [(clean, code)]


@PROPERTY
@given(st.text(alphabet="()\\ <>\na\x01\x7f[]", max_size=40), st.integers(0, 40))
def test_link_destination_matches_markdown_it(text: str, start: int) -> None:
    from markdown_it.helpers import parseLinkDestination

    from openrouter_nb.render import _link_destination

    start = min(start, len(text))
    ours, theirs = _link_destination(text, start, len(text)), parseLinkDestination(text, start,
                                                                                   len(text))
    assert (ours.ok, ours.pos, ours.str) == (theirs.ok, theirs.pos, theirs.str)


# -- what still renders -----------------------------------------------------------------------------
ORDINARY = """# Title

Some *emphasis*, **strong**, ~~struck~~ and `code`.

## List

1. one
2. two
   - nested

> quoted

| name | n |
|------|--:|
| a    | 1 |

```python
print("<b>")
```

A [link](https://example.com/a?b=1&c=2 "t"), an [anchor](#title), [mail](mailto:a@b.example),
a [relative](docs/x.md), <https://auto.example> and ![img](https://example.com/i.png).

---
"""


def test_ordinary_markdown_still_renders() -> None:
    html = to_html(ORDINARY)
    assert html.startswith('<div class="orn-md">') and html.endswith("</div>")
    for part in ("<h1>Title</h1>", "<h2>List</h2>", "<em>emphasis</em>", "<strong>strong</strong>",
                 "<s>struck</s>", "<code>code</code>", "<ol>", "<li>one</li>", "<ul>",
                 "<blockquote>", "<th>name</th>", '<td style="text-align:right">1</td>',
                 '<pre><code class="language-python">print(&quot;&lt;b&gt;&quot;)',
                 '<a href="https://example.com/a?b=1&amp;c=2" title="t">link</a>',
                 '<a href="#title">anchor</a>', '<a href="mailto:a@b.example">mail</a>',
                 '<a href="docs/x.md">relative</a>',
                 '<a href="https://auto.example">https://auto.example</a>',
                 '<img src="https://example.com/i.png" alt="img" />', "<hr />"):
        assert part in html, part
    assert html_findings(html) == []


def test_blocked_targets_show_as_text() -> None:
    html = to_html("[a](javascript:alert(1)) [d](data:image/png;base64,AA) ![i](/x.png) "
                   "![s](data:image/svg+xml,x) <vbscript:x>")
    assert "[a](javascript:alert(1))" in html  # not a link: the text as written
    assert "<a>d</a>" in html  # a data: URL is an image source, never a link target
    assert "[image: i]" in html and "![s](data:image/svg+xml,x)" in html
    assert "&lt;vbscript:x&gt;" in html and "href" not in html and "src" not in html
    assert '<img src="data:image/webp;base64,AA" alt="w" />' in to_html(
        "![w](data:image/webp;base64,AA)")


def test_raw_html_is_text() -> None:
    html = to_html('<script>alert(1)</script>\n\n<div onclick="x">hi</div>')
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;div onclick=&quot;x&quot;&gt;hi&lt;/div&gt;" in html


@pytest.mark.parametrize(("url", "scheme"), [
    ("javascript:x", "javascript"), (" \x01JaVa\tScRiPt:x", "javascript"),
    ("java\nscript:x", "javascript"), ("java%09script:x", None), ("java script:x", None),
    ("/a:b", None), ("#x", None), ("//host/x", None), ("HTTPS://x", "https"), ("", None),
    ("data:image/png;base64,x", "data"), ("1http:x", None),
])
def test_url_scheme_reads_like_a_browser(url: str, scheme: str | None) -> None:
    assert url_scheme(url) == scheme


# -- fences, code and JSON --------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "blocks"), [
    ("no fence here", []),
    ("```py\nprint(1)\n```\ntext\n~~~\nx\n~~~", [("py", "print(1)"), ("", "x")]),
    ("```\na\n~~~\nb\n```", [("", "a\n~~~\nb")]),  # a tilde line does not close backticks
    ("````\na\n```\nb\n````", [("", "a\n```\nb")]),  # nor does a shorter fence
    ("```a`b\nc", []),  # a backtick in the info string: not an opening fence
    ("    ```\n    a\n    ```", []),  # indented four spaces: an indented code block
    ("\t```\na\n\t```", []),
    ("- ```js\n  x\n  ```", [("js", "x")]),  # in a list item
    ("> ```\n> q\n> ```", [("", "q")]),
    ("```\nunclosed", [("", "unclosed")]),  # runs to the end, as CommonMark says
    ("``` python  extra words\nx\n```", [("python", "x")]),
    ("```\n```", [("", "")]),
])
def test_code_blocks_as_commonmark_reads_them(text: str, blocks: list[tuple[str, str]]) -> None:
    assert code_blocks(text) == blocks


def test_fenced_outlasts_backticks_inside() -> None:
    assert fenced("a ```` b", "py").startswith("`````py\n")
    assert fenced("x", "a`b c<d>") == "```abcd\nx\n```"


def test_code_format_takes_only_a_fenced_block() -> None:
    shell = Shell()
    view = StreamingDisplay(live=False, fmt="code", target=Recorder(), shell=shell)
    assert view.finish(make_answer("Here:\n```bash\nls\n```\nand\n```py\nx = 1\n```")) == "ls"
    assert shell.next_input == "ls"
    assert extract_code("```py\nx = 1\n```") == ("x = 1", "py")
    assert extract_code("x = 1  # no fence") is None


def test_code_format_without_a_fence_says_so_and_offers_nothing() -> None:
    shell, target = Shell(), Recorder()
    view = StreamingDisplay(live=False, fmt="code", target=target, shell=shell)
    assert view.finish(make_answer("<b>just prose</b>")) is None
    assert shell.next_input is None
    bundle = target.bundles[-1]
    assert "no fenced code block" in bundle["text/plain"]
    assert "no fenced code block" in bundle["text/html"]
    assert "&lt;b&gt;just prose&lt;/b&gt;" in bundle["text/html"]


def test_json_format_prefers_the_fenced_block() -> None:
    bundle, _ = answer_bundle(make_answer('Sure:\n```json\n{"a": "<b>\\u009b"}\n```'), "json")
    assert bundle["text/plain"].startswith('{\n  "a": "<b>\\u009b"\n}')  # C1 kept escaped
    assert '<pre><code class="language-json">{\n  "a": "&lt;b&gt;' in bundle["text/html"]


def test_json_format_survives_deep_nesting() -> None:
    bundle, _ = answer_bundle(make_answer("[" * 100_000), "json")
    assert "not valid JSON" in bundle["text/plain"]


# -- the cost bound ---------------------------------------------------------------------------------
def test_markdown_extent_bounds_dense_markup() -> None:
    assert markdown_extent(ORDINARY * 20) == len(ORDINARY * 20)  # 7 KB of dense Markdown
    dense = "![" * 500_000
    extent = markdown_extent(dense)
    assert 0 < extent < 20_000  # ~30 µs a mark: a 200 ms budget covers under 7,000 marks
    lines = "1. a\n" * 200_000
    assert markdown_extent(lines) % 5 == 0  # cut at a line end
    assert markdown_extent(lines, budget_ms=BUDGET_MS / 5) < markdown_extent(lines)


def test_past_the_budget_text_is_plain_and_escaped() -> None:
    text = "- item\n" * 20_000 + "<script>alert(1)</script> [x](javascript:x)\n"
    html = to_html(text)
    assert "shown as plain text" in html and "<pre" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and html_findings(html) == []
    assert html.count("<li>") == markdown_extent(text) // len("- item\n")


def test_deep_nesting_is_cut_not_crashed() -> None:
    for text in (">" * 100_000 + " x", "[" * 50_000 + "x" + "](y)" * 50_000,
                 "- " * 50_000 + "x", "*" * 100_000 + "x"):
        assert html_findings(to_html(text)) == []


# -- terminal text ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("a\x1b[31mred\x1b[0m", "ared"),
    ("\x1b[2J\x1b[Hclear", "clear"),
    ("\x1b]0;title\x07answer", "answer"),
    ("\x1b]52;c;ZXZpbA==\x1b\\answer", "answer"),
    ("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),
    ("\x9b2Jx\x9d0;t\x9cy", "xy"),
    ("\x1bPdcs\x1b\\\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\z", "z"),
    ("\x1bcreset", "reset"),
    ("rm -rf ~\rls", "rm -rf ~\nls"),
    ("a\r\nb", "a\nb"),
    ("a\x00b\x07c\x7fd\x85e", "abcde"),
    ("tab\tand\nnewline", "tab\tand\nnewline"),
    ("ok \x1b]0;never terminated", "ok "),
    ("trailing escape\x1b", "trailing escape"),
])
def test_terminal_text(text: str, expected: str) -> None:
    assert terminal_text(text) == expected


def test_answer_has_no_markdown_repr() -> None:
    answer = make_answer("**hi** <script>")
    assert not hasattr(answer, "_repr_markdown_")
    assert "<strong>hi</strong> &lt;script&gt;" in answer._repr_html_()
