"""Where clients find their token: an argument, a file, or the environment (never only argv)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cnnlab.cli import main
from cnnlab.client import Client, ClientError
from cnnlab.client._client import resolve_token


@pytest.fixture(autouse=True)
def no_token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CNNLAB_TOKEN", raising=False)
    monkeypatch.delenv("CNNLAB_TOKEN_FILE", raising=False)


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given, env = tmp_path / "given", tmp_path / "env"
    given.write_text("from-given-file\n")
    env.write_text("  from-env-file  \n")
    monkeypatch.setenv("CNNLAB_TOKEN_FILE", str(env))
    assert resolve_token() == "from-env-file"
    monkeypatch.setenv("CNNLAB_TOKEN", "from-env")
    assert resolve_token() == "from-env"
    assert resolve_token(token_file=given) == "from-given-file"
    assert resolve_token("explicit", token_file=given) == "explicit"


def test_bad_token_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ClientError, match="cannot read the token file"):
        resolve_token(token_file=tmp_path / "missing")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ClientError, match="is empty"):
        resolve_token(token_file=tmp_path / "empty")
    with pytest.raises(ClientError, match="CNNLAB_TOKEN_FILE"):
        resolve_token()


def test_the_client_sends_the_files_token(tmp_path: Path) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json={"items": [], "next": None})

    path = tmp_path / "token"
    path.write_text("cnl_secret\n")
    with Client("http://lab", token_file=path, transport=httpx.MockTransport(handler)) as c:
        c.jobs()
    assert seen == ["Bearer cnl_secret"]


def test_the_commands_take_a_token_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # No server: the command gets as far as connecting, so the token was found.
    path = tmp_path / "token"
    path.write_text("cnl_secret\n")
    url = "http://127.0.0.1:9"
    assert main(["jobs", "--url", url, "--token-file", str(path)]) == 1
    assert "cannot reach" in capsys.readouterr().err
    monkeypatch.setenv("CNNLAB_TOKEN_FILE", str(path))
    assert main(["jobs", "--url", url]) == 1
    assert "cannot reach" in capsys.readouterr().err
    assert main(["jobs", "--url", url, "--token-file", str(tmp_path / "nope")]) == 1
    assert "cannot read the token file" in capsys.readouterr().err
