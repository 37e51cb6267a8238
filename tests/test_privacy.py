"""The sensitive-input guard: recall and precision on a labelled corpus, masking, speed."""

from __future__ import annotations

import dataclasses
import re
import sys
import time

import pytest

from openrouter_nb import privacy
from openrouter_nb.privacy import KINDS, Finding, describe, scan
from tests.data.privacy_corpus import NEGATIVES, OR_KEY, POSITIVES, fake


def _show(text: str, findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start:f.end]) for f in findings]


def test_corpus_covers_every_kind() -> None:
    assert len(POSITIVES) >= 60 and len(NEGATIVES) >= 80
    kinds = [kind for _, kind in POSITIVES]
    assert set(kinds) == set(KINDS)
    assert all(kinds.count(k) >= 3 for k in KINDS)


@pytest.mark.parametrize(("text", "kind"), POSITIVES, ids=lambda v: v[:30] if isinstance(v, str) else v)
def test_positive_found_with_right_kind(text: str, kind: str) -> None:
    findings = scan(text)
    assert {f.kind for f in findings} == {kind}, _show(text, findings)


@pytest.mark.parametrize("text", NEGATIVES, ids=lambda v: v[:30])
def test_negative_has_no_finding(text: str) -> None:
    assert scan(text) == [], _show(text, scan(text))


def test_precision_and_recall_over_corpus() -> None:
    tp = fn = fp = 0
    for text, kind in POSITIVES:
        findings = scan(text)
        hit = any(f.kind == kind for f in findings)
        tp, fn = tp + hit, fn + (not hit)
        fp += sum(f.kind != kind for f in findings)
    fp_negatives = sum(len(scan(text)) for text in NEGATIVES)
    fp += fp_negatives
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    print(f"\nprivacy corpus: precision={precision:.3f} recall={recall:.3f} "
          f"({len(POSITIVES)} positives, {len(NEGATIVES)} negatives)")
    assert recall == 1.0
    assert fp_negatives == 0
    assert precision == 1.0


@pytest.mark.parametrize(("text", "kind"), POSITIVES, ids=lambda v: v[:30] if isinstance(v, str) else v)
def test_masking_never_reveals_the_value(text: str, kind: str) -> None:
    for f in scan(text):
        value = text[f.start:f.end]
        assert value not in f.masked
        if f.kind == "email":
            local = value.partition("@")[0]
            assert len(local) < 2 or local[1:] not in f.masked
        else:
            middle = value[4:-2]
            assert middle and middle not in f.masked, (value, f.masked)
        if f.kind not in ("email", "phone", "card_number", "private_key"):
            assert len(f.masked.replace("…", "")) <= 6  # at most the first 4 and last 2
        assert f.kind in KINDS and len(f.masked) <= 40


def test_mask_shapes() -> None:
    text = (f"key {OR_KEY} mail john@example.com card 4242 4242 4242 4242 "
            "tel +44 20 7946 0912 iban DE89 3704 0044 0532 0130 00")
    masks = {f.kind: f.masked for f in scan(text)}
    assert masks == {"openrouter_key": "sk-o…ab", "email": "j…@example.com",
                     "card_number": "•••• 4242", "phone": "+44 •••• ••12", "iban": "DE89…00"}


def test_findings_sorted_and_deduplicated() -> None:
    text = f'OPENROUTER_API_KEY="{OR_KEY}"  # owner: ops@example.com'
    findings = scan(text)
    assert [f.kind for f in findings] == ["openrouter_key", "email"]  # not also generic_secret
    assert findings[0].start < findings[1].start
    assert findings[0].label == "OpenRouter API key"


def test_describe_names_findings_and_override() -> None:
    text = f"use {OR_KEY} and write to j.doe@example.com"
    sentence = describe(scan(text))
    assert sentence.startswith("Found an OpenRouter API key (sk-o…ab) and an e-mail address "
                               "(j…@example.com).")
    assert "Nothing was sent" in sentence
    assert "--allow-sensitive" in sentence and "allow_sensitive=True" in sentence
    assert OR_KEY not in sentence
    one = describe(scan("call 555-123-4567"))
    assert one.startswith("Found a phone number (•••• ••67).") and "Remove it," in one
    many = describe(scan(" ".join(f"{n}@example.com" for n in ("ann", "bob", "cy", "dee", "eve", "fay"))))
    assert "and 3 more" in many
    assert describe([]) == "No sensitive data found."


def _big_prompt(size: int = 200_000) -> str:
    parts, total, i = [], 0, 0
    while total < size:
        chunk = NEGATIVES[i % len(NEGATIVES)]
        parts.append(chunk)
        total += len(chunk) + 2
        i += 1
    return "\n\n".join(parts)


def test_scan_of_200kb_prompt_is_fast_and_clean() -> None:
    prompt = _big_prompt()
    assert len(prompt) >= 200_000
    t0 = time.perf_counter()
    findings = scan(prompt)
    elapsed = time.perf_counter() - t0
    print(f"\nscan of {len(prompt) // 1000} KB prompt: {elapsed * 1000:.0f} ms")
    assert findings == []
    assert elapsed < 2.0


_PATHOLOGICAL = [
    "a" * 100_000 + "@",                                # e-mail local part with no domain
    "x." * 50_000 + "@example",                         # dotted run, no TLD
    "1 " * 50_000,                                      # digits and separators (phone, card)
    "1-" * 50_000 + "x",
    "(1) " * 30_000,
    "password" * 20_000 + "=",                          # secret-name prefix run
    "a_" * 50_000 + "token = ",
    fake(200_000, 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),  # IBAN / AWS look-alike run
    fake(200_000, 2, "abcdefghijklmnopqrstuvwxyz0123456789+/="),  # base64 blob
    "eyJ" + "a" * 100_000 + ".eyJ" + "b" * 100_000,     # JWT without signature dot
    "-----BEGIN PRIVATE KEY-----\n" + "A" * 20 + "\n" * 100_000,  # PEM without END
    "https://" + "u" * 100_000 + ":" + "p" * 100_000,   # URL credentials without @
    " ".join(f"user{i}@example.com 555-123-{i:04d}" for i in range(5_000)),  # many findings
]


@pytest.mark.parametrize("text", _PATHOLOGICAL, ids=[f"case{i}" for i in range(len(_PATHOLOGICAL))])
def test_no_catastrophic_backtracking(text: str) -> None:
    t0 = time.perf_counter()
    scan(text)
    assert time.perf_counter() - t0 < 2.0


def test_hints_skip_only_detectors_that_cannot_match() -> None:
    """Each detector's hint words are in every text it matches: with the hints the scan finds
    exactly what it finds without them (corpus, pathological cases, look-alikes in capitals)."""
    unhinted = tuple(dataclasses.replace(d, hints=()) for d in privacy._DETECTORS)
    texts = [text for text, _ in POSITIVES] + NEGATIVES + _PATHOLOGICAL[:7] + [
        f'PASSWORD = "Tr0ub4dor&3x" and ApiKey: Zq8vLr2mXw9P and AWS_SECRET_ACCESS_KEY={"A1b2" * 10}',
        'paſsword = "Tr0ub4dor&3x"', 'prİvate_key = "Zq8vLr2mXw9PkT4n"',
        'apı_key = "Zq8vLr2mXw9PkT4n"', "ACCESS_KEY: Zq8vLr2mXw9PkT4n1"]
    hinted = [scan(text) for text in texts]
    original = privacy._DETECTORS
    try:
        privacy._DETECTORS = unhinted
        assert [scan(text) for text in texts] == hinted
    finally:
        privacy._DETECTORS = original


def test_case_folding_of_hints_matches_the_regex_engine() -> None:
    """``_folded`` maps a character to an ASCII letter of the hints exactly when a
    case-insensitive pattern matches it to that letter (all of Unicode, one char each)."""
    every = "".join(map(chr, range(sys.maxunicode + 1)))
    folded = privacy._folded(every)
    assert len(folded) == len(every)
    for letter in sorted(set("".join(privacy._NAME_HINTS) + "aws")):
        by_regex = {m.start() for m in re.finditer(f"(?i:{letter})", every)}
        by_fold = {m.start() for m in re.finditer(letter, folded)}
        assert by_regex == by_fold, letter
