"""Settings: every variable validated at start-up, one sentence per mistake, secrets hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from hailuo.model.config import Secret
from hailuo.settings import SettingsError, load_settings

BASE = {"DISCORD_TOKEN": "discord-token-xyz", "MINIMAX_API_KEY": "mm-key-xyz"}


def load(**env: str):
    return load_settings(environ={**BASE, **env}, dotenv_path=None)


def refused(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=env, dotenv_path=None)
    message = str(caught.value)
    assert message.endswith(".") and "\n" not in message  # one sentence
    return message


def test_missing_discord_token_is_one_clear_sentence() -> None:
    message = refused({"MINIMAX_API_KEY": "k"})
    assert "DISCORD_TOKEN" in message


def test_the_cli_may_run_without_a_discord_token() -> None:
    settings = load_settings(environ={}, dotenv_path=None, require_discord=False)
    assert settings.discord_token.reveal() == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MINIMAX_BASE_URL", "api.minimax.io"),
        ("MINIMAX_BASE_URL", "ftp://api.minimax.io"),
        ("DISCORD_API_BASE_URL", "https://"),
        ("DISCORD_GATEWAY_URL", "https://gateway.discord.gg"),
        ("HAILUO_PUBLIC_URL", "bot.example.org/hooks"),
    ],
)
def test_a_malformed_url_names_its_variable(name: str, value: str) -> None:
    assert name in refused({**BASE, name: value})


def test_a_provider_named_without_its_key_is_refused() -> None:
    message = refused({**BASE, "HAILUO_PROVIDERS": "minimax,freepik"})
    assert "FREEPIK_API_KEY" in message


def test_an_unknown_provider_is_refused() -> None:
    message = refused({**BASE, "HAILUO_PROVIDERS": "minimax,runway"})
    assert "'runway'" in message and "minimax" in message


def test_a_provider_named_twice_is_refused() -> None:
    assert "at most once" in refused({**BASE, "HAILUO_PROVIDERS": "minimax,minimax"})


def test_order_defaults_to_every_keyed_provider_in_the_documented_order() -> None:
    settings = load(GPTGE_API_KEY="g", FREEPIK_API_KEY="f")
    assert settings.provider_names == ("minimax", "freepik", "gptge")
    settings = load(GPTGE_API_KEY="g", HAILUO_PROVIDERS=" GPTGE , minimax ")
    assert settings.provider_names == ("gptge", "minimax")


def test_dotenv_is_read_under_the_real_environment(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "DISCORD_TOKEN=from-file\nMINIMAX_API_KEY=file-key\nHAILUO_POLL_SECONDS=9\n",
        encoding="utf-8",
    )
    settings = load_settings(environ={"DISCORD_TOKEN": "from-env"}, dotenv_path=dotenv)
    assert settings.discord_token.reveal() == "from-env"  # the environment wins
    assert settings.providers[0].api_key == Secret("file-key")  # the file fills the rest
    assert settings.poll_seconds == 9


def test_no_key_at_all_starts_in_demo_mode() -> None:
    settings = load_settings(environ={"DISCORD_TOKEN": "t"}, dotenv_path=None)
    assert settings.provider_names == ("demo",) and settings.demo_mode
    demo = settings.providers[0]
    assert demo.api_key is None and demo.base_url == "http://127.0.0.1:8080"
    assert demo.directory == Path("data/demo")


def test_demo_may_be_asked_for_but_not_mixed_with_real_providers() -> None:
    settings = load(HAILUO_PROVIDERS="demo", HAILUO_HTTP_HOST="0.0.0.0", HAILUO_HTTP_PORT="9000")
    assert settings.demo_mode
    assert settings.providers[0].base_url == "http://127.0.0.1:9000"  # loopback for a wildcard
    assert "demo" in refused({**BASE, "HAILUO_PROVIDERS": "minimax,demo"})


def test_real_keys_mean_no_demo() -> None:
    assert not load().demo_mode


@pytest.mark.parametrize(("value", "expected"), [("5", 5), ("20", 20), ("", None)])
def test_submits_per_minute_is_parsed(value: str, expected: int | None) -> None:
    settings = load(MINIMAX_SUBMITS_PER_MINUTE=value)
    assert settings.providers[0].submits_per_minute == expected


@pytest.mark.parametrize("value", ["0", "-1", "five", "2.5"])
def test_a_bad_submits_per_minute_is_refused(value: str) -> None:
    assert "MINIMAX_SUBMITS_PER_MINUTE" in refused({**BASE, "MINIMAX_SUBMITS_PER_MINUTE": value})


def test_secrets_never_show_in_repr_or_str() -> None:
    settings = load(FREEPIK_API_KEY="fp-key-xyz", FREEPIK_WEBHOOK_SECRET="whsec_c2VjcmV0")
    for text in (repr(settings), str(settings), f"{settings}", repr(settings.providers)):
        for secret in ("discord-token-xyz", "mm-key-xyz", "fp-key-xyz", "whsec_c2VjcmV0"):
            assert secret not in text
    assert "***" in repr(settings)
    assert settings.freepik_webhook_secret == Secret("whsec_c2VjcmV0")


def test_freepik_key_header_is_configurable() -> None:
    from hailuo.settings import SettingsError, load_settings

    env = {
        "DISCORD_TOKEN": "t",
        "FREEPIK_API_KEY": "k",
        "FREEPIK_API_KEY_HEADER": "X-Magnific-Api-Key",
    }
    (freepik,) = load_settings(environ=env, dotenv_path=None).providers
    assert freepik.key_header == "x-magnific-api-key"
    with pytest.raises(SettingsError, match="FREEPIK_API_KEY_HEADER"):
        load_settings(environ={**env, "FREEPIK_API_KEY_HEADER": "bad header:"}, dotenv_path=None)


def test_a_postgresql_url_picks_postgresql_and_keeps_its_password_secret() -> None:
    url = "postgresql://hailuo:pa55word@db.example:5432/hailuo"
    settings = load(HAILUO_DATABASE=url)
    assert settings.database_url is not None and settings.database_url.reveal() == url
    assert settings.database_target == url
    assert settings.database == Path("data/hailuo.sqlite3")  # its folder: downloads, demo files
    assert "pa55word" not in repr(settings)
    plain = load(HAILUO_DATABASE="/srv/bot.sqlite3")
    assert plain.database_url is None and plain.database_target == Path("/srv/bot.sqlite3")
