"""Images for Gemma 3: read a file into an :class:`Attachment`, or refuse it in one line.

Standard library only, and nothing is decoded: the format comes from the file's first
bytes (its magic number, never its name) and the size from its header, read here:

======  ============================================================================
PNG     ``89 50 4E 47 0D 0A 1A 0A``, then the ``IHDR`` chunk (big-endian width, height)
JPEG    ``FF D8 FF``, then markers up to the first start-of-frame ``SOFn``
        (``C0``-``CF`` except ``C4``, ``C8``, ``CC``): height, width (big-endian)
WebP    ``RIFF`` size ``WEBP``, then ``VP8 `` (lossy key frame), ``VP8L`` (lossless,
        14-bit sizes minus one) or ``VP8X`` (extended, 24-bit canvas sizes minus one)
GIF     ``GIF87a`` / ``GIF89a``, then the logical screen (little-endian width, height)
======  ============================================================================

These four are the formats Ollama's own engine decodes (Go's ``image`` package with
PNG, JPEG and GIF, WebP through ``golang.org/x/image/webp``, registered in
``model/model.go``); llama.cpp's ``tools/mtmd`` decodes with ``stb_image`` (PNG, JPEG,
GIF; WebP there was not verified). Anything else is refused before a request is made.

Every image costs Gemma 3 :data:`IMAGE_TOKENS` context tokens, whatever its size (see
that constant for where the number comes from). The module is for ``ask`` and the
terminal app alike: an :class:`Attachment` carries what both need (bytes, base64, a data
URI, a one-line card).
"""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gemmatui.core.errors import UsageError

ImageFormat = Literal["png", "jpeg", "webp", "gif"]

#: Context tokens one image takes in Gemma 3, whatever its pixel size.
#:
#: The SigLIP encoder reads every image resized to 896 x 896 pixels in 14 x 14 patches:
#: 64 x 64 = 4096 patch embeddings, average-pooled 4 x 4 to 16 x 16 = 256 soft tokens.
#:
#: * Ollama, ``model/models/gemma3/model.go``: ``tokensPerImage:
#:   int(c.Uint("mm_tokens_per_image", 256))``; ``MultiModalProjector.Forward`` pools
#:   with ``kernelSize := patchesPerImage / int(math.Sqrt(float64(p.tokensPerImage)))``
#:   (``patchesPerImage = imageSize / patchSize`` = 896 / 14 = 64, so a 4 x 4 kernel),
#:   and ``PostTokenize`` puts one input per pooled embedding between
#:   ``<start_of_image>`` and ``<end_of_image>``. The GGUF keys it reads are
#:   ``gemma3.vision.image_size`` 896 and ``gemma3.vision.patch_size`` 14.
#: * llama.cpp, ``tools/mtmd/clip.cpp`` (hparams for ``PROJECTOR_TYPE_GEMMA3``:
#:   ``n_merge = 4``, "used by all model sizes in gemma 3 family", "number of patches
#:   for each side is reduced by a factor of 4") and ``tools/mtmd/models/siglip.cpp``
#:   (``ggml_pool_2d(..., GGML_OP_POOL_AVG, kernel_size, kernel_size, ...)`` with
#:   ``kernel_size = hparams.n_merge``); ``tools/mtmd/mtmd.cpp`` wraps them in
#:   ``<start_of_image>`` ... ``<end_of_image>`` and resizes every picture to the fixed
#:   size (``mtmd_image_preprocessor_fixed_size``).
#:
#: The two markers and the blank lines around them add a handful of text tokens more;
#: they are not counted here.
IMAGE_TOKENS = 256

#: The largest image file accepted: 20 MiB. Gemma 3 sees every picture at 896 x 896
#: whatever its size, so a larger file adds no detail, only memory and time: it travels
#: base64-encoded (4/3 of its size) inside one JSON request that the client, Ollama (or
#: llama-server) each hold in memory whole, and is decoded there at full size before
#: being scaled down. 20 MB is also the per-image limit of the OpenAI-style image APIs
#: that llama-server's ``image_url`` imitates.
MAX_IMAGE_BYTES = 20 * 1024 * 1024

#: The most pixels accepted (width x height): 64 megapixels. Both engines decode the
#: whole image before scaling it (4 bytes a pixel: 256 MiB at this limit); a small file
#: that claims a huge canvas (a "decompression bomb") is refused here instead.
MAX_IMAGE_PIXELS = 64_000_000

#: The formats accepted, as people name them.
FORMAT_NAMES: dict[str, str] = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP", "gif": "GIF"}
_MIME: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}
_ACCEPTED = "a PNG, JPEG, WebP or GIF image"

# Signatures of files people often try instead, to name them in the refusal.
_OTHER_KINDS: tuple[tuple[int, bytes, str], ...] = (
    (0, b"%PDF", "a PDF document"),
    (0, b"BM", "a BMP image"),
    (0, b"II*\x00", "a TIFF image"),
    (0, b"MM\x00*", "a TIFF image"),
    (4, b"ftypheic", "a HEIC image"),
    (4, b"ftypheix", "a HEIC image"),
    (4, b"ftypmif1", "a HEIF image"),
    (4, b"ftypavif", "an AVIF image"),
    (0, b"\x00\x00\x01\x00", "an ICO icon"),
    (0, b"<svg", "an SVG drawing"),
    (0, b"<?xml", "an XML file"),
    (0, b"PK\x03\x04", "a ZIP archive"),
    (0, b"\x1f\x8b", "a gzip file"),
)


class ImageError(UsageError):
    """An image gemmatui will not send; ``str(err)`` is one line naming the file (exit 2)."""


@dataclass(frozen=True)
class Attachment:
    """One image, read and checked, ready to send.

    Attributes:
        name: What to call it in messages: the path as given (or a file name).
        data: The file's bytes, exactly as read.
        format: ``"png"``, ``"jpeg"``, ``"webp"`` or ``"gif"`` (from the bytes).
        width: Pixels, from the header.
        height: Pixels, from the header.
        path: The file it came from, or ``None`` for bytes from elsewhere.
        sha256: Hex digest of ``data`` (content address for storage and de-duplication).
    """

    name: str
    data: bytes = field(repr=False)
    format: ImageFormat
    width: int
    height: int
    path: Path | None = None
    sha256: str = ""

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    @property
    def size(self) -> int:
        """Bytes in the file."""
        return len(self.data)

    @property
    def mime(self) -> str:
        """The media type, e.g. ``image/png``."""
        return _MIME[self.format]

    @property
    def tokens(self) -> int:
        """Context tokens this image takes in Gemma 3 (:data:`IMAGE_TOKENS`)."""
        return IMAGE_TOKENS

    def base64(self) -> str:
        """The bytes as standard base64 (what Ollama's ``images`` list takes)."""
        return base64.b64encode(self.data).decode("ascii")

    def data_uri(self) -> str:
        """``data:image/png;base64,...`` (what an OpenAI-style ``image_url`` takes)."""
        return f"data:{self.mime};base64,{self.base64()}"

    def card(self) -> str:
        """One line for people: ``name · W×H · size`` (``cat.png · 640×480 · 312.5 KiB``)."""
        return f"{self.name} · {self.width}×{self.height} · {_format_size(self.size)}"

    def to_json(self) -> dict[str, object]:
        """What ``--json`` outputs say about the image (never its bytes)."""
        return {
            "name": self.name,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "bytes": self.size,
            "sha256": self.sha256,
        }


def image_tokens(count: int) -> int:
    """Context tokens ``count`` images take in Gemma 3.

    >>> image_tokens(2)
    512
    """
    return IMAGE_TOKENS * count


def estimate_text_tokens(text: str) -> int:
    """A rough token count for text: characters / 4, rounded up.

    Gemma's tokenizer averages about four characters of English per token; code, other
    scripts and numbers take more. Good enough to warn that a prompt will not fit, not
    to plan to the token (the engine's own ``prompt_eval_count`` is the real figure).

    >>> estimate_text_tokens("why is the sky blue?")
    5
    """
    return -(-len(text) // 4)


def text_only_refusal(model: str) -> ImageError | None:
    """The refusal for a catalogue model that reads no images (Gemma 3 1B), else ``None``.

    Known from the catalogue alone, so it is said before any server is asked.

    >>> print(text_only_refusal("1b"))
    gemma3:1b-it-qat reads text only; use 4b, 12b or 27b for images
    >>> text_only_refusal("gemma3:4b-it-qat") is None, text_only_refusal("llava:7b") is None
    (True, True)
    """
    from gemmatui.core.catalog import VARIANTS, find_variant

    variant = find_variant(model)
    if variant is None or variant.arch.vision:
        return None
    seeing = ", ".join(v.key for v in VARIANTS if v.arch.vision)
    seeing = " or ".join(seeing.rsplit(", ", 1))
    return ImageError(f"{variant.tag} reads text only; use {seeing} for images")


async def check_vision(engine: Any, model: str) -> None:
    """Refuse, before any chat request, a model or engine that cannot read images.

    * a catalogue model without vision (1B): :func:`text_only_refusal`;
    * Ollama: the model's ``/api/show`` capabilities lack ``"vision"`` (an Ollama too
      old to list capabilities is judged by its ``model_info``: no ``*.vision.*`` key);
    * llama-server: ``/props`` ``modalities.vision`` is false (no ``--mmproj``).

    Another OpenAI-compatible server is not asked: whether it reads images is not
    reliably known there, so its own answer decides.

    Args:
        engine: An ``OllamaClient`` or ``LlamaServerClient`` (or an engine port
            adapter of either): ``kind``/``engine`` say which.
        model: The model the chat will name.

    Raises:
        ImageError: The model or engine reads no images (exit 2).
        OllamaError: Asking the engine failed (its own exit code).
    """
    refusal = text_only_refusal(model)
    if refusal is not None:
        raise refusal
    kind = getattr(engine, "kind", None) or getattr(engine, "engine", "ollama")
    host = getattr(engine, "host", "")
    if kind == "llama-server":
        props = await engine.props()
        if not props.vision:
            raise ImageError(
                f"llama-server at {host} serves {props.model} without a vision projector; "
                "restart it with --mmproj FILE (the model's mmproj GGUF) to send images"
            )
        return
    if kind != "ollama":
        return
    details = await engine.show(model)
    capabilities = tuple(details.capabilities or ())
    if capabilities:
        vision = "vision" in capabilities
    else:
        info = details.model_info or {}
        vision = not info or any(".vision." in str(key) for key in info)
    if not vision:
        raise ImageError(
            f"{model} reads text only (Ollama lists no vision capability for it); "
            "use a model that reads images, e.g. gemma3:4b-it-qat"
        )


def read_image(path: str | os.PathLike[str], *, max_bytes: int = MAX_IMAGE_BYTES) -> Attachment:
    """Read and check one image file.

    Args:
        path: The file, as the user gave it (its text names the file in messages).
        max_bytes: Refuse larger files (default :data:`MAX_IMAGE_BYTES`).

    Returns:
        The image, with its format and size read from its bytes.

    Raises:
        ImageError: Missing, unreadable (a directory, no permission), larger than
            ``max_bytes``, empty, cut short, or not PNG, JPEG, WebP or GIF.
    """
    name = _shown(os.fspath(path))
    file = Path(path)
    try:
        info = file.stat()
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except PermissionError:
        raise ImageError(f"{name} cannot be read: permission denied") from None
    except OSError as err:
        raise ImageError(f"{name} cannot be read: {_reason(err)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{name} is a directory, not an image")
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(f"{name} is not a regular file")
    if info.st_size > max_bytes:
        raise ImageError(_too_large(name, info.st_size, max_bytes))
    try:
        with open(file, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except PermissionError:
        raise ImageError(f"{name} cannot be read: permission denied") from None
    except IsADirectoryError:
        raise ImageError(f"{name} is a directory, not an image") from None
    except OSError as err:
        raise ImageError(f"{name} cannot be read: {_reason(err)}") from None
    if len(data) > max_bytes:  # it grew after stat
        raise ImageError(_too_large(name, len(data), max_bytes))
    return from_bytes(data, name, path=file, max_bytes=max_bytes)


def read_images(paths: list[str] | tuple[str, ...]) -> list[Attachment]:
    """:func:`read_image` for each path, in order; the first bad one raises."""
    return [read_image(p) for p in paths]


def from_bytes(
    data: bytes, name: str, *, path: Path | None = None, max_bytes: int = MAX_IMAGE_BYTES
) -> Attachment:
    """Check bytes that are meant to be an image (a file's, a paste's).

    Raises:
        ImageError: Empty, too large, cut short, or not one of the four formats.

    >>> png = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000280000001e0")
    >>> from_bytes(png, "cat.png").card()
    'cat.png · 640×480 · 24 B'
    """
    if not data:
        raise ImageError(f"{name} is empty")
    if len(data) > max_bytes:
        raise ImageError(_too_large(name, len(data), max_bytes))
    kind, width, height = probe(data, name)
    if width <= 0 or height <= 0:
        raise ImageError(
            f"{name}: its {FORMAT_NAMES[kind]} header gives no size ({width}×{height})"
        )
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageError(
            f"{name} is {width}×{height} pixels, more than the {MAX_IMAGE_PIXELS // 1_000_000} "
            "megapixels gemmatui sends (Gemma 3 sees every image at 896×896 anyway)"
        )
    return Attachment(name=name, data=data, format=kind, width=width, height=height, path=path)


def probe(data: bytes, name: str = "the image") -> tuple[ImageFormat, int, int]:
    """The format and pixel size in an image's header.

    Args:
        data: The file's first bytes (the whole file is fine; only the header is read).
        name: What to call it in an error.

    Returns:
        ``(format, width, height)``.

    Raises:
        ImageError: Not one of the four formats, or its header is cut short or broken.

    >>> probe(b"GIF89a\\x02\\x00\\x03\\x00\\x00\\x00\\x00")
    ('gif', 2, 3)
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png", *_png(data, name)
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg", *_jpeg(data, name)
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif", *_gif(data, name)
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "webp", *_webp(data, name)
    raise ImageError(_not_an_image(data, name))


def probe_mime(data: bytes) -> str:
    """The media type of an image by its magic number alone (no size check), for a data
    URI; ``application/octet-stream`` when it is none of the four.

    >>> probe_mime(b"\\xff\\xd8\\xff\\xe0"), probe_mime(b"nope")
    ('image/jpeg', 'application/octet-stream')
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return _MIME["png"]
    if data.startswith(b"\xff\xd8\xff"):
        return _MIME["jpeg"]
    if data.startswith((b"GIF87a", b"GIF89a")):
        return _MIME["gif"]
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return _MIME["webp"]
    return "application/octet-stream"


# --------------------------------------------------------------------------- headers


def _cut(name: str, kind: str) -> ImageError:
    return ImageError(f"{name} is cut short: its {kind} header ends before the image size")


def _broken(name: str, kind: str, what: str) -> ImageError:
    return ImageError(f"{name} is not a valid {kind} image: {what}")


def _png(data: bytes, name: str) -> tuple[int, int]:
    # 8-byte signature, then the first chunk: length (4), type (4) = IHDR, width, height.
    if len(data) < 24:
        raise _cut(name, "PNG")
    if data[12:16] != b"IHDR":
        raise _broken(name, "PNG", "its first chunk is not IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _gif(data: bytes, name: str) -> tuple[int, int]:
    # "GIF89a", then the logical screen descriptor: width, height (little-endian u16).
    if len(data) < 10:
        raise _cut(name, "GIF")
    width, height = struct.unpack("<HH", data[6:10])
    return width, height


#: Start-of-frame markers carry the size: C0-CF except C4 (DHT), C8 (JPG), CC (DAC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
#: Markers without a length field: TEM, RST0-7, SOI (EOI and SOS end the search).
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


def _jpeg(data: bytes, name: str) -> tuple[int, int]:
    pos, end = 2, len(data)
    while True:
        # Each marker is 0xFF (possibly repeated as fill) and a code byte.
        if pos >= end:
            raise _cut(name, "JPEG")
        if data[pos] != 0xFF:
            raise _broken(name, "JPEG", f"no marker at byte {pos}")
        while pos < end and data[pos] == 0xFF:
            pos += 1
        if pos >= end:
            raise _cut(name, "JPEG")
        marker = data[pos]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame
            raise _broken(name, "JPEG", "no frame header (SOF) before the image data")
        if pos + 2 > end:
            raise _cut(name, "JPEG")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if length < 2:
            raise _broken(name, "JPEG", f"a segment of length {length} at byte {pos}")
        if marker in _SOF:
            # length (2), precision (1), height (2), width (2)
            if pos + 7 > end:
                raise _cut(name, "JPEG")
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            return width, height
        pos += length


def _webp(data: bytes, name: str) -> tuple[int, int]:
    # RIFF, size (4), WEBP, then the first chunk: fourcc (4), size (4), data from 20.
    if len(data) < 16:
        raise _cut(name, "WebP")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        # Key frame: 3-byte frame tag, start code 9D 01 2A, then 14-bit width, height.
        if len(data) < 30:
            raise _cut(name, "WebP")
        if data[23:26] != b"\x9d\x01\x2a":
            raise _broken(name, "WebP", "its VP8 frame has no key-frame start code")
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        # Signature 0x2F, then 14 bits width - 1, 14 bits height - 1 (little-endian).
        if len(data) < 25:
            raise _cut(name, "WebP")
        if data[20] != 0x2F:
            raise _broken(name, "WebP", "its VP8L chunk has no signature byte")
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        # Flags (1) and reserved (3), then 24-bit canvas width - 1, height - 1.
        if len(data) < 30:
            raise _cut(name, "WebP")
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise _broken(name, "WebP", f"unknown first chunk {chunk!r}")


# --------------------------------------------------------------------------- messages


def _not_an_image(data: bytes, name: str) -> str:
    for offset, signature, kind in _OTHER_KINDS:
        if data[offset : offset + len(signature)] == signature:
            return f"{name} is {kind}, not {_ACCEPTED}"
    head = " ".join(f"{b:02x}" for b in data[:8])
    more = " …" if len(data) > 8 else ""
    return f"{name} is not {_ACCEPTED} (it starts with {head}{more})"


def _too_large(name: str, size: int, limit: int) -> str:
    shown, most = _format_size(size), _format_size(limit)
    if shown == most:  # just over the limit: the rounded sizes would read the same
        shown, most = f"{size:,} bytes", f"{limit:,} bytes"
    return (
        f"{name} is {shown}, more than the {most} gemmatui sends "
        "(Gemma 3 sees every image at 896×896: a smaller copy loses nothing)"
    )


def _format_size(size: int) -> str:
    """Binary units, as the rest of gemmatui prints sizes (``20 MiB``, ``1.5 KiB``)."""
    from gemmatui.core.units import format_bytes

    return format_bytes(size)


def _shown(text: str) -> str:
    """A path as one safe line (a file name can hold control characters)."""
    from gemmatui.core.text import sanitize_line

    return sanitize_line(text, limit=200) or repr(text)


def _reason(err: OSError) -> str:
    return (err.strerror or str(err)).lower()
