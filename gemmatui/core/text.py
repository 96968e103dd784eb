"""The one sanitiser for untrusted text: a model's reply, a server's error message.

Such text must never drive the terminal it is shown in, nor the file or clipboard it is
copied to. A reply containing ``ESC ] 52 ; c ; <base64> BEL`` would write the user's
clipboard, ``ESC ] 0 ; … BEL`` the window title, ``ESC [ 2 J`` would wipe the screen; a
prompt injected through a pasted document is enough to make a model write them.

:func:`sanitize` (a whole text) and :class:`Sanitizer` (a stream, fed chunk by chunk, a
sequence split between two chunks still recognised) keep newline, tab and printable text
and remove:

* C0 control characters (``U+0000``–``U+001F`` but ``\\n`` and ``\\t``) and DEL;
* ESC-introduced sequences: CSI (``ESC [`` … final byte), OSC (``ESC ]``), DCS
  (``ESC P``), SOS (``ESC X``), PM (``ESC ^``) and APC (``ESC _``) strings with their
  BEL or ST terminator, two- and three-character escapes, and a lone ESC;
* C1 controls (``U+0080``–``U+009F``), whose 8-bit CSI/OSC/DCS… forms start the same
  sequences and are removed with them;
* lone UTF-16 surrogates (JSON can carry them; no terminal encoding can write them),
  replaced by ``U+FFFD``.

The bidirectional overrides and isolates (``U+202A``–``U+202E``, ``U+2066``–``U+2069``),
which can make text read differently from what it is ("Trojan Source"), are replaced by
``U+FFFD`` so that they show, and act, as what they are: something removed.

The output never contains ESC, a C1 control or another C0 control than newline and
tab; sanitising it again changes nothing. The history keeps the raw text: sanitise
where text meets a terminal, a file a person opens or the clipboard, not before storing.

>>> sanitize("red \\x1b[31mtext\\x1b[0m\\r\\n\\x1b]52;c;UFdORUQ=\\x07ok\\tdone")
'red text\\nok\\tdone'
>>> s = Sanitizer()
>>> s.feed("a\\x1b]0;ti"), s.feed("tle\\x07b")
('a', 'b')
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "REPLACEMENT",
    "Sanitizer",
    "error_message",
    "error_text",
    "sanitize",
    "sanitize_line",
]

#: What a bidi control or a lone surrogate becomes.
REPLACEMENT = "\ufffd"

_ESC = "\x1b"
_BEL = "\x07"
_ST_8BIT = "\x9c"
_CSI_8BIT = "\x9b"
# ESC + one of these starts a control string that runs until BEL or ST (ESC \\ or 0x9C).
_STRING_STARTERS = frozenset("]PX^_")
# The 8-bit forms of the same: DCS, SOS, OSC, PM, APC.
_C1_STRINGS = frozenset("\x90\x98\x9d\x9e\x9f")
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

# Parser states.
_TEXT, _AFTER_ESC, _CSI, _INTERMEDIATE, _STRING, _STRING_ESC = range(6)


def _plain(char: str) -> bool:
    """Whether ``char`` passes through untouched (the fast path)."""
    code = ord(char)
    if code < 0x20:
        return char == "\n" or char == "\t"
    if code < 0x7F:
        return True
    if code <= 0x9F:
        return False
    return not (0xD800 <= code <= 0xDFFF) and char not in _BIDI


class Sanitizer:
    """Sanitises a stream of text chunk by chunk (see the module's documentation).

    The parser state carries over between chunks, so ``ESC [ 3`` at the end of one
    chunk and ``1 m`` at the start of the next are removed together.

    Attributes:
        MAX_STRING: An unterminated OSC/DCS/… string would swallow the rest of a reply;
            after this many characters the parser gives up on it and shows text again.
    """

    MAX_STRING = 4096

    __slots__ = ("_state", "_string_length")

    def __init__(self) -> None:
        self._state = _TEXT
        self._string_length = 0

    @property
    def pending(self) -> bool:
        """Whether a sequence is open (what follows may still be part of it)."""
        return self._state != _TEXT

    def feed(self, text: str) -> str:
        """The safe part of ``text``, remembering a sequence left open at its end."""
        if self._state == _TEXT and all(map(_plain, text)):
            return text
        out: list[str] = []
        for char in text:
            self._step(char, out)
        return "".join(out)

    def _step(self, char: str, out: list[str]) -> None:
        code = ord(char)
        state = self._state
        if state == _TEXT:
            if _plain(char):
                out.append(char)
            elif char == _ESC:
                self._state = _AFTER_ESC
            elif char == _CSI_8BIT:
                self._state = _CSI
            elif char in _C1_STRINGS:
                self._start_string()
            elif char in _BIDI or 0xD800 <= code <= 0xDFFF:
                out.append(REPLACEMENT)
            # any other C0 / DEL / C1 control: dropped
        elif state == _AFTER_ESC:
            if char == "[":
                self._state = _CSI
            elif char in _STRING_STARTERS:
                self._start_string()
            elif 0x20 <= code <= 0x2F:  # ESC ( B and other three-character escapes
                self._state = _INTERMEDIATE
            elif 0x30 <= code <= 0x7E:  # ESC 7, ESC c, ...: two characters, done
                self._state = _TEXT
            elif char != _ESC:  # a lone ESC before text: drop the ESC, keep the text
                self._state = _TEXT
                self._step(char, out)
        elif state == _CSI or state == _INTERMEDIATE:
            if (0x40 if state == _CSI else 0x30) <= code <= 0x7E:  # final byte
                self._state = _TEXT
            elif not 0x20 <= code <= 0x3F:  # broken sequence: end it, judge the char anew
                self._state = _TEXT
                self._step(char, out)
        else:  # inside an OSC/DCS/SOS/PM/APC string, or just after an ESC in one
            self._string_length += 1
            ends = char == _BEL or char == _ST_8BIT or (state == _STRING_ESC and char == "\\")
            if ends or self._string_length > self.MAX_STRING:
                self._state = _TEXT
            else:
                self._state = _STRING_ESC if char == _ESC else _STRING

    def _start_string(self) -> None:
        self._state = _STRING
        self._string_length = 0


def sanitize(text: str) -> str:
    """``text`` made safe for a terminal, a file or the clipboard (see the module docs).

    A sequence left open at the end of ``text`` is dropped with it.
    """
    if all(map(_plain, text)):
        return text
    return Sanitizer().feed(text)


def sanitize_line(text: str, limit: int = 300) -> str:
    """Untrusted text for a one-line message (an error a server sent, say).

    Sanitised, with runs of whitespace (newlines included) folded to one space, and cut
    to ``limit`` characters with an ellipsis.

    >>> sanitize_line("model \\x1b[2Jfailed:\\n  out of   memory")
    'model failed: out of memory'
    """
    line = " ".join(sanitize(text).split())
    if len(line) > limit:
        line = line[: max(limit - 1, 0)].rstrip() + "…"
    return line


# --------------------------------------------------------------------------- server errors


def error_text(body: str) -> str:
    """The message of an error answer, sanitised to one line.

    Ollama's ``{"error": "..."}``, an OpenAI-style error object (llama-server's
    ``{"error": {"message": ...}}``), or the body itself (plain-text 404/405 pages).

    >>> error_text('{"error":{"message":"File Not Found","type":"not_found_error","code":404}}')
    'File Not Found'
    >>> error_text("404 page not found\\n")
    '404 page not found'
    """
    import json

    try:
        data = json.loads(body)
    except ValueError:
        return sanitize_line(body)
    if isinstance(data, dict) and (data.get("error") or data.get("message")):
        return error_message(data.get("error") or data.get("message"))
    return sanitize_line(body)


def error_message(error: Any) -> str:
    """The ``error`` of an answer as one safe line: a string as it is, an error object's
    ``message`` (OpenAI style, as llama-server sends it), anything else as JSON.

    >>> error_message({"message": "File Not Found", "type": "not_found_error", "code": 404})
    'File Not Found'
    >>> error_message("model 'x' not found\\x1b[2J")
    "model 'x' not found"
    """
    if isinstance(error, dict):
        for key in ("message", "error", "detail"):
            value = error.get(key)
            if isinstance(value, str) and value.strip():
                return sanitize_line(value)
    if not isinstance(error, str):
        import json

        try:
            error = json.dumps(error, ensure_ascii=False)
        except (TypeError, ValueError):
            error = repr(error)
    return sanitize_line(error)
