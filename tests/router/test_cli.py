"""`switchyard catalog`: the table and the JSON the four catalogs give."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
from collections import defaultdict

import pytest
from switchyard.router._cli import main

JSON_KEYS = {
    "gateway",
    "gateway_model",
    "model",
    "input_price",
    "output_price",
    "price_source",
    "context_window",
    "capabilities",
}


def _catalog_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["catalog", "--json", *args]) == 0
    data = json.loads(capsys.readouterr().out)
    assert isinstance(data, list)
    return data


def test_catalog_json_has_exactly_the_documented_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """Every offer in --json has exactly the eight documented keys."""
    offers = _catalog_json(capsys)
    assert offers and all(set(o) == JSON_KEYS for o in offers)


def test_catalog_json_lists_all_four_gateways_and_every_onellm_id(capsys: pytest.CaptureFixture[str]) -> None:
    """All four gateways appear, with all 48 OneLLM ids."""
    offers = _catalog_json(capsys)
    assert {o["gateway"] for o in offers} == {"onellm", "oneai", "onetoken", "onerouter"}
    assert len([o for o in offers if o["gateway"] == "onellm"]) == 48


def test_catalog_json_shows_oneais_published_prices(capsys: pytest.CaptureFixture[str]) -> None:
    """OneAI's offers carry its published prices exactly (deepseek-r1 at the higher of its two rows)."""
    offers = _catalog_json(capsys, "--gateway", "oneai")
    prices = {o["gateway_model"]: (o["input_price"], o["output_price"], o["price_source"]) for o in offers}
    assert prices == {
        "deepseek-v4-pro": (1.00, 4.00, "published"),
        "deepseek-v4-flash": (0.30, 1.20, "published"),
        "deepseek-r1": (0.80, 3.50, "published"),
        "deepseek-v3": (0.50, 2.19, "published"),
        "qwen-coder": (0.40, 1.60, "published"),
        "qwen-max": (0.60, 2.40, "published"),
        "kimi": (0.40, 1.60, "published"),
        "minimax-m1": (0.35, 1.40, "published"),
        "glm-4": (0.30, 1.20, "published"),
    }


def test_catalog_json_joins_models_across_gateways(capsys: pytest.CaptureFixture[str]) -> None:
    """A canonical model is served by more than one gateway (snapshots and moving aliases join none)."""
    gateways: defaultdict[object, set[object]] = defaultdict(set)
    for offer in _catalog_json(capsys):
        gateways[offer["model"]].add(offer["gateway"])
    shared = {m for m, g in gateways.items() if len(g) > 1}
    assert {"gpt-4o-mini"} <= shared


def test_catalog_filters_by_model_spelling(capsys: pytest.CaptureFixture[str]) -> None:
    """--model takes any gateway's spelling and shows every gateway serving it."""
    offers = _catalog_json(capsys, "--model", "GPT-4o-mini")
    assert sorted((o["gateway"], o["gateway_model"]) for o in offers) == [
        ("onellm", "GPT-4o-mini"),
        ("onetoken", "gpt-4o-mini"),
    ]


def test_catalog_unknown_model_names_close_ids(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --model exits 2 and names the closest known ids."""
    assert main(["catalog", "--model", "gpt-4o-mimi"]) == 2
    assert "did you mean 'gpt-4o-mini'" in capsys.readouterr().err


def test_catalog_unknown_gateway_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown --gateway exits 2 and lists the real ones."""
    assert main(["catalog", "--gateway", "openai"]) == 2
    assert "onellm, oneai, onetoken, onerouter" in capsys.readouterr().err


def test_catalog_table_and_conflict_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """The table shows unknown prices as 'unknown'; the resolved OneAI duplicate warns no more."""
    assert main(["catalog"]) == 0
    out, err = capsys.readouterr()
    header = out.splitlines()[0].split()
    assert header[:2] == ["GATEWAY", "GATEWAY"]
    sonnet = next(line for line in out.splitlines() if "claude-3-5-sonnet@20240620" in line)
    assert "3.00" in sonnet and "15.00" in sonnet and "reference" in sonnet
    gpt = next(line for line in out.splitlines() if line.startswith("onellm") and "GPT-4o-mini" in line)
    assert "unknown" in gpt
    assert "1 served by more than one gateway" in out
    assert "warning" not in err


def test_console_script_runs_from_a_shell() -> None:
    """The installed `switchyard` entry point prints the catalog as JSON."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    exe = os.path.join(os.path.dirname(sys.executable), "switchyard")
    result = subprocess.run(
        [exe, "catalog", "--json", "--gateway", "onerouter"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (offer,) = json.loads(result.stdout)
    assert offer["gateway_model"] == "claude-3-5-sonnet@20240620"


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`switchyard --version` prints the distribution's version and exits 0."""
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"switchyard {version('switchyard')}"


def test_bench_out_naming_a_file_is_a_one_line_usage_error(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--out naming a file: one line on stderr, exit 2, no traceback and no run."""
    afile = tmp_path / "results.txt"
    afile.write_text("not a folder")
    assert main(["bench", "--quick", "--out", str(afile)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--out" in err and "Traceback" not in err
