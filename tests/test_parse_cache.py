"""The parsed-YAML cache (specs/_parse_cache.py): a text parsed cleanly once is read back
as JSON by later processes; anything else is parsed again, every time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ecom_harness.specs import YamlError, load_yaml, shipped_spec
from ecom_harness.specs import _parse_cache as parse_cache

BIG = shipped_spec("order-svc").read_text()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ECOM_HARNESS_CACHE_DIR", str(tmp_path))
    return tmp_path


class Counting:
    """A parser that counts its calls and returns what it is given to return."""

    def __init__(self, result: Any = None, error: Exception | None = None):
        self.calls, self.result, self.error = 0, result, error

    def __call__(self, text: str) -> Any:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.result


def test_a_clean_parse_is_read_back_without_parsing(folder: Path) -> None:
    parse = Counting({"openapi": "3.1.0", "n": [1, 2.5, None, True]})
    first = parse_cache.cached_parse(BIG, parse)
    again = parse_cache.cached_parse(BIG, parse)
    assert parse.calls == 1
    assert again == first and again is not first  # a fresh copy: nobody shares state
    assert len(list(folder.glob("*.json"))) == 1


def test_another_text_or_format_misses(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parse = Counting({"a": 1})
    parse_cache.cached_parse(BIG, parse)
    parse_cache.cached_parse(BIG + "\n# edited\n", parse)
    monkeypatch.setattr(parse_cache, "FORMAT", "strict-yaml-next")
    parse_cache.cached_parse(BIG, parse)
    assert parse.calls == 3


def test_errors_and_inexact_data_are_never_stored(folder: Path) -> None:
    failing = Counting(error=YamlError("bad", 3, 4))
    for _ in range(2):
        with pytest.raises(YamlError):
            parse_cache.cached_parse(BIG, failing)
    assert failing.calls == 2
    for inexact in ({"x": float("nan")}, {"x": 2**70}):
        parse = Counting(inexact)
        parse_cache.cached_parse(BIG + repr(inexact), parse)
        parse_cache.cached_parse(BIG + repr(inexact), parse)
        assert parse.calls == 2
    assert not list(folder.glob("*.json"))


def test_a_broken_entry_is_parsed_again(folder: Path) -> None:
    parse = Counting({"a": 1})
    parse_cache.cached_parse(BIG, parse)
    (entry,) = folder.glob("*.json")
    entry.write_bytes(b'{"a": 1')  # cut short
    assert parse_cache.cached_parse(BIG, parse) == {"a": 1}
    assert parse.calls == 2


def test_small_texts_and_off_are_not_cached(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parse = Counting({"a": 1})
    parse_cache.cached_parse("a: 1\n", parse)
    parse_cache.cached_parse("a: 1\n", parse)
    monkeypatch.setenv("ECOM_HARNESS_CACHE_DIR", "off")
    parse_cache.cached_parse(BIG, parse)
    parse_cache.cached_parse(BIG, parse)
    assert parse.calls == 4
    assert not list(folder.glob("*.json"))


def test_the_folder_is_trimmed_to_the_newest(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse_cache, "KEEP", 3)
    for n in range(7):
        parse_cache.cached_parse(f"{BIG}\n# {n}\n", Counting({"n": n}))
    assert len(list(folder.glob("*.json"))) == 3
    assert parse_cache.cached_parse(f"{BIG}\n# 6\n", Counting({"n": -1})) == {"n": 6}


def test_load_yaml_reports_a_duplicate_key_every_time(folder: Path) -> None:
    broken = BIG + "\ninfo: {title: twice}\n"  # a second top-level 'info'
    for _ in range(2):
        with pytest.raises(YamlError, match="duplicate key 'info'"):
            load_yaml(broken)
    assert load_yaml(BIG) == load_yaml(BIG)  # and the clean one reads back equal
    assert len(list(folder.glob("*.json"))) == 1
