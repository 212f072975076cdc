"""`switchyard emulate`: the official openai SDK against a running emulator; clean stops."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

EXE = os.path.join(os.path.dirname(sys.executable), "switchyard")
MODELS = {"oneai": "deepseek-v3", "onetoken": "gpt-4o-mini", "onerouter": "claude-3-5-sonnet@20240620"}


def _start(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    proc = subprocess.Popen(
        [EXE, "emulate", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    urls = {}
    for _ in range(4):
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "the emulator exited"
        name, url, *_ = line.split()
        urls[name] = url
    return proc, urls


@pytest.fixture(scope="module")
def running() -> Iterator[dict[str, str]]:
    """A `switchyard emulate` process; its four base URLs."""
    proc, urls = _start()
    try:
        yield urls
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_prints_one_line_per_gateway(running: dict[str, str]) -> None:
    """One '<gateway> <base_url>' line per gateway, each on loopback."""
    assert list(running) == ["onellm", "oneai", "onetoken", "onerouter"]
    assert all(url.startswith("http://127.0.0.1:") for url in running.values())


@pytest.mark.parametrize("gateway", list(MODELS))
def test_openai_sdk_gets_plain_replies(running: dict[str, str], gateway: str) -> None:
    """The official SDK, pointed at each OpenAI-compatible gateway, parses a plain reply."""
    client = openai.OpenAI(base_url=running[gateway], api_key="sdk-key", max_retries=0)
    with client:
        completion = client.chat.completions.create(
            model=MODELS[gateway], messages=[{"role": "user", "content": "hi"}], max_tokens=7
        )
    assert completion.choices[0].message.content and completion.choices[0].finish_reason == "length"
    assert completion.usage is not None and completion.usage.completion_tokens == 7


@pytest.mark.parametrize("gateway", list(MODELS))
def test_openai_sdk_gets_streamed_replies(running: dict[str, str], gateway: str) -> None:
    """The SDK streams chunks and reads the final usage chunk."""
    client = openai.OpenAI(base_url=running[gateway], api_key="sdk-key", max_retries=0)
    extra = {"usage": {"include": True}} if gateway == "onerouter" else None
    with client:
        stream = client.chat.completions.create(
            model=MODELS[gateway],
            messages=[{"role": "user", "content": "hi"}],
            max_tokens=4,
            stream=True,
            stream_options=None if extra else {"include_usage": True},
            extra_body=extra,
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "length"
    ]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4


@pytest.mark.parametrize("gateway", list(MODELS))
def test_openai_sdk_without_a_key_gets_authentication_error(running: dict[str, str], gateway: str) -> None:
    """A request with no Authorization header is the SDK's AuthenticationError."""
    # The SDK refuses to be built without a key, so the header is left out instead.
    client = openai.OpenAI(base_url=running[gateway], api_key="unused", max_retries=0)
    with client, pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(
            model=MODELS[gateway],
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"Authorization": openai.Omit()},
        )


def _post(url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_onellm_answers_flat_json_and_refuses_stream(running: dict[str, str]) -> None:
    """OneLLM's path answers its own flat JSON and refuses a stream parameter."""
    url = running["onellm"] + "/api"
    status, body = _post(
        url, {"model": "GPT-4.1", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
    )
    assert status == 200 and body["usage"] == {"input_tokens": 8, "output_tokens": 3, "total_tokens": 11}
    assert "choices" not in body and isinstance(body["content"], str)
    status, body = _post(
        url, {"model": "GPT-4.1", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    )
    assert status == 400 and "Streaming is not supported" in str(body["error"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stops_cleanly_on_signals(signum: signal.Signals, tmp_path: Path) -> None:
    """SIGINT and SIGTERM stop it with status 0 and nothing on stderr; a faults file applies."""
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"gateways": {"oneai": {"errors": {"503": 1.0}}}}))
    proc, urls = _start("--faults", str(faults), "--seed", "3")
    try:
        status, body = _post(
            urls["oneai"] + "/chat/completions",
            {"model": "kimi", "messages": [{"role": "user", "content": "x"}]},
        )
        assert status == 503 and body["error"]["message"] == "Model overloaded — try again or switch models"
    finally:
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and err == ""


def test_bad_faults_file_is_a_usage_error(tmp_path: Path) -> None:
    """An invalid faults file exits 2 with a message saying what is wrong."""
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"gateways": {"oneai": {"errors": {"418": 1.0}}}}))
    result = subprocess.run(
        [EXE, "emulate", "--faults", str(faults)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2 and "418" in result.stderr


def test_onellms_line_names_its_chat_url() -> None:
    """OneLLM's chat is at /api, not under its base URL's usual path: its line says where, and it answers."""
    proc = subprocess.Popen(
        [EXE, "emulate"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
    )
    try:
        assert proc.stdout is not None
        name, base, label, chat = proc.stdout.readline().split()
        assert (name, label) == ("onellm", "(chat:")
        chat = chat.rstrip(")")
        assert chat == base + "/api"
        body = json.dumps({"model": "GPT-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode()
        request = urllib.request.Request(
            chat, data=body, headers={"Authorization": "Bearer k", "Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200 and "content" in json.loads(answer.read())
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
