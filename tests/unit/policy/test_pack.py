"""Loading packs: the default pack validates; every kind of broken pack names file, line and problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.config import Config
from core.errors import PolicyLoadError
from policy import DEFAULT_PACK_DIR, PolicyEngine
from policy._pack import load_pack, split_policies


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    dst = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK_DIR, dst, ignore=shutil.ignore_patterns("tests"))
    return dst


def test_default_pack_covers_every_rail_with_annotated_forbids() -> None:
    p = load_pack(DEFAULT_PACK_DIR)
    forbids = [i for i in p.policies.values() if i.effect == "forbid"]
    assert {i.annotations["rail"] for i in forbids} == {"1", "2", "3", "4"}
    assert all({"id", "rail", "severity", "title", "remediation"} <= set(i.annotations) for i in forbids)
    destructive = {a for a, g in p.actions.items() if "Destructive" in g}
    for action in (
        "rds:DeleteDBInstance",
        "dynamodb:DeleteTable",
        "s3:DeleteBucket",
        "iam:AttachRolePolicy",
        "iam:CreateAccessKey",
        "secretsmanager:RotateSecret",
        "cloudtrail:StopLogging",
        "ec2:TerminateInstances",
        "k8s:delete:*",
        "sql:DropTable",
        "sql:AlterTable",
        "sql:Truncate",
        "sql:Delete:all-rows",
        "git:ForcePush",
        "terraform:Destroy",
    ):
        assert action in destructive, action
    assert "SchemaChange" in p.actions["sql:DropTable"]


def test_version_is_stable_and_changes_with_any_file(pack: Path) -> None:
    v1 = load_pack(pack).version
    assert load_pack(pack).version == v1 == load_pack(DEFAULT_PACK_DIR).version
    (pack / "rail1.cedar").write_text((pack / "rail1.cedar").read_text() + "\n// comment\n")
    v2 = load_pack(pack).version
    cat = pack / "catalog.json"
    cat.write_text(cat.read_text().replace("empties the table", "empties it"))
    assert len({v1, v2, load_pack(pack).version}) == 3


def test_attribute_typo_names_file_and_line(pack: Path) -> None:
    f = pack / "rail2.cedar"
    f.write_text(f.read_text().replace("when { resource.protected }", "when { resource.protectd }"))
    with pytest.raises(PolicyLoadError) as exc:
        load_pack(pack)
    msg = str(exc.value)
    assert "rail2.cedar:13" in msg and "protectd" in msg


def test_parse_error_names_file_and_line(pack: Path) -> None:
    (pack / "zz.cedar").write_text(
        'permit (principal, action, resource);\n\n@id("x")\n'
        "forbid (principal, action, resource) when { 1 + };\n"
    )
    with pytest.raises(PolicyLoadError, match=r"zz\.cedar:3: policy does not parse"):
        load_pack(pack)


@pytest.mark.parametrize(
    ("annotations", "problem"),
    [
        ('@rail("1") @severity("high") @title("t")', "needs @id"),
        ('@id("z") @rail("7") @severity("high") @title("t")', "@rail must be"),
        ('@id("z") @rail("1") @severity("huge") @title("t")', "@severity must be"),
        ('@id("z") @rail("1") @severity("high")', "@title"),
        (
            '@id("rail1-agent-in-prod") @rail("1") @severity("high") @title("t")',
            "already used at rail1.cedar:4",
        ),
    ],
)
def test_forbid_annotations_are_required(pack: Path, annotations: str, problem: str) -> None:
    (pack / "zz.cedar").write_text(f"// extra\n{annotations}\nforbid (principal, action, resource);\n")
    with pytest.raises(PolicyLoadError, match=r"zz\.cedar:2") as exc:
        load_pack(pack)
    assert problem in str(exc.value)


def test_unknown_action_in_policy_is_a_validation_error(pack: Path) -> None:
    (pack / "zz.cedar").write_text(
        '@id("z") @rail("1") @severity("high") @title("t")\n'
        'forbid (principal, action == Action::"nope:Nope", resource);\n'
    )
    with pytest.raises(PolicyLoadError, match=r"zz\.cedar:1"):
        load_pack(pack)


def test_bad_schema_names_the_file(pack: Path) -> None:
    f = pack / "railbook.cedarschema"
    f.write_text(f.read_text().replace('"tool": String', '"tool": Strin'))
    with pytest.raises(PolicyLoadError, match=r"railbook\.cedarschema:\d+: the Cedar schema is invalid"):
        load_pack(pack)


def test_catalog_must_name_declared_actions(pack: Path) -> None:
    cat = pack / "catalog.json"
    cat.write_text(cat.read_text().replace('"as": "sql:Delete:all-rows"', '"as": "sql:Nope"'))
    with pytest.raises(PolicyLoadError, match="sql:Nope"):
        load_pack(pack)
    cat.write_text("[1]")
    with pytest.raises(PolicyLoadError, match="expected a JSON object"):
        load_pack(pack)


def test_missing_directory_and_empty_pack(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="does not exist"):
        load_pack(tmp_path / "nope")
    with pytest.raises(PolicyLoadError, match=r"no \*\.cedar"):
        load_pack(tmp_path)


def test_engine_load_uses_config_dir(pack: Path) -> None:
    (pack / "zz.cedar").write_text(
        '@id("extra") @rail("4") @severity("low") @title("t")\n'
        "forbid (principal, action, resource) when { false };\n"
    )
    eng = PolicyEngine.load(Config.model_validate({"policy": {"dir": str(pack)}}))
    assert "extra" in eng.policies and eng.version != load_pack(DEFAULT_PACK_DIR).version


def test_split_policies_ignores_semicolons_in_strings_and_comments() -> None:
    text = (
        '// a; comment\n@id("a;b")\npermit (principal, action, resource);\n\n'
        'forbid (principal, action, resource)\n  when { "x;" == "y" };\n'
    )
    chunks = split_policies(text)
    assert [line for line, _ in chunks] == [2, 5]
