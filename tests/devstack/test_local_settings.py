"""local.settings.json and host.json, read the way Core Tools reads them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.local_settings import (
    LocalSettingsError,
    apply_settings_to_environment,
    ensure_local_settings,
    read_local_settings,
    read_route_prefix,
)


def test_values_are_strings_and_existing_environment_wins(tmp_path: Path) -> None:
    settings = tmp_path / "local.settings.json"
    settings.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "file", "B": 3, "C": None}}))
    environ = {"A": "exported"}

    applied = apply_settings_to_environment(read_local_settings(settings), environ)

    assert environ == {"A": "exported", "B": "3", "C": ""}
    assert applied == ["B", "C"]


def test_example_is_copied_only_when_settings_are_missing(tmp_path: Path) -> None:
    (tmp_path / "local.settings.json.example").write_text('{"Values": {"X": "1"}}')

    path, created = ensure_local_settings(tmp_path)
    path.write_text('{"Values": {"X": "edited"}}')
    again, created_again = ensure_local_settings(tmp_path)

    assert (created, created_again) == (True, False)
    assert read_local_settings(again) == {"X": "edited"}


def test_bad_settings_files(tmp_path: Path) -> None:
    with pytest.raises(LocalSettingsError):
        read_local_settings(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LocalSettingsError):
        read_local_settings(tmp_path / "bad.json")
    with pytest.raises(LocalSettingsError):
        ensure_local_settings(tmp_path)


def test_route_prefix_from_host_json(tmp_path: Path) -> None:
    assert read_route_prefix(tmp_path) == "api"
    (tmp_path / "host.json").write_text('{"version": "2.0", "extensions": {"http": {"routePrefix": "/v1/"}}}')
    assert read_route_prefix(tmp_path) == "v1"
    (tmp_path / "host.json").write_text('{"version": "2.0", "extensions": {"http": {"routePrefix": ""}}}')
    assert read_route_prefix(tmp_path) == ""
