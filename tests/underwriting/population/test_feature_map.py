"""The feature map: one declared mapping from application to model row, strictly checked."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lendstack.cli.applicants import app as applicants_app
from lendstack.core.errors import ValidationError
from lendstack.underwriting.application import Application
from lendstack.underwriting.features import FeatureMap, default_feature_map_path

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "examples" / "application.json"

HEAD = "format = 1\nreference_apr = 0.18\n"


def _map(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "map.toml"
    path.write_text(HEAD + body, encoding="utf-8")
    return path


def _feature(name: str, **keys: str) -> str:
    lines = "".join(f'{k} = "{v}"\n' for k, v in keys.items())
    return f'[[feature]]\nname = "{name}"\n{lines}label = "text"\n'


@pytest.fixture(scope="module")
def fmap() -> FeatureMap:
    return FeatureMap.load(default_feature_map_path())


@pytest.fixture(scope="module")
def example() -> Application:
    return Application.model_validate(json.loads(EXAMPLE.read_text(encoding="utf-8")))


def test_row_equals_the_training_table_row(tmp_path: Path, fmap: FeatureMap) -> None:
    result = CliRunner().invoke(
        applicants_app, ["generate", "--n", "400", "--seed", "5", "--out", str(tmp_path / "d")]
    )
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "d" / "applications.jsonl").read_text(encoding="utf-8").splitlines()
    with (tmp_path / "d" / "training.csv").open(encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(lines) == len(table) == 400
    categorical = {f.name for f in fmap.features if f.categorical}
    for line, stored in zip(lines, table, strict=True):
        row = fmap.row(Application.model_validate_json(line))
        assert set(stored) == {*row, "defaulted"}
        for name, value in row.items():
            assert (stored[name] if name in categorical else float(stored[name])) == value, name


def test_example_row(fmap: FeatureMap, example: Application) -> None:
    row = fmap.row(example)
    assert row["age"] == example.age
    assert row["employment_type"] == "salaried"
    assert row["obligations_to_income"] == pytest.approx(1500 / 18000)
    assert row["unsecured_balance_to_income"] == pytest.approx(12000 / 18000)
    assert row["requested_amount_to_income"] == pytest.approx(20000 / 18000)
    installment = 20000 * 0.015 / (1 - 1.015**-12)
    assert row["installment_burden"] == pytest.approx((1500 + installment) / 18000)
    assert row["inquiries_3m"] == 1.0
    assert not {"name", "resident_id", "mobile", "province", "city"} & set(row)


def test_batch_forms_agree(fmap: FeatureMap, example: Application) -> None:
    apps = [example, example.model_copy(update={"channel": "other"})]
    rows = fmap.rows(apps)
    columns = fmap.columns(apps)
    assert rows == [fmap.row(a) for a in apps]
    assert columns == {k: [r[k] for r in rows] for k in fmap.names}


def test_labels_read_as_reasons(fmap: FeatureMap) -> None:
    labels = fmap.labels()
    assert list(labels) == list(fmap.names)
    assert all(entry["label"] and entry["label"] != name for name, entry in labels.items())


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (_feature("x", source="bureau.nope"), "x", "unknown path"),
        (_feature("x", source="nope"), "x", "unknown path"),
        (_feature("x", source="bureau.inquiries_3m.more"), "x", "unknown path"),
        (_feature("x", source="bureau"), "x", "group"),
        (_feature("x", derived="credit_appetite"), "x", "unknown derived"),
        (_feature("who", source="applicant.resident_id"), "who", "personal data"),
        (_feature("n", source="applicant.name"), "n", "personal data"),
        (_feature("x", source="loan.amount", derived="age"), "x", "exactly one"),
        (_feature("x"), "x", "exactly one"),
        (_feature("x", derived="age") + _feature("x", derived="age"), "x", "twice"),
        (_feature("defaulted", derived="age"), "feature[0]", "reserved"),
        (_feature("x", derived="age", colour="red"), "x", "unknown keys"),
        ("", "feature", "at least one"),
    ],
)
def test_bad_maps_name_the_feature(tmp_path: Path, body: str, field: str, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FeatureMap.load(_map(tmp_path, body))
    assert caught.value.field == field
    assert words in caught.value.message


def test_bad_header_and_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "map.toml"
    path.write_text("format = 2\nreference_apr = 0.18\n" + _feature("a", derived="age"))
    with pytest.raises(ValidationError, match="format"):
        FeatureMap.load(path)
    path.write_text("format = 1\nreference_apr = 1.5\n" + _feature("a", derived="age"))
    with pytest.raises(ValidationError, match="reference_apr"):
        FeatureMap.load(path)
    path.write_text("not = [toml")
    with pytest.raises(ValidationError, match="cannot read"):
        FeatureMap.load(path)
    with pytest.raises(ValidationError, match="cannot read"):
        FeatureMap.load(tmp_path / "absent.toml")
