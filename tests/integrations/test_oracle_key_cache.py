"""An organisation's Oracle JWT key is parsed and validated once per process, not per sync."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.integrations.oracle_fusion import load_rsa_private_key
from app.sandbox.keys import demo_private_key_pem


def test_the_same_key_is_loaded_once(tmp_path: Path) -> None:
    pem = demo_private_key_pem(tmp_path / "key.pem")
    first = load_rsa_private_key(pem)
    assert load_rsa_private_key(pem) is first  # a sweep builds one client per user


def test_a_bad_key_is_refused_every_time() -> None:
    for _ in range(2):
        with pytest.raises(ValueError, match="not a PEM private key"):
            load_rsa_private_key("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----")
