"""Evidence packs verify elsewhere with only the pack; tampering fails with a clear reason. Signed notes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import Config
from ledger import Ledger, build_evidence, merkle, prove, verify_evidence
from ledger.checkpoint import Checkpoint, checkpoint_body, parse_body, sign_checkpoint
from ledger.note import Signer, Verifier, open_note, sign_note
from tests.unit.ledger.conftest import records


def _pack(config: Config) -> dict[str, object]:
    with Ledger.open(config) as led:
        led.append(records(23))
        p = prove(led, "test:4")
        assert merkle.verify_inclusion(
            bytes.fromhex(p["leaf_hash"]),
            4,
            p["tree_size"],
            [bytes.fromhex(x) for x in p["inclusion_proof"]],
            bytes.fromhex(p["root_hash"]),
        )
        return build_evidence(led, pull_request="https://github.com/o/r/pull/3")


def test_pack_made_here_verifies_elsewhere_with_only_the_pack(config: Config, tmp_path: Path) -> None:
    pack = _pack(config)
    elsewhere = tmp_path.parent / (tmp_path.name + "-auditor") / "pack.json"
    elsewhere.parent.mkdir()
    elsewhere.write_text(json.dumps(pack))
    shutil.rmtree(config.ledger_path.parent)  # the ledger and its key are gone: only the pack remains
    r = verify_evidence(elsewhere)
    assert r.ok, r.reason
    assert r.entries_verified == 3 and not r.key_trusted
    assert any("DENY rail 1" in line for line in r.summary)
    # its proofs agree with ledger.merkle
    cp_root = bytes.fromhex(r.root_hash or "")
    for item in pack["entries"]:  # type: ignore[attr-defined]
        import base64

        proof = [base64.b64decode(x) for x in item["inclusion_proof"]]
        assert merkle.verify_inclusion(
            merkle.leaf_hash(item["entry"].encode()), item["seq"], r.tree_size or 0, proof, cp_root
        )


def test_trusted_key_must_match(config: Config, tmp_path: Path) -> None:
    pack = _pack(config)
    assert verify_evidence(pack, trusted_key=Path(str(config.key_path) + ".pub")).key_trusted
    other = Signer.generate(config.ledger.origin).verifier().encode()
    r = verify_evidence(pack, trusted_key=other)
    assert not r.ok and "not the trusted key" in (r.reason or "")


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        (
            lambda p: p["entries"][0].__setitem__("entry", p["entries"][0]["entry"].replace("deny", "allow")),
            "inclusion proof does not lead to the signed root",
        ),
        (lambda p: p["entries"][1].__setitem__("seq", 0), "was written as seq"),
        (
            lambda p: p["checkpoint"].__setitem__(
                "note", p["checkpoint"]["note"].replace("\n23\n", "\n24\n")
            ),
            "does not verify",
        ),
        (
            lambda p: p.__setitem__(
                "public_key", Signer.generate("railbook.local/ledger").verifier().encode()
            ),
            "not signed by the expected key",
        ),
        (lambda p: p["entries"][0]["inclusion_proof"].pop(), "inclusion proof does not lead"),
        (lambda p: p.pop("checkpoint"), "malformed pack"),
    ],
)
def test_tampered_pack_fails_with_a_clear_reason(config: Config, edit: object, reason: str) -> None:
    pack = json.loads(json.dumps(_pack(config)))
    edit(pack)  # type: ignore[operator]
    r = verify_evidence(pack)
    assert not r.ok and reason in (r.reason or ""), r.reason


def test_signed_note_matches_go_format_and_rejects_changes() -> None:
    s = Signer.generate("example.com/log")
    v = s.verifier()
    assert Verifier.parse(v.encode()) == v
    assert Signer.parse(s.encode()) == s
    note = sign_note("hello\n", s)
    assert note.startswith("hello\n\n\u2014 example.com/log ")
    assert open_note(note, v) == "hello\n"
    with pytest.raises(ValueError, match="altered"):
        open_note(note.replace("hello", "hellO"), v)


def test_go_note_known_verifier_key_parses() -> None:
    # golang.org/x/mod/sumdb/note example key (note_test.go / package docs)
    vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    v = Verifier.parse(vkey)
    assert v.name == "PeterNeumann" and v.key_id.hex() == "c74f20a3"
    signed = (
        "If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n\n"
        "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"  # noqa: E501
    )
    assert open_note(signed, v).startswith("If you think")


@settings(max_examples=50, deadline=None)
@given(size=st.integers(0, 2**40), root=st.binary(min_size=32, max_size=32), bit=st.integers(0, 39))
def test_checkpoint_round_trip_and_size_is_bound_by_the_signature(size: int, root: bytes, bit: int) -> None:
    s = Signer.generate("railbook.local/ledger")
    from datetime import UTC, datetime

    cp = sign_checkpoint(s, "railbook.local/ledger", size, root, datetime.now(UTC))
    assert parse_body(checkpoint_body(cp.origin, size, root)) == (cp.origin, size, root)
    again = Checkpoint.from_dict(json.loads(cp.to_line()))
    again.verify(s.verifier())
    forged = cp.signed_note_text.replace(f"\n{size}\n", f"\n{size ^ (1 << bit)}\n", 1)
    with pytest.raises(ValueError):
        Checkpoint.from_note(forged, cp.created_at, s.verifier())
