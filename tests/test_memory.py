"""The app caps glibc's malloc arenas (bot/memory.py), unless the operator set MALLOC_ARENA_MAX."""

from __future__ import annotations

import platform

import pytest

from bot import memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_arenas_are_capped_on_glibc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert memory.limit_malloc_arenas() is True


def test_an_operators_malloc_arena_max_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    calls: list[str] = []
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: calls.append(name))
    assert memory.limit_malloc_arenas() is False
    assert calls == []


def test_without_mallopt_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)

    class NoMallopt:  # musl, macOS
        def __getattr__(self, name: str) -> object:
            raise AttributeError(name)

    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: NoMallopt())
    assert memory.limit_malloc_arenas() is False
