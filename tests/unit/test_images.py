"""``gemmatui.core.images``: format from the bytes, size from the header, one-line refusals.

The images are built here with the standard library: a real PNG (zlib + CRCs), a real
1×1 GIF, JPEG and WebP headers as their specifications lay them out.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import sys
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemmatui.core.errors import EXIT_USAGE, UsageError
from gemmatui.core.images import (
    IMAGE_TOKENS,
    MAX_IMAGE_BYTES,
    Attachment,
    ImageError,
    from_bytes,
    image_tokens,
    probe,
    read_image,
)

# --------------------------------------------------------------------------- builders


def make_png(width: int = 3, height: int = 2, *, seed: int = 0) -> bytes:
    """A real RGB PNG that any decoder reads (pixels vary with ``seed``)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    rows = b"".join(
        b"\x00" + bytes((x * 40 + y * 7 + seed) % 256 for x in range(width * 3))
        for y in range(height)
    )
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def make_gif(width: int = 1, height: int = 1) -> bytes:
    """A complete GIF89a: one black pixel (or a larger canvas with one image block)."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0x80, 0, 0)  # global colour table of 2
        + b"\x00\x00\x00\xff\xff\xff"
        + b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)  # image descriptor
        + b"\x02\x02\x44\x01\x00"  # LZW data for one pixel
        + b"\x3b"
    )


def make_jpeg(width: int = 640, height: int = 480, *, sof: int = 0xC0, fill: bool = False) -> bytes:
    """JPEG markers up to the scan: SOI, APP0 (JFIF), DQT, SOFn, SOS, EOI."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes(range(1, 65))
    sof_body = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"
    frame = bytes([0xFF, sof]) + struct.pack(">H", 2 + len(sof_body)) + sof_body
    sos = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x00\x00\x3f\x00"
    padding = b"\xff\xff" if fill else b""  # fill bytes before a marker are legal
    return b"\xff\xd8" + app0 + dqt + padding + frame + sos + b"\x00" * 4 + b"\xff\xd9"


def _riff(chunk: bytes, body: bytes) -> bytes:
    inner = b"WEBP" + chunk + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", len(inner)) + inner


def make_webp_lossless(width: int = 320, height: int = 200) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    return _riff(b"VP8L", b"\x2f" + struct.pack("<I", bits) + b"\x00" * 8)


def make_webp_lossy(width: int = 1024, height: int = 768) -> bytes:
    frame_tag = b"\x30\x01\x00"  # key frame, version 0, shown
    body = frame_tag + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 10
    return _riff(b"VP8 ", body)


def make_webp_extended(width: int = 4000, height: int = 3000) -> bytes:
    body = b"\x10\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(
        3, "little"
    )
    return _riff(b"VP8X", body)


# --------------------------------------------------------------------------- formats


@pytest.mark.parametrize(
    ("data", "kind", "size"),
    [
        (make_png(3, 2), "png", (3, 2)),
        (make_png(1, 1), "png", (1, 1)),
        (make_gif(), "gif", (1, 1)),
        (make_gif(500, 300), "gif", (500, 300)),
        (make_jpeg(640, 480), "jpeg", (640, 480)),
        (make_jpeg(17, 4000, sof=0xC2), "jpeg", (17, 4000)),  # progressive
        (make_jpeg(800, 600, fill=True), "jpeg", (800, 600)),
        (make_webp_lossless(320, 200), "webp", (320, 200)),
        (make_webp_lossless(16384, 1), "webp", (16384, 1)),
        (make_webp_lossy(1024, 768), "webp", (1024, 768)),
        (make_webp_extended(4000, 3000), "webp", (4000, 3000)),
    ],
)
def test_format_and_size_come_from_the_header(data: bytes, kind: str, size: tuple) -> None:
    assert probe(data) == (kind, *size)
    image = from_bytes(data, "x")
    assert (image.format, image.width, image.height) == (kind, *size)


def test_attachment_carries_bytes_digest_base64_and_a_card(tmp_path: Path) -> None:
    data = make_png(640, 480)
    path = tmp_path / "cat.png"
    path.write_bytes(data)
    image = read_image(str(path))
    assert image.data == data and image.size == len(data)
    assert image.sha256 == hashlib.sha256(data).hexdigest()
    assert base64.b64decode(image.base64()) == data
    assert image.data_uri() == "data:image/png;base64," + base64.b64encode(data).decode()
    assert image.mime == "image/png" and image.tokens == IMAGE_TOKENS == 256
    assert image.card() == f"{path} · 640×480 · {image.size / 1024:.1f} KiB"
    assert image.to_json() == {
        "name": str(path),
        "format": "png",
        "width": 640,
        "height": 480,
        "bytes": len(data),
        "sha256": image.sha256,
    }
    assert image.path == path


def test_the_name_does_not_decide_the_format(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(make_jpeg(10, 20))
    assert read_image(path).format == "jpeg"


def test_image_tokens_are_256_each() -> None:
    assert image_tokens(0) == 0 and image_tokens(3) == 768


# --------------------------------------------------------------------------- refusals


def refusal(path: Path | str) -> str:
    with pytest.raises(ImageError) as err:
        read_image(path)
    assert isinstance(err.value, UsageError) and err.value.exit_code == EXIT_USAGE
    text = str(err.value)
    assert "\n" not in text and text
    return text


def test_missing_file(tmp_path: Path) -> None:
    assert refusal(tmp_path / "nope.png") == f"{tmp_path / 'nope.png'}: no such file"


def test_directory(tmp_path: Path) -> None:
    assert refusal(tmp_path) == f"{tmp_path} is a directory, not an image"


@pytest.mark.skipif(
    sys.platform == "win32" or os.geteuid() == 0, reason="root reads any file"
)
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.png"
    path.write_bytes(make_png())
    path.chmod(0)
    try:
        assert refusal(path) == f"{path} cannot be read: permission denied"
    finally:
        path.chmod(0o600)


def test_unreadable_file_even_as_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The open that fails (root can read a mode-0 file, so make the open itself fail)."""
    import gemmatui.core.images as images

    path = tmp_path / "secret.png"
    path.write_bytes(make_png())

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(images, "open", denied, raising=False)
    assert refusal(path) == f"{path} cannot be read: permission denied"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert refusal(path) == f"{path} is empty"


def test_not_an_image_says_what_it_starts_with(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(b"hello, world: not a picture")
    assert refusal(path) == (
        f"{path} is not a PNG, JPEG, WebP or GIF image (it starts with 68 65 6c 6c 6f 2c 20 77 …)"
    )


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"%PDF-1.7\n", "a PDF document"),
        (b"BM" + b"\x00" * 40, "a BMP image"),
        (b"\x00\x00\x00\x18ftypheic" + b"\x00" * 8, "a HEIC image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "an SVG drawing"),
    ],
)
def test_common_other_formats_are_named(tmp_path: Path, data: bytes, kind: str) -> None:
    path = tmp_path / "picture.png"
    path.write_bytes(data)
    assert refusal(path) == f"{path} is {kind}, not a PNG, JPEG, WebP or GIF image"


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (make_png()[:20], "PNG"),
        (make_gif()[:8], "GIF"),
        (make_jpeg()[:30], "JPEG"),
        (make_webp_lossless()[:22], "WebP"),
        (make_webp_lossy()[:27], "WebP"),
        (make_webp_extended()[:26], "WebP"),
        (b"\xff\xd8\xff", "JPEG"),
    ],
)
def test_cut_short_headers(tmp_path: Path, data: bytes, kind: str) -> None:
    path = tmp_path / "cut.img"
    path.write_bytes(data)
    assert refusal(path) == f"{path} is cut short: its {kind} header ends before the image size"


def test_broken_headers_are_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 10)  # a scan before any frame
    assert refusal(path) == f"{path} is not a valid JPEG image: no frame header (SOF) before the image data"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIDAT" + b"\x00" * 8)
    assert refusal(path) == f"{path} is not a valid PNG image: its first chunk is not IHDR"


def test_zero_size_header(tmp_path: Path) -> None:
    path = tmp_path / "zero.gif"
    path.write_bytes(make_gif(0, 5))
    assert refusal(path) == f"{path}: its GIF header gives no size (0×5)"


def test_too_large_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    with open(path, "wb") as handle:
        handle.write(make_png())
        handle.truncate(MAX_IMAGE_BYTES + 1)  # sparse: nothing but the header is written
    text = refusal(path)
    assert text == (
        f"{path} is 20,971,521 bytes, more than the 20,971,520 bytes gemmatui sends "
        "(Gemma 3 sees every image at 896×896: a smaller copy loses nothing)"
    )
    assert read_image(tmp_path / "huge.png", max_bytes=MAX_IMAGE_BYTES + 1).format == "png"
    with open(path, "r+b") as handle:
        handle.truncate(3 * MAX_IMAGE_BYTES)
    assert refusal(path).startswith(f"{path} is 60 MiB, more than the 20 MiB gemmatui sends")


def test_a_decompression_bomb_is_refused() -> None:
    with pytest.raises(ImageError, match=r"x is 20000×20000 pixels, more than the 64 megapixels"):
        from_bytes(make_png(1, 1)[:16] + struct.pack(">II", 20000, 20000), "x")


def test_control_characters_in_a_name_never_reach_the_terminal(tmp_path: Path) -> None:
    text = refusal(tmp_path / "evil\x1b[2J.png")
    assert "\x1b" not in text and text.endswith("evil.png: no such file")


# --------------------------------------------------------------------------- property


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_never_crash(data: bytes) -> None:
    _one_answer(data)


_PREFIXES = [
    b"\x89PNG\r\n\x1a\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
    b"\xff\xd8\xff",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"RIFF\x00\x00\x00\x00WEBPVP8L",
    b"RIFF\x00\x00\x00\x00WEBPVP8X",
]


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(_PREFIXES), st.binary(max_size=120))
def test_random_bytes_after_a_real_signature_never_crash(prefix: bytes, tail: bytes) -> None:
    _one_answer(prefix + tail)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=200), st.integers(min_value=0, max_value=300))
def test_any_cut_of_a_real_image_never_crashes(noise: bytes, cut: int) -> None:
    for data in (make_png(), make_jpeg(), make_gif(), make_webp_lossy(), make_webp_extended()):
        _one_answer(data[:cut] + noise)


def _one_answer(data: bytes) -> None:
    """Either an attachment with a positive size, or one line of refusal: nothing else."""
    try:
        image = from_bytes(data, "x")
    except ImageError as err:
        text = str(err)
        assert text.startswith("x") and "\n" not in text
    else:
        assert isinstance(image, Attachment)
        assert image.width > 0 and image.height > 0
        assert image.format in ("png", "jpeg", "webp", "gif")


# --------------------------------------------------------------------------- the adapters


async def test_ollama_client_sends_the_base64_it_is_given() -> None:
    """Images go through the official client as bytes, so it never mistakes a base64
    text for a file path, and the server receives exactly the file's base64."""
    from gemmatui.core.ollama import OllamaClient
    from tests.fake_ollama import FakeOllama

    png, gif = make_png(5, 5), make_gif()
    message = {"role": "user", "content": "hi", "images": [base64.b64encode(png).decode(), base64.b64encode(gif).decode()]}
    with FakeOllama(installed=["4b"]) as fake:
        async with OllamaClient(fake.url) as client:
            chunks = [c async for c in client.chat("gemma3:4b-it-qat", [message], num_ctx=4096, keep_alive="5m")]
        assert chunks[-1].done
        assert fake.received_images() == [png, gif]
        assert fake.chat_requests()[0]["messages"][0]["images"] == message["images"]


async def test_ollama_client_refuses_an_image_that_is_not_base64() -> None:
    from gemmatui.core.ollama import OllamaClient
    from tests.fake_ollama import FakeOllama

    with FakeOllama(installed=["4b"]) as fake:
        async with OllamaClient(fake.url) as client:
            with pytest.raises(UsageError, match="an image in it is not base64 text"):
                async for _ in client.chat(
                    "gemma3:4b-it-qat",
                    [{"role": "user", "content": "hi", "images": ["not base64!"]}],
                    num_ctx=4096,
                    keep_alive="5m",
                ):
                    pass
        assert fake.chat_requests() == []


def test_openai_message_turns_images_into_content_parts() -> None:
    from gemmatui.core.llamacpp import openai_message

    png, jpg, webp = make_png(), make_jpeg(), make_webp_lossy()
    b64 = [base64.b64encode(x).decode() for x in (png, jpg, webp)]
    converted = openai_message({"role": "user", "content": "look", "images": b64})
    assert converted == {
        "role": "user",
        "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64[0]}"}},
            {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64[1]}"}},
            {"type": "image_url", "image_url": {"url": f"data:image/webp;base64,{b64[2]}"}},
        ],
    }
    # bytes are accepted too; an empty text sends the image alone; no images: unchanged
    assert openai_message({"role": "user", "content": "", "images": [png]})["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64[0]}"}}
    ]
    plain = {"role": "assistant", "content": "hello", "images": []}
    assert openai_message(plain) == {"role": "assistant", "content": "hello"}
    with pytest.raises(UsageError, match="not base64 text"):
        openai_message({"role": "user", "content": "x", "images": ["%%%"]})


async def test_llama_server_client_sends_image_parts_and_streams_the_reply() -> None:
    from gemmatui.core.llamacpp import LlamaServerClient
    from tests.fake_ollama import DEFAULT_REPLY, FakeLlamaServer

    png = make_png(7, 3)
    message = {"role": "user", "content": "what?", "images": [base64.b64encode(png).decode()]}
    with FakeLlamaServer(chat=True, vision=True) as server:
        async with LlamaServerClient(server.url) as client:
            assert (await client.props()).vision
            text = "".join([c.content async for c in client.chat("any", [message])])
        (body,) = server.chat_bodies
    assert text == DEFAULT_REPLY
    (part_text, part_image) = body["messages"][0]["content"]
    assert part_text == {"type": "text", "text": "what?"}
    url = part_image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == png


async def test_check_vision_per_engine() -> None:
    from gemmatui.core.images import check_vision
    from gemmatui.core.llamacpp import LlamaServerClient
    from gemmatui.core.ollama import OllamaClient
    from tests.fake_ollama import FakeLlamaServer, FakeOllama

    with FakeOllama(installed=["1b", "4b"]) as fake:
        async with OllamaClient(fake.url) as client:
            await check_vision(client, "gemma3:4b-it-qat")
            with pytest.raises(ImageError, match="reads text only"):
                await check_vision(client, "gemma3:1b-it-qat")
        assert fake.chat_requests() == []
    for vision in (True, False):
        with FakeLlamaServer(chat=True, vision=vision) as server:
            async with LlamaServerClient(server.url) as client:
                if vision:
                    await check_vision(client, "any")
                else:
                    with pytest.raises(ImageError, match="--mmproj"):
                        await check_vision(client, "any")
