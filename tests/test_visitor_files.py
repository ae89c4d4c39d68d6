"""What a visitor can send and get back, attacked as a stranger would over HTTP on loopback: no input takes
a path on the server (raw HTTP to every event by fn_index, private ones included, and gradio_client to the
public ones), uploads are bounded and cleaned up, results are downloads in one cleaned place, and no
server path or folder name reaches a visitor."""

from __future__ import annotations

import base64
import itertools
import json
import re
import secrets
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from playwright.sync_api import expect

from playground.core.errors import PlaygroundError
from playground.core.registry import ModelSpec
from playground.core.service import ModelService
from playground.core.settings import load_settings
from serving.files import UPLOADS_ONLY, upload_folder
from tests.conftest import launched_app
from tests.factories import REPO
from tests.hostile import default_arguments, endpoints, is_file, queue_call

FILE_DATA = {"_type": "gradio.FileData"}


@pytest.fixture
def planted(tmp_path):
    """A marker file next to the app (in the checkout, the working directory the tests run in) and one in
    the temp directory (Gradio lets outputs come from both); their shared secret must never come back."""
    secret = secrets.token_hex(16)
    beside_app, in_temp = REPO / f"planted-{secret[:8]}.txt", tmp_path / "planted.txt"
    for path in (beside_app, in_temp):
        path.write_text(f"marker {secret}\n")
    yield secret, [beside_app, Path(beside_app.name), in_temp]
    beside_app.unlink()


def file_inputs(config: dict) -> list[tuple[dict, int, str]]:
    """(event, input position, component type) for every input of every event whose payload can carry a
    file, found in the page's config: a new endpoint, or a private event, is covered as soon as it exists."""
    components = {component["id"]: component for component in config["components"]}
    return [(event, position, components[cid]["type"])
            for event in config["dependencies"] if event["backend_fn"]
            for position, cid in enumerate(event["inputs"])
            if '"path"' in json.dumps(components[cid].get("api_info_as_input", {}))]


def page_values(config: dict, event: dict) -> list:
    """The event's inputs as the page starts out (what a browser would send)."""
    components = {component["id"]: component for component in config["components"]}
    return [components[cid]["props"].get("value") for cid in event["inputs"]]


def naming(path: Path | str, tagged: bool, component_type: str):
    payload = {"path": str(path), **({"meta": FILE_DATA} if tagged else {})}
    return [{"image": payload, "caption": None}] if component_type == "gallery" else payload


def fetched(url: str, text: str) -> str:
    """The bodies of every file URL an answer names: what a visitor would download next."""
    bodies = []
    for link in set(re.findall(r'"url":\s*"([^"]+)"', text)):
        response = httpx.get(link if link.startswith("http") else url.rstrip("/") + link, timeout=30)
        bodies.append(response.content.decode("utf-8", "replace"))
    return "\n".join(bodies)


def raw_call(http: httpx.Client, url: str, fn_index: int, data: list) -> tuple[tuple, str]:
    """One event over raw HTTP (queue join, then its event stream): (the answer, everything sent back)."""
    session = "stranger"  # one visitor: a new session per call costs Gradio a copy of the page's state
    joined = http.post(f"{url}gradio_api/queue/join", json={
        "data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None})
    if joined.status_code != 200:
        return (joined.status_code, joined.text), joined.text
    text = ""
    with http.stream("GET", f"{url}gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            text += line + "\n"
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed":
                answer = (message.get("success"), (message.get("output") or {}).get("error"))
                return answer, text + fetched(url, text)
    return ("no answer",), text


def test_no_input_takes_a_path_on_the_server(app_url, client, planted):
    start = time.perf_counter()
    secret, markers = planted
    config = httpx.get(app_url + "config").json()
    targets = file_inputs(config)
    assert any(event["api_visibility"] == "private" for event, _, _ in targets)  # fn_index reaches those too
    missing, not_an_image = REPO / "no-such-file.png", REPO / "app.py"
    paths = [*markers, not_an_image, missing, "/etc/hostname", "/etc/no-such-file", "https://example.invalid/x.png"]
    calls = 0
    with httpx.Client(timeout=60) as http:
        for event, position, component_type in targets:
            for tagged, path in itertools.product((False, True), paths):
                data = page_values(config, event)
                data[position] = naming(path, tagged, component_type)
                answer, returned = raw_call(http, app_url, event["id"], data)
                calls += 1
                assert secret not in returned, f"{event['api_name']} gave back {path}"
                # One answer whatever the path names (a marker, the app's code, a system file, nothing, a URL):
                # no file leaves, and no telling which files exist.
                assert answer == (False, UPLOADS_ONLY), (event["api_name"], path, tagged, answer)
    for event, position, component_type in targets:
        if event["api_visibility"] != "public":
            continue  # gradio_client refuses private events itself; the raw calls above reach them
        target = [p["parameter_name"] for p in endpoints(client)["/" + event["api_name"]]["parameters"] if is_file(p)]
        for path in paths:  # untagged: a tagged payload makes gradio_client upload the file from its own disk
            arguments = {**default_arguments(client, "/" + event["api_name"]),
                         **{name: naming(path, False, component_type) for name in target}}
            with pytest.raises(AppError) as refused:
                client.predict(**arguments, api_name="/" + event["api_name"])
            calls += 1
            assert str(refused.value) == UPLOADS_ONLY
    for marker in markers:  # and the file route itself serves none of them
        response = httpx.get(f"{app_url}gradio_api/file={marker.resolve()}", timeout=30)
        assert response.status_code == 403 and secret not in response.text
    print(f"\n{calls} path attacks on {len(targets)} file inputs in {time.perf_counter() - start:.1f} s")


def test_the_text_to_image_gallery_is_an_output_only(app_url):
    """The person's results live in server-side state: no event takes a gallery as an input."""
    config = httpx.get(app_url + "config").json()
    assert [(event["api_name"], kind) for event, _, kind in file_inputs(config) if kind == "gallery"] == []


def test_the_page_names_no_server_path(app_url, service):
    config = httpx.get(app_url + "config").text
    settings = service.settings
    local = [spec.location for kind in ("language", "clip", "text_to_image", "tokenizer")
             for spec in service.registry.specs(kind) if spec.is_local_path]
    assert local, "the test settings register local models"
    service.load("language", "local: tiny-llama-random-v1")  # the models panel lists what is loaded
    panel = json.dumps(queue_call(app_url, "/cache_status", [])[-1])
    for path in [str(REPO), str(settings.cache_dir), str(settings.tokenizer_files), *local]:
        assert path not in config and path not in panel
    assert "local: tiny-llama-random-v1" in config and "local: tiny-llama-random-v1" in panel  # names, not paths


@pytest.fixture(scope="module")
def small_upload_app(test_settings):
    """The app with a 1 MB upload cap, 2 files an upload and uploads kept 2 s: small enough to test. Request
    bodies may be larger than uploads here, so an image sent inline meets the upload cap, not the body cap."""
    settings = load_settings(environ={}, overrides={
        "cache_dir": str(test_settings.cache_dir), "models": dict(test_settings.models),
        "limits": {"max_upload_mb": 1, "max_files_per_upload": 2, "upload_lifetime_seconds": 2,
                   "max_request_bytes": 4 * 1024 * 1024}})
    with launched_app(ModelService(settings)) as url:
        yield url


def test_uploads_are_capped_and_cleaned_up(small_upload_app, tmp_path):
    url = small_upload_app
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(1024 * 1024))
    response = httpx.post(f"{url}gradio_api/upload", files=[("files", ("big.png", big.read_bytes()))], timeout=30)
    assert response.status_code == 413 and "maximum allowed size of 1048576 bytes" in response.text
    client = Client(url, verbose=False)
    arguments = default_arguments(client, "/classify")
    with pytest.raises(ValueError, match="exceeds the maximum file size of 1048576 bytes"):
        client.predict(**{**arguments, "image": {"path": str(big), "meta": FILE_DATA}}, api_name="/classify")
    inline = {"path": None, "url": "data:image/png;base64," + base64.b64encode(big.read_bytes()).decode()}
    with pytest.raises(AppError, match=r"larger than the upload limit \(1 MB\)"):  # not a way around the cap
        client.predict(**{**arguments, "image": inline}, api_name="/classify")

    before = set(upload_folder().rglob("*"))
    many = [("files", (f"f{i}.txt", b"small")) for i in range(3)]
    response = httpx.post(f"{url}gradio_api/upload", files=many, timeout=30)
    assert response.status_code == 400 and response.text == "Too many files in one upload: at most 2."
    assert set(upload_folder().rglob("*")) - before == set()  # nothing of the refused upload stays

    start = time.perf_counter()
    [kept] = httpx.post(f"{url}gradio_api/upload", files=many[:1], timeout=30).json()
    assert Path(kept).exists()
    while Path(kept).exists() and time.perf_counter() - start < 20:
        time.sleep(0.25)
    assert not Path(kept).exists(), "the upload outlived its lifetime"
    print(f"\nupload deleted {time.perf_counter() - start:.1f} s after it arrived (lifetime 2 s)")


def test_a_person_uploading_too_big_an_image_is_told_the_limit(small_upload_app, browser_context, tmp_path):
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG" + bytes(1536 * 1024))
    page = browser_context.new_page()
    try:
        page.goto(small_upload_app)
        page.get_by_role("tab", name="CLIP zero-shot").click()
        page.locator("#clip-image input[type=file]").set_input_files(big)
        expect(page.get_by_text(re.compile(r"exceed the maximum allowed size of 1\.0 Mb"))).to_be_visible()
    finally:
        page.close()


def test_ten_corpus_counts_leave_no_pile_of_downloads(client):
    """Each cold count used to leave a `tokenizer-cost-*` temporary directory behind; now the CSV is written
    once into Gradio's upload folder (cleaned on schedule) and the same content reuses the same file."""
    arguments = {**default_arguments(client, "/corpus_premiums"), "tokenizers": ["GPT-2 (gpt2)"], "corpus": "dev"}
    start = time.time()
    for _ in range(10):
        client.predict(**arguments, api_name="/corpus_premiums")
    name = "tokenizer_premium_dev.csv"
    written = [path for folder in {Path(tempfile.gettempdir()), upload_folder()} for path in folder.glob(f"*/{name}")
               if path.stat().st_ctime >= start]
    # the server's file and gradio_client's download of it: not one per call
    assert 1 <= len(written) <= 2, written
    assert all(upload_folder() in path.parents for path in written)


def test_unknown_events_get_a_clean_404(app_url):
    join = {"data": [], "session_hash": "visitor", "event_data": None}
    for fn_index in (10**6, -1):
        response = httpx.post(f"{app_url}gradio_api/queue/join", json={**join, "fn_index": fn_index}, timeout=30)
        assert response.status_code == 404 and f"no event with fn_index {fn_index}" in response.text
    for route in ("call", "call/v2", "run", "api"):
        response = httpx.post(f"{app_url}gradio_api/{route}/no_such_endpoint", json={"data": []}, timeout=30)
        assert response.status_code == 404 and "no endpoint /no_such_endpoint" in response.text
    response = httpx.post(f"{app_url}gradio_api/call/cache_status", json={"data": []}, timeout=30)
    assert response.status_code == 200  # known endpoints go through


@pytest.mark.parametrize("table", [
    {"headers": ["language", "text"], "data": [["English", "hello", "extra"]]},
    {"headers": ["language", "text", "note"], "data": [["English", "hello", "x"]]},
    {"headers": ["language"], "data": [["English", "hello", "x"]]},
])
def test_a_sentences_table_of_the_wrong_shape_is_explained(client, table):
    arguments = {**default_arguments(client, "/count_tokens"), "sentences": {**table, "metadata": None}}
    with pytest.raises(AppError, match="two columns, a language and its text; row 1 has 3 cells"):
        client.predict(**arguments, api_name="/count_tokens")


def test_a_typed_hub_id_never_reveals_a_server_folder(service):
    """`assets/flores` is a folder of the checkout the app runs in; it gets the answer any uncached id gets."""
    answers = []
    for typed in ("assets/flores", "assets/no-such-folder"):
        spec = ModelSpec("tokenizer", f"{typed} (Hub)", f"hf:{typed}")
        with pytest.raises(PlaygroundError) as refused:
            service.load_spec(spec)
        answers.append(str(refused.value).replace(typed, "<id>").replace(typed.replace("/", "__"), "<id>"))
    assert answers[0] == answers[1] and "not available offline" in answers[0]
    assert str(service.settings.tokenizer_files) not in answers[0]


def test_offline_tokenizer_messages_name_no_server_folder(base_settings, tmp_path):
    settings = load_settings(environ={}, overrides={"cache_dir": str(base_settings.cache_dir),
                                                    "tokenizer_files": str(tmp_path)})
    with pytest.raises(PlaygroundError, match="no offline copy in the tokenizer files folder") as refused:
        ModelService(settings).load_spec(ModelSpec("tokenizer", "r50k", "tiktoken:r50k_base"))
    assert str(tmp_path) not in str(refused.value)


def test_a_result_image_is_never_rewritten_while_it_is_served(app_url, tmp_path):
    """The same image saved again (a grid re-sent as it grows, a room on one preset) used to truncate and
    rewrite the file being served: a client got "peer closed connection" with part of it."""
    import threading

    import numpy as np
    from gradio import processing_utils
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))
    path = Path(processing_utils.save_pil_to_cache(image, str(tmp_path), format="png"))
    whole = path.read_bytes()
    sizes, saving = [], True

    def read_while_saving() -> None:
        while saving:
            sizes.append(len(path.read_bytes()))

    reader = threading.Thread(target=read_while_saving)
    reader.start()
    for _ in range(100):
        assert processing_utils.save_pil_to_cache(image, str(tmp_path), format="png") == str(path)
    saving = False
    reader.join()
    assert sizes and set(sizes) == {len(whole)} and path.read_bytes() == whole
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no staging file left behind
