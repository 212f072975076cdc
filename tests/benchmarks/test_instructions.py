"""The instruction counter: callgrind's total read right, its client loops run, no valgrind is one line."""

from __future__ import annotations

import os
import signal

import pytest
from switchyard.benchmarks import instructions
from switchyard.benchmarks.overhead import _start_emulator


def test_collected_reads_callgrinds_total_and_refuses_output_without_one() -> None:
    """The count is the last ``Collected :`` line; output with none (a failed client) is an error."""
    stderr = "==41== Events    : Ir\n==41== Collected : 123456789\n==41==\n==41== I   refs: 123,456,789\n"
    assert instructions.collected(stderr) == 123_456_789
    with pytest.raises(RuntimeError, match="no count"):
        instructions.collected("Traceback (most recent call last):\n  ...\nKeyError: 'SWITCHYARD'\n")


def test_each_client_loop_runs_against_the_emulator() -> None:
    """Bare aiohttp and the router, plain and streamed: each loop completes its requests."""
    cpu = sorted(os.sched_getaffinity(0))[0]
    proc, urls = _start_emulator(cpu)
    try:
        for kind in instructions.KINDS:
            instructions.client(urls, kind, 4)
        with pytest.raises(ValueError, match="kind must be one of"):
            instructions.client(urls, "both", 4)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_without_valgrind_it_says_so_and_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No valgrind on PATH: one line naming the package, exit status 2, nothing started."""
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    assert instructions.main([]) == 2
    assert "valgrind is not on PATH" in capsys.readouterr().err


def test_kinds_names_what_to_count_and_refuses_others(capsys: pytest.CaptureFixture[str]) -> None:
    """--kinds takes a comma-separated subset of KINDS (``decision`` among them); anything else is a
    usage error before valgrind is looked for."""
    assert "decision" in instructions.KINDS
    for bad in ("nope", "plain,nope", ","):
        with pytest.raises(SystemExit) as exited:
            instructions.main(["--kinds", bad])
        assert exited.value.code == 2
        assert "--kinds takes some of bare, plain" in capsys.readouterr().err
