"""'Did you mean' looks at a bounded number of ids, whatever the catalog's size."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

import pytest
from switchyard.providers import ConfigError, Gateway, Offer, ProviderGraph, UnknownModelError

_VENDORS = ("openai", "anthropic", "meta", "mistral", "qwen", "google", "deepseek", "cohere")
_FAMILIES = ("gpt", "claude", "llama", "mixtral", "qwen", "gemini", "deepseek", "command")
_LIMIT = 24  # what the graph may hand difflib for one question (4 x 6 neighbours)


def _id(i: int) -> str:
    """The ``i``-th synthetic wire id: vendor-prefixed, like a large aggregator's listing."""
    return f"{_VENDORS[i % 8]}/{_FAMILIES[i // 8 % 8]}-{i % 97}b-instruct-{i}"


def _offers(n: int) -> list[Offer]:
    """``n`` offers of similar-looking ids (the hard case for a prefilter), and a few real names."""
    real = [
        Offer(m, input_price=1.0, output_price=2.0) for m in ("gpt-4o-mini", "gpt-4o", "claude-3.5-sonnet")
    ]
    return real + [Offer(_id(i)) for i in range(n - len(real))]


@pytest.fixture(scope="module")
def big() -> ProviderGraph:
    """A graph of 100,000 offers at one custom gateway."""
    gateway = Gateway.openai_compatible("big", "http://127.0.0.1:1/v1", "k", offers=_offers(100_000))
    return ProviderGraph.from_catalogs([gateway])


@pytest.fixture
def shown(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many ids each call to difflib.get_close_matches was given."""
    sizes: list[int] = []
    real = difflib.get_close_matches

    def spy(word: str, possibilities: Sequence[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
        sizes.append(len(possibilities))
        return real(word, possibilities, n, cutoff)

    monkeypatch.setattr(difflib, "get_close_matches", spy)
    return sizes


def test_an_obvious_typo_is_found_among_100k_offers(big: ProviderGraph, shown: list[int]) -> None:
    """gpt-4o-mimi -> gpt-4o-mini, with difflib shown a handful of ids, not 200,000."""
    with pytest.raises(UnknownModelError, match="did you mean 'gpt-4o-mini'") as info:
        big.resolve("gpt-4o-mimi")
    assert info.value.suggestions[0] == "gpt-4o-mini"
    assert shown and max(shown) <= _LIMIT and len(shown) <= 2


def _canonical(i: int) -> str:
    return _id(i).split("/", 1)[1]


@pytest.mark.parametrize(
    ("asked", "suggested"),
    [
        ("claude-3.5-sonet", "claude-3.5-sonnet"),
        (_canonical(2570)[1:], _canonical(2570)),  # the first letter dropped
        (_canonical(777).replace("-instruct", "-instrcut"), _canonical(777)),  # two letters swapped
        (_id(31_337) + "x", _canonical(31_337)),  # a vendor-prefixed id with a stray letter
        (_canonical(99_000)[:-1], _canonical(99_000)),  # the last digit dropped
    ],
)
def test_typos_anywhere_are_found_with_bounded_work(
    big: ProviderGraph, shown: list[int], asked: str, suggested: str
) -> None:
    """A typo at the start, the middle or the end, or in a vendor-prefixed id, still finds the id."""
    with pytest.raises(UnknownModelError) as info:
        big.resolve(asked)
    assert info.value.suggestions[0] == suggested
    assert shown and max(shown) <= _LIMIT


@pytest.mark.parametrize(
    "ask",
    [
        lambda g: g.resolve("zzzzzzzzzzzzzzzz"),
        lambda g: g.offer("big", "openai/gpt-0b-instruct-0x"),
        lambda g: g.set_price("big", "openai/gpt-0b-instruct-0x", 1.0, 1.0),
    ],
    ids=["nothing-close", "offer", "set_price"],
)
def test_every_suggestion_path_is_bounded(
    big: ProviderGraph, shown: list[int], ask: Callable[[ProviderGraph], object]
) -> None:
    """resolve(), offer() and set_price() all hand difflib a bounded list."""
    with pytest.raises((UnknownModelError, ConfigError)):
        ask(big)
    assert shown and max(shown) <= _LIMIT


def test_offer_suggestions_name_only_that_gateways_ids(shown: list[int]) -> None:
    """offer() suggests what that gateway sells, not a neighbour's id."""
    a = Gateway.openai_compatible("a", "http://127.0.0.1:1/v1", "k", offers=_offers(300))
    b = Gateway.openai_compatible("b", "http://127.0.0.1:2/v1", "k", offers=[Offer("gpt-4o-mimi")])
    graph = ProviderGraph.from_catalogs([a, b])
    with pytest.raises(UnknownModelError) as info:
        graph.offer("b", "gpt-4o-mini")
    assert info.value.suggestions == ("gpt-4o-mimi",)
    assert max(shown) <= _LIMIT


def test_a_small_catalog_is_searched_whole(graph: ProviderGraph, shown: list[int]) -> None:
    """The shipped catalogs are small: every id is a candidate, as before."""
    with pytest.raises(UnknownModelError):
        graph.resolve("gpt-4o-mimi")
    assert shown[0] == len(graph.models())


def test_a_large_catalogs_suggestion_index_is_sorted_off_the_callers_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Building a graph of 20,000 ids sorts none of them in the caller's thread; the first typo waits
    for the background thread and gets the same answer."""
    import builtins
    import threading

    from switchyard.providers import _suggest

    sorts: list[tuple[threading.Thread, int]] = []

    def spy(items: object, /, **options: object) -> list[object]:
        done: list[object] = builtins.sorted(items, **options)  # type: ignore[call-overload]
        sorts.append((threading.current_thread(), len(done)))
        return done

    monkeypatch.setattr(_suggest, "sorted", spy, raising=False)
    gateway = Gateway.openai_compatible("big", "http://127.0.0.1:1/v1", "k", offers=_offers(10_000))
    graph = ProviderGraph.from_catalogs([gateway])
    with pytest.raises(UnknownModelError, match="did you mean 'gpt-4o-mini'"):
        graph.resolve("gpt-4o-mimi")
    here = threading.current_thread()
    assert sorts and sum(n for _, n in sorts) >= 20_000
    assert all(thread is not here for thread, _ in sorts), "sorted in the caller's thread"
