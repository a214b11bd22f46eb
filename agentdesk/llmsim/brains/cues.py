"""Cues in a support message that a careful reader uses and a keyword reader trips over.

Each detector is a plain function of the text. ``reading`` uses them to read a task the way
a strong tier does; ``ambiguity`` uses the same functions to call a task hard where a
keyword reading can go wrong (what a tier then reports is the declared error model).
"""

from __future__ import annotations

import re

from .text import contains_phrase, order_numbers

REFUND_WORDS = frozenset(
    {"refund", "refunds", "refunded", "return", "returns", "returned", "returning"}
)
NEGATORS = frozenset(
    {"don't", "dont", "do not", "not", "no", "without", "never", "won't", "isn't"}
)
# Words that may sit between a negator and the refund word: "not *asking for a* refund".
NEGATION_FILLER = frozenset(
    {"want", "need", "asking", "looking", "for", "a", "to", "get", "interested", "in",
     "requesting", "after", "expecting", "i", "am", "i'm", "it", "any", "my", "money", "the"}
)
NEGATION_WINDOW = 5
_WORD_RE = re.compile(r"[a-z0-9']+")
_PUNCTUATION_RE = re.compile(r"[.,;:!?]")

REQUEST_PHRASES: tuple[str, ...] = (
    "i want", "i'd like", "i would like", "please refund", "refund it", "refund my",
    "refund order", "give me my money back", "i need a refund",
)
POLICY_QUESTION_RE = re.compile(
    r"\bpolicy\b|\bhow (?:do|can|does|long|soon|many days)\b"
    r"|\bwhat(?:'s| is| are) the (?:rules|process|window|deadline)\b",
    re.IGNORECASE,
)
POLICY_TOPICS: tuple[tuple[str, str], ...] = (
    ("return", "returns.md"),
    ("refund", "refund-policy.md"),
    ("money back", "refund-policy.md"),
    ("ship", "shipping.md"),
    ("deliver", "shipping.md"),
    ("arriv", "shipping.md"),
)
_MONEY_RE = re.compile(
    r"(?:[$€£]\s?(?P<a>\d+(?:[.,]\d{1,2})?))|(?:(?P<b>\d+(?:[.,]\d{1,2})?)\s?(?:dollars|usd|eur|euros)\b)",
    re.IGNORECASE,
)
_AMOUNT_BACK_RE = re.compile(r"[$€£]\s?\d+(?:[.,]\d{1,2})?\s+back\b")
PROBLEM_PHRASES: tuple[str, ...] = (
    "broken", "broke", "damaged", "cracked", "defective", "faulty", "wrong", "missing",
    "never arrived", "never came", "stopped working", "doesn't work", "smashed", "torn",
)
_PARENS_RE = re.compile(r"\([^)]*\)")
_CLAUSE_RE = re.compile(r"[.;!?,]|\s-\s|\bbut\b|\band\b|\bwhile\b|\bwhereas\b", re.IGNORECASE)


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower().replace("’", "'"))


def _refund_positions(words: list[str]) -> list[int]:
    """Indexes of refund words, and of "money" in "money back"."""
    found = []
    for i, word in enumerate(words):
        if word in REFUND_WORDS or (word == "money" and words[i + 1 : i + 2] == ["back"]):
            found.append(i)
    return found


def _negated(words: list[str], at: int) -> bool:
    """A negator before ``at`` with only filler words in between ("no refund", "don't want
    a refund"); "it never arrived, refund it" is not a negation of the refund."""
    for back in range(1, NEGATION_WINDOW + 1):
        i = at - back
        if i < 0:
            return False
        word = words[i]
        if word in NEGATORS or " ".join(words[i : i + 2]) in NEGATORS:
            return True
        if word not in NEGATION_FILLER:
            return False
    return False


def _refund_mentions(text: str) -> list[bool]:
    """For each refund mention, whether it is negated (within its own clause)."""
    mentions = []
    for clause in _PUNCTUATION_RE.split(text):
        words = _words(clause)
        mentions.extend(_negated(words, at) for at in _refund_positions(words))
    return mentions


def asks_for_refund(text: str) -> bool:
    """A refund word that is not negated ("refund order 1001", not "I don't want a refund"),
    or an amount wanted back ("I only want $10 back")."""
    if _AMOUNT_BACK_RE.search(text):
        return True
    return any(not negated for negated in _refund_mentions(text))


def negated_refund(text: str) -> bool:
    """The message mentions a refund only to say it does not want one."""
    return any(_refund_mentions(text))


def policy_question(text: str) -> bool:
    """A question about how refunds, returns or shipping work, not a request to act."""
    if not POLICY_QUESTION_RE.search(text):
        return False
    if contains_phrase(text, REQUEST_PHRASES):
        return False
    lowered = text.lower()
    return any(topic in lowered for topic, _ in POLICY_TOPICS)


def policy_topic(text: str) -> str | None:
    """The knowledge document a policy question is about (its earliest topic word)."""
    lowered = text.lower()
    hits = [(lowered.find(topic), doc) for topic, doc in POLICY_TOPICS if topic in lowered]
    return min(hits)[1] if hits else None


def money_amounts(text: str) -> list[float]:
    """Explicit amounts: "$40", "40 dollars", "€12.50"."""
    amounts = []
    for match in _MONEY_RE.finditer(text):
        raw = (match.group("a") or match.group("b")).replace(",", ".")
        amounts.append(float(raw))
    return amounts


def singled_out_order(text: str) -> str | None:
    """With several order numbers: the one whose clause asks for the refund or names the
    problem ("1001 is fine but 1042 arrived broken"), when exactly one does."""
    candidates: list[str] = []
    # a list in parentheses, "(2001, 1077)", is one mention of several orders, not clauses
    text = _PARENS_RE.sub(lambda m: m.group(0).replace(",", " "), text)
    for clause in _CLAUSE_RE.split(text):
        numbers = order_numbers(clause)
        if numbers and (asks_for_refund(clause) or contains_phrase(clause, PROBLEM_PHRASES)):
            candidates.extend(numbers)
    distinct = list(dict.fromkeys(candidates))
    return distinct[0] if len(distinct) == 1 else None
