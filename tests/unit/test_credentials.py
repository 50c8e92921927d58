"""API credentials: "name:token" and "name=token" name a person; a bare token does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from pingan.http.context import Credential, credential_of, token_name
from pingan.runtime.secrets import add_named_token, named_tokens

ACCEPTED = ("shared-token", "alice:tok-a", "bob=tok-b", "x9y-Z_1")


@pytest.mark.parametrize(
    ("presented", "expected"),
    [
        ("shared-token", Credential("token-1", False)),
        ("tok-a", Credential("alice", True)),
        ("tok-b", Credential("bob", True)),
        ("x9y-Z_1", Credential("token-4", False)),
        ("alice:tok-a", None),
        ("", None),
        ("tok", None),
    ],
)
def test_who_a_token_is(presented: str, expected: Credential | None) -> None:
    assert credential_of(presented, ACCEPTED) == expected
    assert token_name(presented, ACCEPTED) == (expected.name if expected else None)


def test_tokens_add_writes_a_private_file_of_named_tokens(tmp_path: Path) -> None:
    token = add_named_token(tmp_path, "carol")
    assert named_tokens(tmp_path) == (f"carol:{token}",)
    assert (tmp_path / "api_tokens").stat().st_mode & 0o777 == 0o600
    assert credential_of(token, named_tokens(tmp_path)) == Credential("carol", True)
    with pytest.raises(ValueError, match="already"):
        add_named_token(tmp_path, "carol")
    with pytest.raises(ValueError, match="name"):
        add_named_token(tmp_path, "bad name\n")
