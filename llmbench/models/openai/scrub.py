"""Keeping the API key out of everything an API sends back.

A server can echo the key in an error body ("invalid key Bearer sk-..."), in a header we
keep, or even in an answer (a misconfigured proxy, a prompt-injected model). Whatever comes
back is stored in the results DB, the response cache, JSON exports and the HTML site, so
every text from the API goes through ``KeyScrubber.scrub`` *before* it is cut to length:
cutting first can leave a fragment of the key at the cut that no longer matches the whole
key (the bug this module fixes).

Forms removed:

* the key itself;
* its base64 (standard and URL-safe alphabets) at any alignment, so the key inside a
  longer encoded blob (``Basic base64(user:key)``, a JWT-like echo) is found too;
* its URL-encoded forms (``quote``, ``quote_plus``; upper- and lower-case hex);
* fragments: any run of at least ``FRAGMENT`` characters of the key (a server or proxy
  that cut its own message in the middle of the key, a key split across two fields).

Keys shorter than ``MIN_SECRET`` characters (``EMPTY``, ``none``: placeholders for local
servers that ignore keys) are not secrets and are not scrubbed from answers, which would
otherwise change scores wherever a model writes that word.
"""

from __future__ import annotations

import base64
import re
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET = 8
FRAGMENT = 12


def _base64_forms(secret: bytes) -> set[str]:
    """The part of base64(prefix + secret + suffix) that depends only on ``secret``, for each
    of the three alignments of the secret in the encoded stream."""
    forms: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + secret).decode()
        first_group = -(-offset // 3)  # groups that contain prefix bytes are not the secret's
        last_group = (offset + len(secret)) // 3  # nor is a trailing partial group
        core = encoded[first_group * 4 : last_group * 4]
        if len(core) >= FRAGMENT:
            forms.add(core)
            forms.add(core.replace("+", "-").replace("/", "_"))
    return forms


def _url_forms(secret: str) -> set[str]:
    forms = {quote(secret, safe=""), quote_plus(secret, safe="")}
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms}
    return forms


class KeyScrubber:
    """Removes one secret, in every form listed in the module docstring, from text."""

    def __init__(self, secret: str) -> None:
        self._active = len(secret) >= MIN_SECRET
        self._secret = secret
        forms = {secret} | _url_forms(secret) | _base64_forms(secret.encode()) if self._active else set()
        forms.discard("")
        # longest first, so a whole-key match wins over the fragment pass
        self._pattern = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))) \
            if forms else None
        size = min(FRAGMENT, len(secret))
        self._grams = {secret[i : i + size] for i in range(len(secret) - size + 1)} if self._active else set()

    def scrub(self, text: str) -> str:
        """``text`` with every form of the secret replaced by ``***``."""
        if not self._active or not text:
            return text
        assert self._pattern is not None
        text = self._pattern.sub(MASK, text)
        return self._scrub_fragments(text)

    def scrub_error(self, text: str, limit: int) -> str:
        """Scrub, then cut to ``limit`` characters: the order is the point."""
        clean = " ".join(self.scrub_always(text).split())
        return clean if len(clean) <= limit else clean[: limit - 1] + "…"

    def scrub_always(self, text: str) -> str:
        """Like ``scrub``, but a short placeholder key is removed too: an error message is
        never scored, so being strict costs nothing there."""
        if not self._active:
            return text.replace(self._secret, MASK) if self._secret else text
        return self.scrub(text)

    def _scrub_fragments(self, text: str) -> str:
        """Replace every maximal run of the secret's characters that contains one of its
        ``FRAGMENT``-grams (found with ``str.find``: a few C-speed scans per text)."""
        spans: list[tuple[int, int]] = []
        secret = self._secret
        for gram in self._grams:
            start = text.find(gram)
            while start != -1:
                spans.append(self._grow(text, start, len(gram), secret))
                start = text.find(gram, start + 1)
        if not spans:
            return text
        spans.sort()
        out, pos = [], 0
        for a, b in spans:
            if b <= pos:
                continue
            out.append(text[pos:max(a, pos)])
            out.append(MASK)
            pos = b
        out.append(text[pos:])
        return "".join(out)

    @staticmethod
    def _grow(text: str, start: int, size: int, secret: str) -> tuple[int, int]:
        """Extend the match ``text[start:start+size]`` left and right while it stays a
        substring of the secret."""
        a, b = start, start + size
        while a > 0 and text[a - 1 : b] in secret:
            a -= 1
        while b < len(text) and text[a : b + 1] in secret:
            b += 1
        return a, b
