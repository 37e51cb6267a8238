"""Profiles: named defaults in TOML, so notebooks name `dev`/`prod`, not model ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from openrouter_nb import config
from openrouter_nb.session import Session, get_session, set_session, use_profile

PROFILES = """
[profiles.dev]
model = "openrouter/free"
fallback = ["google/gemma-3-27b-it:free"]
max_tokens = 300
budget = 40

[profiles.private]
model = "mistralai/mistral-small-3.2-24b-instruct:free"
provider = { data_collection = "deny" }

[profiles.prod]
model = "google/gemma-3-27b-it"
provider = { order = ["google-ai-studio"], allow_fallbacks = false }
max_tokens = 1000
retries = 1
"""


@pytest.fixture
def profile_path(tmp_path: Path) -> Path:
    path = tmp_path / "openrouter_nb.toml"
    path.write_text(PROFILES)
    return path


def test_profiles_load(profile_path: Path) -> None:
    profiles = config.load_profiles(profile_path)
    assert set(profiles) == {"dev", "private", "prod"}
    assert profiles["dev"].fallback == ("google/gemma-3-27b-it:free",)
    assert profiles["prod"].provider == {"order": ["google-ai-studio"], "allow_fallbacks": False}
    assert "model google/gemma-3-27b-it" in profiles["prod"].describe()


def test_local_file_wins_over_home(profile_path: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('[profiles.other]\nmodel = "x/y:free"\n')
    env = {"OPENROUTER_NB_HOME": str(home)}
    assert config.profile_file(env, cwd=tmp_path) == profile_path
    assert config.profile_file(env, cwd=home) == home / "config.toml"


def test_session_from_profile_applies_everything(profile_path: Path, tmp_path: Path) -> None:
    session = Session.from_profile("dev", path=profile_path, sandbox=True, home=tmp_path)
    assert (session.model, session.budget, session.max_tokens) == ("openrouter/free", 40, 300)
    session.sandbox.queue_fault("no_endpoints_404")
    answer = session.ask("hello")
    assert answer.fallback == "google/gemma-3-27b-it:free"  # the profile's fallback, labelled
    body = session.sandbox.requests[-1].json
    assert body["max_tokens"] == 300


def test_provider_preferences_reach_the_request(profile_path: Path, tmp_path: Path) -> None:
    session = Session.from_profile("private", path=profile_path, sandbox=True, home=tmp_path)
    session.ask("hello")
    assert session.sandbox.requests[-1].json["provider"] == {"data_collection": "deny"}
    # per call, merged over the profile's
    session.ask("hello", provider={"ignore": ["SomeProvider"]})
    assert session.sandbox.requests[-1].json["provider"] == {
        "data_collection": "deny", "ignore": ["SomeProvider"]}


def test_use_profile_switches_the_default_session(profile_path: Path, monkeypatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.setenv("OPENROUTER_NB_HOME", str(tmp_path))
    old = set_session(None)
    try:
        session = use_profile("prod", path=profile_path)
        assert get_session() is session and session.profile == "prod"
        assert session.model == "google/gemma-3-27b-it" and session.retry_policy.retries == 1
    finally:
        set_session(old)


def test_a_key_in_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "openrouter_nb.toml"
    path.write_text('[profiles.bad]\nmodel = "a/b:free"\napi_key = "whatever"\n')
    with pytest.raises(ValueError, match="keys do not belong in files"):
        config.load_profiles(path)


def test_unknown_profile_and_field(tmp_path: Path, profile_path: Path) -> None:
    with pytest.raises(KeyError, match="No profile 'staging' \\(known: dev, private, prod"):
        config.get_profile("staging", profile_path)
    bad = tmp_path / "bad.toml"
    bad.write_text('[profiles.x]\nmodle = "a/b:free"\n')
    with pytest.raises(ValueError, match="unknown field\\(s\\) modle"):
        config.load_profiles(bad)
