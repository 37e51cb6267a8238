"""Sensitive-input guard: find secrets and personal data in a prompt before it is sent.

:func:`scan` returns :class:`Finding` objects (kind, span, masked value); :func:`describe`
turns them into the one-sentence refusal the session shows. Detection is a regex per kind
plus validation (Luhn, IBAN mod-97, JWT header, phone-number shape, placeholder filter),
tuned to stay quiet on code, dates, versions, hashes, IP addresses and ordinary numbers.
Every pattern is anchored by a look-behind, so scanning stays linear. Stdlib only.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["KINDS", "Finding", "describe", "scan"]

KINDS = ("openrouter_key", "openai_key", "anthropic_key", "aws_access_key", "github_token",
         "private_key", "jwt", "email", "phone", "card_number", "iban", "generic_secret")


@dataclass(frozen=True)
class Finding:
    """One piece of sensitive data: its kind, human label, span in the text and masked value."""

    kind: str
    label: str
    start: int
    end: int
    masked: str


Span = tuple[int, int]
Check = Callable[[re.Match[str]], Span | None]  # span of the sensitive value, or None


@dataclass(frozen=True)
class _Detector:
    kind: str
    label: str
    pattern: re.Pattern[str]
    check: Check
    mask: Callable[[str], str]
    #: Every match contains one of these words (in the case-folded text when ``folded``): a
    #: text without any is not searched. Most patterns open with a look-behind, which keeps
    #: the regex engine from skipping ahead to a literal, so this saves most of a scan.
    hints: tuple[str, ...] = ()
    folded: bool = False


def _mask_secret(value: str) -> str:
    """At most the first 4 and last 2 characters, fewer for short values."""
    head, tail = min(4, len(value) // 4), min(2, len(value) // 8)
    return value[:head] + "…" + (value[-tail:] if tail else "")


def _mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    if not value.startswith("+"):
        return f"•••• ••{digits[-2:]}"
    first = re.match(r"\+(\d+)", value)
    cc = first.group(1) if first and len(first.group(1)) <= 3 else digits[:2]
    return f"+{cc} •••• ••{digits[-2:]}"


def _when(pred: Callable[[str], bool], group: int | str = 0) -> Check:
    """A check accepting the match (span of ``group``) when ``pred`` holds for its text."""
    return lambda m: m.span(group) if pred(m.group(group)) else None


def _looks_random(value: str, min_run: int = 16) -> bool:
    """A long alphanumeric run with digits or mixed case: a key, not a word or placeholder."""
    run = max((len(r) for r in re.findall(r"[A-Za-z0-9]+", value)), default=0)
    mixed = any(c.isdigit() for c in value) or (value.lower() != value != value.upper())
    return run >= min_run and mixed and not re.search(r"(?i)xxxx|your|\.\.\.|…|[<{$]", value)


_PLACEHOLDER = re.compile(
    r"^[<{\[$%]|xxxx|\*\*\*|\.\.\.|…|your[-_ ]|change[-_]?me|placeholder|example|redacted|"
    r"replace[-_]?me|dummy|\{\{|environ|getenv|process\.env|secrets\.|^(?:none|null|undefined)$",
    re.IGNORECASE)


def _is_placeholder(value: str) -> bool:
    """``<key>``, ``xxxx``, ``${VAR}``, ``changeme``, an ENV_VAR_NAME and the like."""
    caps_name = re.fullmatch(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+", value)
    return bool(_PLACEHOLDER.search(value) or caps_name) or len(set(value.lower())) <= 2


def _in_code(m: re.Match[str]) -> bool:
    """A bare number used as an operand, argument or table cell (``= n``, ``f(n)``, ``n * x``)."""
    before, after = m.string[max(0, m.start() - 20):m.start()], m.string[m.end():m.end() + 20]
    return bool(re.search(r"[\d=(\[,*/+\-]\s*$", before) or re.match(r"\s*[)\]*/]", after))


def _jwt_ok(token: str) -> bool:
    head = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and "alg" in header


def _luhn(digits: str) -> bool:
    doubled = (int(c) * (1 + i % 2) for i, c in enumerate(reversed(digits)))
    return sum(d - 9 if d > 9 else d for d in doubled) % 10 == 0


def _card_brand_ok(d: str) -> bool:
    """Known issuer prefix (IIN) with a length that issuer uses."""
    n, p2, p3, p4 = len(d), int(d[:2]), int(d[:3]), int(d[:4])
    if d[0] == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return n == 16
    if p2 in (34, 37):  # Amex
        return n == 15
    if p4 == 6011 or p2 in (62, 65) or 644 <= p3 <= 649 or 3528 <= p4 <= 3589:  # Discover/UP/JCB
        return 16 <= n <= 19
    return (p2 in (36, 38) or 300 <= p3 <= 305) and 14 <= n <= 19  # Diners


def _card_check(m: re.Match[str]) -> Span | None:
    value = m.group()
    if value.isdigit() and _in_code(m):
        return None
    digits, groups = re.sub(r"\D", "", value), [len(g) for g in re.split(r"[ -]", value)]
    grouped = len(set(re.findall(r"[ -]", value))) <= 1 and (
        groups in ([4, 6, 5], [4, 6, 4]) or len(groups) == 1
        or (all(g == 4 for g in groups[:-1]) and groups[-1] <= 4))
    return m.span() if grouped and _card_brand_ok(digits) and _luhn(digits) else None


_IBAN_LENGTHS = dict(re.findall(r"([A-Z]{2})(\d\d)", (
    "AD24AE23AL28AT20AZ28BA20BE16BG22BH22BR29BY28CH21CR22CY28CZ24DE22DK18DO28EE20EG29ES24FI18"
    "FO18FR27GB22GE22GI23GL18GR27GT28HR21HU28IE22IL23IQ23IS26IT27JO30KW30KZ20LB28LC32LI21LT20"
    "LU20LV21MC27MD24ME22MK19MR27MT31MU30NL18NO15PK24PL28PS29PT25QA29RO24RS22SA24SC31SE24SI19"
    "SK24SM27ST25SV28TL23TN24TR26UA29VA22VG24XK20")))


def _iban_check(m: re.Match[str]) -> Span | None:
    """The IBAN at the start of the match, cut to its country's length, if mod-97 holds."""
    text, length = m.group(), int(_IBAN_LENGTHS.get(m.group()[:2], "0"))
    chars = [i for i, ch in enumerate(text) if ch != " "]
    end = chars[length - 1] + 1 if 0 < length <= len(chars) else 0
    if not end or text[end:end + 1] not in ("", " "):
        return None
    compact = text[:end].replace(" ", "")
    numeric = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
    return (m.start(), m.start() + end) if int(numeric) % 97 == 1 else None


_FILE_EXTS = {"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "css", "js", "ts", "json",
              "lock", "whl", "gz", "tgz", "zip", "tar"}


def _email_check(m: re.Match[str]) -> Span | None:
    """Not URL userinfo (``//user@host``), a git/scp remote (``git@host:path``) or ``x@2x.png``."""
    text, domain = m.string, m.group().rpartition("@")[2]
    after = text[m.end():m.end() + 2]
    if re.search(r"//[^\s/@]*:?$", text[max(0, m.start() - 100):m.start()]) or after[:1] == "(" or (
            after[:1] == ":" and after[1:2].strip()):
        return None
    if domain.rpartition(".")[2].lower() in _FILE_EXTS or re.match(r"\d+(\.\d+)?x\.", domain):
        return None
    return m.span()


_DATE = re.compile(r"(?<!\d)(?:(?:19|20)\d\d[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]"
                   r"(?:19|20)\d\d)(?!\d)")
_NANP = re.compile(r"(?:1[-. ])?(?:\([2-9]\d\d\) ?\d{3}[-. ]\d{4}|[2-9]\d\d([-. ])\d{3}\1\d{4})")


def _phone_ok(m: re.Match[str]) -> bool:
    """International (``+cc``/``00cc``, 8-15 digits) or a national NANP / trunk-0 layout."""
    value = m.group()
    opens, closes = value.find("("), value.find(")")
    if (value[1:].isdigit() and _in_code(m)) or _DATE.search(value) or (  # code; date; IPv4
            re.fullmatch(r"\d{1,3}(?:\.\d{1,3}){3}", value)) or (
            value.count("(") != value.count(")") or value.count("(") > 1 or closes < opens) or (
            opens >= 0 and not re.fullmatch(r"\(\d{1,5}\)", value[opens:closes + 1])):
        return False
    body = value.lstrip("+(")
    seps, groups = re.findall(r"\D+", body), re.findall(r"\d+", body)
    kinds = {c for s in seps for c in s if c in " -."}
    if any(s not in (" ", "-", ".", ") ", ")", " (", ")-") for s in seps) or (
            "." in kinds and len(kinds) > 1):
        return False
    digits = "".join(groups)
    plus = value.startswith("+")
    if plus or re.match(r"00[1-9]", groups[0]):  # +cc or 00cc; no country code starts with 0
        n = len(digits) - (0 if plus else 2)
        if not 8 <= n <= 15 or (kinds == {"."} and len(groups) < 3):  # +0.3333333, +1.41421356
            return False
        return not body.startswith("0") if plus else 1 < len(groups) != sum(len(g) == 4 for g in groups)
    if len(groups) < 2 or not 9 <= len(digits) <= 12:
        return False
    if _NANP.fullmatch(value):
        return True
    pairs = all(len(g) == 2 for g in groups[1:])  # 06 12 34 56 78, 0470 12 34 56
    return (len(digits) >= 10 and bool(re.fullmatch(r"0[1-9]\d{0,3}", groups[0])) and len(kinds) == 1
            and all(2 <= len(g) <= 8 for g in groups) and (len(groups) <= 3 or pairs)
            and len(groups) <= 5 and (kinds != {"."} or pairs))


def _unquoted_ok(value: str) -> bool:
    """An unquoted value that is a literal (env file, YAML), not a code reference."""
    has_digit, has_alpha = any(c.isdigit() for c in value), any(c.isalpha() for c in value)
    dotted_name = re.fullmatch(r"[A-Za-z_]\w*(?:\.\w+)+", value)
    return has_digit and has_alpha and not dotted_name and not _is_placeholder(value)


def _quoted_ok(m: re.Match[str]) -> Span | None:
    """Any non-placeholder password; token/key values must look random (no words, no spaces)."""
    value = m.group("v")
    if _is_placeholder(value) or "{" in value or "%(" in value or value.lower() in m["name"].lower():
        return None
    if not re.search(r"(?i)pass", m.group("name")):
        classes = sum(bool(re.search(p, value)) for p in ("[a-z]", "[A-Z]", r"\d"))
        if re.search(r"\s", value) or classes < 2 or not _looks_random(value, 8):
            return None
    return m.span("v")


_NAME = (r"(?P<name>(?<![\w.\-$])(?:[A-Za-z0-9_.\-]*[_.\-]|[A-Za-z0-9]*[a-z0-9](?=[A-Z]))?"
         r"(?i:passw(?:or)?d|passphrase|secret|secret[_-]?key|api[_-]?key|access[_-]?key"
         r"|private[_-]?key|token))[\"']?")


def _d(kind: str, label: str, pattern: str, check: Check = lambda m: m.span(),
       mask: Callable[[str], str] = _mask_secret, flags: int = 0, hints: tuple[str, ...] = (),
       folded: bool = False) -> _Detector:
    return _Detector(kind, label, re.compile(pattern, flags), check, mask, hints, folded)


# The characters a case-insensitive pattern matches to an ASCII letter but str.lower() does
# not (checked over all of Unicode by tests/test_privacy.py): fold them first.
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s"})


def _folded(text: str) -> str:
    """``text`` as ``re.IGNORECASE`` sees it, for the ASCII letters of the hints."""
    return text.translate(_FOLD).lower()


#: Words one of which starts the name in every generic secret (``passw...``, ``secret``...).
_NAME_HINTS = ("pass", "secret", "api", "access", "private", "token")


# Most specific first: on overlap the earlier detector wins.
_DETECTORS = (
    _d("private_key", "private key",
       r"-----BEGIN (?:RSA |EC |OPENSSH |DSA |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?-----"
       r"(?=\s*(?:Proc-Type:|Version:|[A-Za-z0-9+/=]{12}))"
       r"(?:[\s\S]{0,20000}?-----END [A-Z ]*PRIVATE KEY(?: BLOCK)?-----"
       r"|(?:\s+(?:[A-Za-z0-9+/=]{12,}|(?:Proc-Type|DEK-Info|Version):[^\n]*))*)",
       mask=lambda v: "-----" + v.split("-----", 2)[1] + "-----…"),
    _d("openrouter_key", "OpenRouter API key", r"(?<![\w-])sk-or-v1-[0-9a-fA-F]{64}(?![0-9A-Za-z])",
       hints=("sk-or-v1-",)),
    _d("openrouter_key", "OpenRouter API key", r"(?<![\w-])sk-or-[A-Za-z0-9_\-]{20,}",
       _when(_looks_random), hints=("sk-or-",)),
    _d("anthropic_key", "Anthropic API key", r"(?<![\w-])sk-ant-[A-Za-z0-9_\-]{20,}",
       _when(_looks_random), hints=("sk-ant-",)),
    _d("github_token", "GitHub token", r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,}"
       r"|github_pat_[A-Za-z0-9_]{82,})(?![A-Za-z0-9_])", _when(lambda v: len(set(v)) > 8),
       hints=("gh", "github_pat_")),
    _d("aws_access_key", "AWS access key", r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])",
       _when(lambda v: len(set(v)) > 8), hints=("AKIA", "ASIA")),  # not AKIAXXXXXXXXXXXXXXXX
    _d("aws_access_key", "AWS secret access key",
       r"aws_?secret_?access_?key[\"']?\s*[:=]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
       _when(_looks_random, 1), flags=re.IGNORECASE, hints=("aws",), folded=True),
    _d("openai_key", "OpenAI API key",
       r"(?<![\w-])sk-(?!or-|ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}", _when(_looks_random),
       hints=("sk-",)),
    _d("jwt", "JSON Web Token",
       r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*", _when(_jwt_ok),
       hints=("eyJ",)),
    _d("iban", "IBAN", r"(?<![A-Za-z0-9])[A-Z]{2}\d\d(?:[A-Z0-9]{11,30}|(?: [A-Z0-9]{4}){2,7}"
       r"(?: [A-Z0-9]{1,3})?)(?![A-Za-z0-9])", _iban_check, lambda v: _mask_secret(v.replace(" ", ""))),
    _d("card_number", "card number", r"(?<![\w.\-+/,])\d(?:[ \-]?\d){12,18}(?!\w|[.\-,]\d)",
       _card_check, lambda v: "•••• " + re.sub(r"\D", "", v)[-4:]),
    _d("email", "e-mail address",
       r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*"
       r"\.[A-Za-z]{2,24}(?![\w-])", _email_check,
       lambda v: (v[0] if v.index("@") > 1 else "") + "…" + v[v.index("@"):], hints=("@",)),
    _d("phone", "phone number", r"(?<![\w+.\-/#$€£@,)])(?<!\d[ .\-:])"
       r"(?:\+|\()?\d[\d .\-()]{6,22}\d(?!\w|[.\-:/,]?\d)",
       lambda m: m.span() if _phone_ok(m) else None, _mask_phone),
    _d("generic_secret", "password or secret", _NAME + r"(?:\s*:\s*[A-Za-z_][\w\[\]|. ]{0,40}?)?"
       r"\s*(?::=|=>|=|:)\s*(?P<q>[\"'])(?P<v>[^\"'\n]{8,200})(?P=q)", _quoted_ok,
       hints=_NAME_HINTS, folded=True),
    _d("generic_secret", "password or secret",
       _NAME + r"\s*(?:=|:)\s*(?P<v>[A-Za-z0-9_\-./+=!@#%^*~]{8,200})(?=\s|[;&}]|$)",
       _when(_unquoted_ok, "v"), hints=_NAME_HINTS, folded=True),
    _d("generic_secret", "password in a URL", r"://[^\s:/@]+:([^\s:/@]{4,})@",
       _when(lambda v: not _is_placeholder(v) and v.lower() not in ("password", "pass", "secret"), 1)),
    _d("generic_secret", "bearer token", r"\bBearer\s+([A-Za-z0-9._~+/\-]{20,}=*)",
       _when(lambda v: _looks_random(v, 8), 1), hints=("Bearer",)),
)


def scan(text: str) -> list[Finding]:
    """Sensitive data in ``text``, sorted by start; overlaps keep the more specific finding."""
    candidates: list[tuple[int, Finding]] = []
    folded: str | None = None
    for rank, det in enumerate(_DETECTORS):
        if det.hints:
            if det.folded and folded is None:
                folded = _folded(text)
            haystack = folded if det.folded and folded is not None else text
            if not any(hint in haystack for hint in det.hints):
                continue
        for m in det.pattern.finditer(text):
            span = det.check(m)
            if span is not None:
                masked = det.mask(text[span[0]:span[1]])
                candidates.append((rank, Finding(det.kind, det.label, *span, masked)))
    kept: list[Finding] = []  # disjoint, sorted by start
    starts: list[int] = []
    for _, f in sorted(candidates, key=lambda c: (c[0], c[1].start - c[1].end, c[1].start)):
        i = bisect.bisect_left(starts, f.end)
        if i == 0 or kept[i - 1].end <= f.start:
            kept.insert(i, f)
            starts.insert(i, f.start)
    return kept


def describe(findings: list[Finding]) -> str:
    """One short refusal: what was found (masked), that nothing was sent, how to override."""
    if not findings:
        return "No sensitive data found."
    unique = list(dict.fromkeys((f.label, f.masked) for f in findings))
    items = [f"{'an' if label[0].lower() in 'aeiou' else 'a'} {label} ({masked})"
             for label, masked in unique[:3]]
    if len(unique) > 3:
        items.append(f"{len(unique) - 3} more")
    listed = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return (f"Found {listed}. Nothing was sent. Remove {'it' if len(findings) == 1 else 'them'}, "
            "or pass --allow-sensitive (allow_sensitive=True) to send anyway.")
