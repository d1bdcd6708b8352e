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
* its hex (lower- and upper-case) of the UTF-8 bytes, as a server that dumps raw bytes
  writes it;
* fragments: any run of at least ``FRAGMENT`` characters of the key, or of ``2 * FRAGMENT``
  characters of its hex (a server or proxy that cut its own message in the middle of the key,
  a key split across two fields).

``Scrubber`` removes several secrets at once: the API key and the password of the base URL
(``http://user:PASS@host``), which ``redact_url`` also removes from the URL itself before it is
stored. ``ScrubLogs`` applies a scrubber to the log records of the HTTP stack (``httpx`` and
the ``openai`` client log URLs and response headers at INFO/DEBUG).

Keys shorter than ``MIN_SECRET`` characters (``EMPTY``, ``none``: placeholders for local
servers that ignore keys) are not secrets and are not scrubbed from answers, which would
otherwise change scores wherever a model writes that word.
"""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

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


def _hex_forms(secret: str) -> set[str]:
    raw = secret.encode().hex()
    return {raw, raw.upper()}


def _grams(whole: str, size: int) -> set[str]:
    size = min(size, len(whole))
    return {whole[i : i + size] for i in range(len(whole) - size + 1)}


class KeyScrubber:
    """Removes one secret, in every form listed in the module docstring, from text."""

    def __init__(self, secret: str) -> None:
        self._active = len(secret) >= MIN_SECRET
        self._secret = secret
        hexes = _hex_forms(secret) if self._active else set()
        forms = ({secret} | _url_forms(secret) | _base64_forms(secret.encode()) | hexes
                 if self._active else set())
        forms.discard("")
        # longest first, so a whole-key match wins over the fragment pass
        self._pattern = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))) \
            if forms else None
        # (whole, its grams): a fragment is a run of ``whole`` that contains one of the grams
        self._fragments: list[tuple[str, set[str]]] = []
        if self._active:
            self._fragments.append((secret, _grams(secret, FRAGMENT)))
            self._fragments += [(h, _grams(h, 2 * FRAGMENT)) for h in sorted(hexes)]

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
        """Replace every maximal run of the secret's characters (or of its hex) that contains
        one of its grams (found with ``str.find``: a few C-speed scans per text)."""
        spans: list[tuple[int, int]] = []
        for whole, grams in self._fragments:
            for gram in grams:
                start = text.find(gram)
                while start != -1:
                    spans.append(self._grow(text, start, len(gram), whole))
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


class Scrubber:
    """Several secrets (the API key, the base URL's password) removed at once, with the same
    methods as ``KeyScrubber``; an empty secret is skipped."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self._parts = [KeyScrubber(s) for s in dict.fromkeys(secrets) if s]

    def scrub(self, text: str) -> str:
        for part in self._parts:
            text = part.scrub(text)
        return text

    def scrub_always(self, text: str) -> str:
        for part in self._parts:
            text = part.scrub_always(text)
        return text

    def scrub_error(self, text: str, limit: int) -> str:
        clean = " ".join(self.scrub_always(text).split())
        return clean if len(clean) <= limit else clean[: limit - 1] + "…"


#: Query parameters whose value is a credential (Azure's ``api-key``, ``?key=`` gateways, ...).
_SECRET_PARAM = re.compile(r"(.*[-_.])?(key|token|secret|password|passwd|pwd|signature|sig|auth|"
                           r"authorization|credentials?)", re.I)


def url_secrets(url: str) -> list[str]:
    """The credentials written into ``url``: the userinfo's password and the values of
    query parameters named like keys (``api-key``, ``token``, ...), percent-decoded (the
    scrubber removes their URL-encoded forms too)."""
    try:
        parts = urlsplit(url)
        found = [unquote(parts.password)] if parts.password else []
    except ValueError:  # a malformed port or host: nothing can be read from it safely
        return []
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=False) if _SECRET_PARAM.fullmatch(k)]
    return found


def redact_url(url: str) -> str:
    """``url`` as it may be stored and shown: the password of ``user:PASS@host`` and the
    values of key-like query parameters replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return MASK
    netloc = parts.netloc
    if password:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{MASK}@{host}"
    pairs = []
    for pair in parts.query.split("&"):
        name, eq, _ = pair.partition("=")
        pairs.append(f"{name}={MASK}" if eq and _SECRET_PARAM.fullmatch(unquote(name)) else pair)
    query = "&".join(pairs)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_urls(value: object) -> object:
    """``value`` (JSON-like: dicts, lists, strings) with ``redact_url`` applied to every string
    that looks like an http(s) URL; for configs stored with a run (``base_url`` options)."""
    if isinstance(value, str):
        return redact_url(value) if re.match(r"(?i)https?://", value) else value
    if isinstance(value, dict):
        return {k: redact_urls(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_urls(v) for v in value]
    return value


class ScrubLogs(logging.Filter):
    """Rewrites a log record's message through ``scrubber`` (so ``%s`` arguments such as a
    URL with a password or response headers echoing the key are scrubbed too)."""

    #: Logger families of the HTTP stack (``httpx``, ``httpx2``, ``httpcore.http11``, the
    #: ``openai`` client). A filter is not inherited by child loggers, so it is put on every
    #: logger of these families that exists when the adapter starts (they are created when
    #: their modules are imported, which the adapter's own imports have done by then).
    PREFIXES = ("openai", "httpx", "httpcore", "llmbench.models.openai")
    #: httpcore creates its trace loggers (``httpcore.http11``, ...) on the first request, after
    #: the adapter starts: those are named here (``getLogger`` later returns the same object).
    TRACE = tuple(f"{base}.{part}" for base in ("httpcore", "httpcore2")
                  for part in ("http11", "http2", "connection", "connection_pool", "proxy", "socks"))

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own error path
            return True
        clean = self.scrubber.scrub_always(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True

    def _loggers(self) -> list[logging.Logger]:
        names = set(logging.root.manager.loggerDict) | set(self.PREFIXES) | set(self.TRACE)
        return [logging.getLogger(n) for n in sorted(names) if n.startswith(self.PREFIXES)]

    def install(self) -> None:
        self._installed = self._loggers()
        for logger in self._installed:
            logger.addFilter(self)

    def remove(self) -> None:
        for logger in getattr(self, "_installed", []):
            logger.removeFilter(self)
        self._installed = []
