"""The sanitiser for untrusted text (``gemmatui.core.text``): properties and sequence kinds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gemmatui.core.text import REPLACEMENT, Sanitizer, sanitize, sanitize_line

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"

#: Any character at all, lone surrogates and every control included.
ANY_CHAR = st.characters(exclude_categories=())
#: Pieces that put the parser in each of its states (and take it out again).
FRAGMENTS = st.sampled_from(
    [
        "\x1b", "\x1b[", "\x1b]", "\x1bP", "\x1bX", "\x1b^", "\x1b_", "\x1b(", "\x1b\\",
        "\x07", "\x9b", "\x9c", "\x9d", "\x90", "\x98", "\x9e", "\x9f", "\x85", "\x7f",
        "[", "]", "0;", "52;c;UFdORUQ=", "31m", "?1049h", "2J", ";", "\r", "\n", "\t",
        "\x00", "\ud800", "\udfff", "é", "字", "😀", *BIDI,
    ]
)  # fmt: skip
#: Text as hostile as it gets: random characters mixed with sequence fragments.
HOSTILE = st.lists(st.one_of(st.text(ANY_CHAR, max_size=8), FRAGMENTS), max_size=40).map("".join)
#: Text a terminal shows as it is: no control character, surrogate or bidi control.
PRINTABLE = st.text(
    st.one_of(
        st.characters(exclude_categories=("Cc", "Cs"), exclude_characters=BIDI),
        st.sampled_from("\n\t"),
    )
)


def unsafe(char: str) -> bool:
    """Whether ``char`` must never come out of the sanitiser."""
    code = ord(char)
    return (
        (code < 0x20 and char not in "\n\t")
        or 0x7F <= code <= 0x9F  # DEL and the C1 controls
        or char in BIDI
        or 0xD800 <= code <= 0xDFFF
    )


@given(HOSTILE)
def test_output_never_holds_esc_c1_c0_bidi_or_a_surrogate(text: str) -> None:
    clean = sanitize(text)
    assert "\x1b" not in clean
    assert [c for c in clean if unsafe(c)] == []


@given(HOSTILE)
def test_sanitising_twice_changes_nothing(text: str) -> None:
    once = sanitize(text)
    assert sanitize(once) == once


@given(PRINTABLE)
def test_printable_text_is_unchanged(text: str) -> None:
    assert sanitize(text) == text
    assert Sanitizer().feed(text) == text


@given(HOSTILE, st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_streaming_in_any_pieces_equals_the_whole(text: str, cuts: list[int]) -> None:
    bounds = sorted({min(c, len(text)) for c in cuts} | {0, len(text)})
    pieces = [text[a:b] for a, b in zip(bounds, bounds[1:])]
    stream = Sanitizer()
    assert "".join(stream.feed(piece) for piece in pieces) == sanitize(text)


@given(HOSTILE)
def test_streaming_one_character_at_a_time_equals_the_whole(text: str) -> None:
    stream = Sanitizer()
    assert "".join(stream.feed(char) for char in text) == sanitize(text)


@given(HOSTILE, st.integers(min_value=1, max_value=300))
def test_a_line_is_one_safe_line_within_the_limit(text: str, limit: int) -> None:
    line = sanitize_line(text, limit)
    assert len(line) <= limit
    assert "\n" not in line and "\t" not in line
    assert [c for c in line if unsafe(c)] == []
    assert line == line.strip()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        # CSI: colours, clear screen, cursor home, private modes, a broken sequence
        ("a\x1b[31mred\x1b[0mb", "aredb"),
        ("\x1b[2J\x1b[Hwiped", "wiped"),
        ("\x1b[?1049halt screen\x1b[?1049l", "alt screen"),
        ("a\x1b[31\nb", "a\nb"),  # a control ends a broken CSI, and is judged itself
        # OSC, ended by BEL, by ESC \ (ST) and by the 8-bit ST
        ("a\x1b]52;c;UFdORUQ=\x07b", "ab"),
        ("a\x1b]0;window title\x07b", "ab"),
        ("a\x1b]2;window title\x1b\\b", "ab"),
        ("a\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),
        ("a\x1b]0;title\x9cb", "ab"),
        # DCS, SOS, PM, APC (kitty graphics)
        ("a\x1bP1$r0m\x1b\\b", "ab"),
        ("a\x1bXstart of string\x1b\\b", "ab"),
        ("a\x1b^privacy message\x1b\\b", "ab"),
        ("a\x1b_Gf=100,a=T;AAAA\x1b\\b", "ab"),
        ("a\x1b_apc ended by BEL\x07b", "ab"),
        # two- and three-character escapes, lone ESC
        ("a\x1b7b\x1b8c\x1bcd", "abcd"),
        ("\x1b(Bascii", "ascii"),
        ("a\x1b", "a"),
        ("a\x1b\nb", "a\nb"),
        ("a\x1b\x1b[31mb", "ab"),
        ("a\x1bé", "aé"),
        # 8-bit C1 forms: CSI, OSC, DCS, APC; other C1 controls
        ("a\x9b2Jb", "ab"),
        ("a\x9b31mred\x9b0m", "ared"),
        ("a\x9d0;title\x07b", "ab"),
        ("a\x9d52;c;UFdORUQ=\x9cb", "ab"),
        ("a\x90dcs\x9cb", "ab"),
        ("a\x9fapc\x1b\\b", "ab"),
        ("a\x85b\x84c\x80d", "abcd"),
        # C0 controls and DEL; newline and tab stay
        ("a\rb\x08c\x00d\x7fe\x07f", "abcdef"),
        ("line\n\tindented\n", "line\n\tindented\n"),
        # bidi overrides and isolates, lone surrogates: shown as removed
        ("if x\u202e }\u2066 {\u2069", f"if x{REPLACEMENT} }}{REPLACEMENT} {{{REPLACEMENT}"),
        ("a\ud800b", f"a{REPLACEMENT}b"),
        # printable text, including non-Latin, emoji and zero-width joiners, unchanged
        *[(text, text) for text in ("Qualité 字 😀 👩\u200d💻", "[b]not markup[/b] \u200b")],
    ],
)
def test_sequence_kinds(raw: str, clean: str) -> None:
    assert sanitize(raw) == clean


def test_an_unterminated_string_swallows_the_rest_up_to_a_limit() -> None:
    """Without BEL or ST an OSC runs on; past MAX_STRING characters text shows again."""
    assert sanitize("a\x1b]0;never ended, and the reply goes on") == "a"
    limit = Sanitizer.MAX_STRING
    assert sanitize("a\x1b]" + "x" * limit + "!visible") == "avisible"
    assert sanitize("a\x9d" + "x" * limit + "!visible") == "avisible"
    stream = Sanitizer()
    shown = [stream.feed(piece) for piece in ("a\x1b]", "x" * (limit - 1), "x!", "visible")]
    assert shown == ["a", "", "", "visible"]


def test_a_sequence_split_between_chunks_is_removed_whole() -> None:
    stream = Sanitizer()
    assert stream.feed("text \x1b") == "text "
    assert stream.pending
    assert stream.feed("]52;c;UFdO") == ""
    assert stream.feed("RUQ=\x1b") == ""
    assert stream.feed("\\more \x1b[3") == "more "
    assert stream.feed("1mred") == "red"
    assert not stream.pending


def test_sanitize_line_folds_whitespace_and_cuts() -> None:
    assert sanitize_line("model \x1b[2Jfailed:\n  out of\tmemory") == "model failed: out of memory"
    assert sanitize_line("word " * 20, limit=12) == "word word w…"
    assert sanitize_line("word " * 20, limit=11) == "word word…"  # no space before the "…"
    assert sanitize_line("\x1b]0;only a title\x07") == ""
