"""`monitor drift` through click's CliRunner: formats, exit codes, one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from monitor.cli.drift import drift


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("drift")
    rng = np.random.default_rng(0)

    def frame(n: int, shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "score": rng.normal(shift, 1, n),
                "segment": rng.choice(list("xyz"), n),
                "level": rng.integers(0, 3, n),
                "amount": rng.poisson(30, n).astype(float),
                "row_id": [f"r{i}" for i in range(n)],
            }
        )

    frame(3000, 0.0).to_csv(d / "ref.csv", index=False)
    frame(2000, 0.5).to_parquet(d / "cur.parquet")
    frame(2000, 0.0).to_csv(d / "clean.csv", index=False)
    pd.DataFrame({"other": [1, 2]}).to_csv(d / "other.csv", index=False)
    (d / "bad.parquet").write_bytes(b"PAR1 not really parquet")
    (d / "data.xlsx").write_bytes(b"xx")
    return {p.stem if p.suffix != ".parquet" else p.stem + "_pq": str(p) for p in d.iterdir()}


def run(*args: str) -> tuple[int, str, str]:
    res = CliRunner().invoke(drift, list(args))
    return res.exit_code, res.stdout, res.stderr


def test_json_shape_and_exit_code(files: dict[str, str]) -> None:
    code, out, _ = run(files["ref"], files["cur_pq"], "--format", "json")
    assert code == 1
    doc = json.loads(out)
    assert set(doc["dataset"]) >= {"columns", "drifted_columns", "share", "drifted"}
    assert doc["dataset"]["columns"] == 4 and doc["dataset"]["drifted"] is True
    required = {
        "column",
        "kind",
        "method",
        "method_kind",
        "statistic",
        "p_value",
        "threshold",
        "drifted",
        "effect_size",
        "n_reference",
        "n_current",
    }
    for col in doc["columns"]:
        assert required <= set(col)
        assert col["kind"] in ("num", "cat") and col["method_kind"] in ("p_value", "distance")
    by = {c["column"]: c for c in doc["columns"]}
    assert by["score"]["drifted"] and not by["segment"]["drifted"]
    assert by["level"]["kind"] == "cat"  # few-valued integers are categorical, as in Evidently


def test_clean_csv_exits_zero_and_evidently_policy(files: dict[str, str]) -> None:
    code, out, _ = run(files["ref"], files["clean"])
    assert code == 0 and "no drift" in out
    code, out, _ = run(files["ref"], files["clean"], "--policy", "evidently", "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert {c["method"] for c in doc["columns"]} == {"wasserstein", "jensenshannon"}
    assert all(c["p_value"] is None for c in doc["columns"])


def test_options(files: dict[str, str]) -> None:
    _, out, _ = run(
        files["ref"],
        files["cur_pq"],
        "--format",
        "json",
        "--columns",
        "score,level",
        "--numerical",
        "level",
        "--method",
        "score=psi",
        "--threshold",
        "score=0.5",
        "--policy",
        "evidently",
    )
    doc = json.loads(out)
    by = {c["column"]: c for c in doc["columns"]}
    assert set(by) == {"score", "level"}
    assert by["level"]["kind"] == "num" and by["score"]["method"] == "psi"
    assert by["score"]["threshold"] == 0.5
    _, out, _ = run(
        files["ref"],
        files["cur_pq"],
        "--format",
        "json",
        "--method",
        "ks",
        "--categorical",
        "segment",
        "--columns",
        "score,amount",
    )
    assert {c["method"] for c in json.loads(out)["columns"]} == {"ks"}
    _, out, _ = run(
        files["ref"],
        files["cur_pq"],
        "--format",
        "json",
        "--policy",
        "evidently",
        "--kind-method",
        "num=psi",
        "--kind-method",
        "cat=TVD",
        "--kind-threshold",
        "num=0.3",
        "--method",
        "level=linf",
    )
    by = {c["column"]: c for c in json.loads(out)["columns"]}
    assert by["score"]["method"] == "psi" and by["score"]["threshold"] == 0.3
    assert by["segment"]["method"] == "TVD" and by["level"]["method"] == "linf"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.csv", "ref"], "reference file not found"),
        (["ref", "other"], "no columns in common"),
        (["ref", "bad_pq"], "cannot read current file"),
        (["ref", "data"], "unsupported format"),
        (["ref", "clean", "--method", "nope"], "unknown drift method 'nope'; available:"),
        (["ref", "clean", "--columns", "zzz"], "column 'zzz' is not in both files"),
        (["ref", "clean", "--threshold", "abc"], "--threshold must be a number"),
        (["ref", "clean", "--method", "segment=ks"], "does not accept 'cat'"),
        (["ref", "clean", "--kind-method", "text=ks"], "expected num=VALUE or cat=VALUE"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    files: dict[str, str], args: list[str], message: str
) -> None:
    argv = [files.get(a, a) for a in args]
    code, out, err = run(*argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and out == ""


def test_html_report_is_self_contained(files: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    code, _, _ = run(files["ref"], files["cur_pq"], "--format", "html", "--output", str(target))
    assert code == 1
    page = target.read_text()
    assert page.count('class="chart"') == 4
    assert not re.search(r"<script[^>]*\bsrc=", page)  # nothing loaded from a CDN
    assert "Plotly.newPlot" in page and len(page) > 1_000_000  # plotly.js inlined


def test_output_file_for_json(files: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    code, out, _ = run(files["ref"], files["clean"], "--format", "json", "--output", str(target))
    assert code == 0 and out == ""
    assert json.loads(target.read_text())["dataset"]["drifted_columns"] == 0


def test_multivariate_option(files: dict[str, str]) -> None:
    code, out, _ = run(
        files["ref"],
        files["clean"],
        "--multivariate",
        "--format",
        "json",
        "--columns",
        "score,amount,segment",
    )
    doc = json.loads(out)
    assert [m["method"] for m in doc["multivariate"]] == ["domain_classifier", "pca_reconstruction"]
    assert code == 0 and not any(m["drifted"] for m in doc["multivariate"])
    code, out, _ = run(files["ref"], files["clean"], "--multivariate", "--columns", "score")
    assert "multivariate domain_classifier" in out


@pytest.fixture(scope="module")
def gaps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A reference and small or gappy current windows (issue 16, item 6)."""
    d = tmp_path_factory.mktemp("gaps")
    rng = np.random.default_rng(1)
    n = 2000
    ref = pd.DataFrame(
        {
            "score": rng.normal(0, 1, n),
            "empty_num": rng.normal(0, 1, n),
            "empty_obj": rng.choice(["a", "b"], n),
            "cat50": rng.choice([f"c{i}" for i in range(50)], n),
            "cat500": rng.choice([f"v{i}" for i in range(500)], n),
            "gone": rng.normal(0, 1, n),
        }
    )
    ref.to_csv(d / "ref.csv", index=False)
    cur = ref.drop(columns=["gone"]).iloc[:400].copy()
    cur["score"] = rng.normal(0, 1, 400)
    cur["empty_num"] = np.nan
    cur["empty_obj"] = None
    cur.to_parquet(d / "cur.parquet")
    ref.iloc[:20].drop(columns=["gone"]).to_csv(d / "tiny.csv", index=False)
    return {"ref": str(d / "ref.csv"), "cur": str(d / "cur.parquet"), "tiny": str(d / "tiny.csv")}


def test_missing_data_is_reported_and_has_its_own_exit_code(gaps: dict[str, str]) -> None:
    code, out, err = run(gaps["ref"], gaps["cur"], "--format", "json")
    assert code == 3 and "without a verdict" in err
    doc = json.loads(out)
    assert doc["dataset"]["drifted"] is False
    assert set(doc["dataset"]["without_verdict"]) == {"empty_num", "empty_obj", "gone"}
    by = {c["column"]: c for c in doc["columns"]}
    assert by["empty_obj"]["kind"] == "cat" and by["empty_obj"]["status"] == "insufficient_data"
    assert by["gone"]["message"] == "column missing from the current data"
    assert by["score"]["status"] == "ok"
    code, out, _ = run(gaps["ref"], gaps["cur"])
    assert code == 3 and "3 column(s) WITHOUT A VERDICT" in out and "no drift" in out
    code, _, _ = run(gaps["ref"], gaps["cur"], "--allow-missing")
    assert code == 0


def test_kinds_come_from_the_reference_in_a_small_window(gaps: dict[str, str]) -> None:
    # 20 rows: the current alone would make the 50- and 500-level columns "text" (skipped)
    code, out, _ = run(gaps["ref"], gaps["tiny"], "--format", "json")
    doc = json.loads(out)
    by = {c["column"]: c for c in doc["columns"]}
    assert by["cat50"]["kind"] == "cat" and by["cat500"]["kind"] == "cat"
    assert not doc["dataset"]["skipped"]
    assert all(c["status"] == "insufficient_data" for c in doc["columns"])
    assert code == 3


def test_html_report_names_columns_without_a_verdict(gaps: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "gaps.html"
    code, _, _ = run(gaps["ref"], gaps["cur"], "--format", "html", "--output", str(target))
    page = target.read_text()
    assert code == 3 and 'class="no-verdict"' in page and "empty_num" in page
