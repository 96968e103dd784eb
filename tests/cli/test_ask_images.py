"""``gemmatui ask --image`` in a subprocess against the fake Ollama and the fake
llama-server: the exact bytes arrive, and every refusal is one line, exit 2, with
nothing sent."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from gemmatui.core.images import MAX_IMAGE_BYTES
from tests.cli.conftest import Run
from tests.fake_ollama import DEFAULT_REPLY, GEMMA3_QAT, FakeLlamaServer, FakeOllama
from tests.unit.test_images import make_gif, make_jpeg, make_png, make_webp_lossless

ASK = ("ask", "--model", "4b", "--ctx", "8k")


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("gemmatui: error: ") and "Traceback" not in stderr
    return lines[0].removeprefix("gemmatui: error: ")


@pytest.fixture
def pictures(tmp_path: Path) -> dict[str, Path]:
    files = {
        "chart.png": make_png(64, 48, seed=1),
        "photo.jpg": make_jpeg(640, 480),
        "anim.gif": make_gif(32, 16),
        "sticker.webp": make_webp_lossless(128, 128),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in files}


# --------------------------------------------------------------------------- Ollama


def test_the_exact_bytes_reach_ollama_in_the_last_user_message(
    gemmatui: Run, fake: FakeOllama, pictures: dict[str, Path]
) -> None:
    png, jpg = pictures["chart.png"], pictures["photo.jpg"]
    done = gemmatui(
        *ASK, "--system", "Be terse.", "--image", str(png), "--image", str(jpg), "what is this?"
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, DEFAULT_REPLY + "\n", "")
    (body,) = fake.chat_requests()
    assert body["messages"][0] == {"role": "system", "content": "Be terse."}
    last = body["messages"][-1]
    assert (last["role"], last["content"]) == ("user", "what is this?")
    assert last["images"] == [
        base64.b64encode(png.read_bytes()).decode(),
        base64.b64encode(jpg.read_bytes()).decode(),
    ]
    assert fake.received_images() == [png.read_bytes(), jpg.read_bytes()]


def test_json_lists_the_images_and_their_tokens(
    gemmatui: Run, fake: FakeOllama, pictures: dict[str, Path]
) -> None:
    gif, webp = pictures["anim.gif"], pictures["sticker.webp"]
    done = gemmatui(*ASK, "--json", "--image", str(gif), "--image", str(webp), "describe")
    assert done.returncode == 0, done.stderr
    obj = json.loads(done.stdout)
    assert obj["image_tokens"] == 512
    assert [(i["name"], i["format"], i["width"], i["height"], i["bytes"]) for i in obj["images"]] == [
        (str(gif), "gif", 32, 16, gif.stat().st_size),
        (str(webp), "webp", 128, 128, webp.stat().st_size),
    ]
    assert fake.received_images() == [gif.read_bytes(), webp.read_bytes()]


def test_json_without_images_says_none(gemmatui: Run, fake: FakeOllama) -> None:
    obj = json.loads(gemmatui(*ASK, "--json", "hi").stdout)
    assert (obj["images"], obj["image_tokens"]) == ([], 0)
    assert "images" not in fake.chat_requests()[0]["messages"][-1]


def test_stats_count_256_tokens_an_image(
    gemmatui: Run, fake: FakeOllama, pictures: dict[str, Path]
) -> None:
    png = str(pictures["chart.png"])
    done = gemmatui(*ASK, "--stats", "--image", png, "--image", png, "two of the same")
    assert done.returncode == 0
    (line,) = done.stderr.splitlines()
    assert "; images 2 (512 tokens); done: stop" in line
    assert len(fake.received_images()) == 2


def test_a_warning_before_sending_when_images_overflow_the_context(
    gemmatui: Run, fake: FakeOllama, pictures: dict[str, Path]
) -> None:
    png = str(pictures["chart.png"])
    images = [arg for _ in range(8) for arg in ("--image", png)]  # 8 x 256 = 2048 tokens
    done = gemmatui("ask", "--model", "4b", "--ctx", "2k", *images, "x" * 400)
    assert done.returncode == 0
    (line,) = done.stderr.splitlines()
    assert line == (
        "gemmatui: warning: the prompt (about 100 tokens, estimated at 4 characters a token) "
        "and 8 images (2048 tokens) exceed the 2k context; the model will not see all of it "
        "(raise --ctx)"
    )
    assert len(fake.chat_requests()) == 1  # a warning, not a refusal
    fits = gemmatui("ask", "--model", "4b", "--ctx", "4k", *images, "x" * 400)
    assert (fits.returncode, fits.stderr) == (0, "")


def test_text_only_1b_is_refused_before_ollama_is_asked(
    gemmatui: Run, fake: FakeOllama, pictures: dict[str, Path]
) -> None:
    fake.set_installed(["1b", "4b"])
    done = gemmatui("ask", "--model", "1b", "--image", str(pictures["chart.png"]), "hi")
    assert done.returncode == 2
    assert one_error_line(done.stderr) == (
        "gemma3:1b-it-qat reads text only; use 4b, 12b or 27b for images"
    )
    assert fake.requests == []


def test_an_auto_chosen_1b_is_refused_before_any_chat(
    gemmatui: Run, fake: FakeOllama, pictures: dict[str, Path]
) -> None:
    fake.set_installed(["1b"])
    done = gemmatui("ask", "--json", "--image", str(pictures["chart.png"]), "hi")
    assert done.returncode == 2
    obj = json.loads(done.stdout)
    assert obj["error"] == "gemma3:1b-it-qat reads text only; use 4b, 12b or 27b for images"
    assert obj["exit_code"] == 2 and obj["images"][0]["format"] == "png"
    assert fake.chat_requests() == []


def test_an_ollama_model_without_vision_capability_is_refused(
    gemmatui: Run, fake: FakeOllama, pictures: dict[str, Path]
) -> None:
    text_only = replace(GEMMA3_QAT["gemma3:4b-it-qat"], tag="textonly:3b", vision=False)
    fake.config.registry["textonly:3b"] = text_only
    fake.set_installed(["textonly:3b"])
    done = gemmatui("ask", "--model", "textonly:3b", "--image", str(pictures["chart.png"]), "hi")
    assert done.returncode == 2
    assert one_error_line(done.stderr) == (
        "textonly:3b reads text only (Ollama lists no vision capability for it); "
        "use a model that reads images, e.g. gemma3:4b-it-qat"
    )
    assert [r.path for r in fake.requests if r.path == "/api/show"] == ["/api/show"]
    assert fake.chat_requests() == []


def test_the_fake_refuses_images_for_a_text_only_model_as_ollama_does(fake: FakeOllama) -> None:
    """What Ollama answers when images reach 1B anyway (``server/routes.go``)."""
    fake.set_installed(["1b"])
    body = {
        "model": "gemma3:1b-it-qat",
        "messages": [{"role": "user", "content": "hi", "images": [base64.b64encode(make_png()).decode()]}],
    }
    request = urllib.request.Request(
        fake.url + "/api/chat", data=json.dumps(body).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 400
    assert json.loads(err.value.read()) == {"error": "gemma3:1b-it-qat does not support vision"}
    assert fake.loaded() == {}  # refused before loading


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "missing.png", "{p}: no such file"),
        (lambda d: _folder(d), "{p} is a directory, not an image"),
        (lambda d: _write(d / "notes.png", b"just some text\n"), "{p} is not a PNG, JPEG, WebP or GIF image (it starts with 6a 75 73 74 20 73 6f 6d …)"),
        (lambda d: _write(d / "doc.png", b"%PDF-1.7\n%..."), "{p} is a PDF document, not a PNG, JPEG, WebP or GIF image"),
        (lambda d: _write(d / "empty.png", b""), "{p} is empty"),
        (lambda d: _write(d / "cut.png", make_png()[:20]), "{p} is cut short: its PNG header ends before the image size"),
        (lambda d: _sparse(d / "big.png", 3 * MAX_IMAGE_BYTES), "{p} is 60 MiB, more than the 20 MiB gemmatui sends (Gemma 3 sees every image at 896×896: a smaller copy loses nothing)"),
    ],
    ids=["missing", "directory", "text", "pdf", "empty", "truncated", "too-large"],
)
def test_every_bad_file_is_one_line_exit_2_and_nothing_is_sent(
    gemmatui: Run, fake: FakeOllama, tmp_path: Path, pictures: dict[str, Path], make, expected: str
) -> None:
    bad = make(tmp_path / "in")  # a fresh folder, so the directory case has a name
    good = str(pictures["chart.png"])
    done = gemmatui(*ASK, "--image", good, "--image", str(bad), "what is this?")
    assert done.returncode == 2
    assert one_error_line(done.stderr) == expected.format(p=bad)
    assert done.stdout == ""
    assert fake.requests == []  # not even /api/version


def test_bad_file_with_json_is_one_object(
    gemmatui: Run, fake: FakeOllama, tmp_path: Path
) -> None:
    done = gemmatui(*ASK, "--json", "--image", str(tmp_path / "nope.jpg"), "hi")
    assert done.returncode == 2
    obj = json.loads(done.stdout)
    assert (obj["error"], obj["exit_code"]) == (f"{tmp_path / 'nope.jpg'}: no such file", 2)
    assert fake.requests == []


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _folder(path: Path) -> Path:
    path.mkdir(parents=True)
    return path


def _sparse(path: Path, size: int) -> Path:
    _write(path, make_png())
    with open(path, "r+b") as handle:
        handle.truncate(size)
    return path


# --------------------------------------------------------------------------- llama-server


def test_llama_server_with_a_projector_gets_openai_image_parts(
    gemmatui: Run, pictures: dict[str, Path]
) -> None:
    png, jpg = pictures["chart.png"], pictures["photo.jpg"]
    with FakeLlamaServer(chat=True, vision=True) as server:
        done = gemmatui(
            "ask", "--engine", "llama-server", "--host", server.url,
            "--image", str(png), "--image", str(jpg), "compare these",
        )
        bodies = list(server.chat_bodies)
    assert (done.returncode, done.stdout) == (0, DEFAULT_REPLY + "\n"), done.stderr
    (body,) = bodies
    assert body["messages"][-1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "compare these"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()}},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(jpg.read_bytes()).decode()}},
        ],
    }


def test_llama_server_without_a_projector_is_refused_before_any_chat(
    gemmatui: Run, pictures: dict[str, Path]
) -> None:
    with FakeLlamaServer(chat=True, vision=False) as server:
        done = gemmatui(
            "ask", "--engine", "llama-server", "--host", server.url,
            "--image", str(pictures["chart.png"]), "hi",
        )
        bodies = list(server.chat_bodies)
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert line.startswith(f"llama-server at {server.url} serves ") and "--mmproj" in line
    assert bodies == []
