"""`recsys-data` as a process: exit code 2 and one line on stderr for user errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from datafixtures import run_data_cli as _run

HM = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "hm"


@pytest.fixture()
def fake_hm(tmp_path: Path) -> Path:
    """A 3-file H&M-shaped source (no images needed beyond two)."""
    root = tmp_path / "hm"
    (root / "images" / "010").mkdir(parents=True)
    pd.DataFrame({"article_id": ["0100000001", "0100000002"], "product_type_name": ["Top", "Bag"]}).assign(
        **{c: "x" for c in ["prod_name", "product_group_name", "graphical_appearance_name", "colour_group_name",
                            "perceived_colour_value_name", "perceived_colour_master_name", "department_name",
                            "index_name", "index_group_name", "section_name", "garment_group_name"]}
    ).to_csv(root / "articles.csv", index=False)
    for a in ("0100000001", "0100000002"):
        (root / "images" / "010" / f"{a}.jpg").write_bytes(b"\xff\xd8")
    pd.DataFrame({"customer_id": ["a", "b"], "age": [30, 40], "club_member_status": ["ACTIVE"] * 2,
                  "fashion_news_frequency": ["NONE", "Regularly"], "postal_code": ["p", "q"]}).to_csv(
        root / "customers.csv", index=False)
    pd.DataFrame({"t_dat": ["2020-01-01", "2020-01-02", "2020-01-09", "2020-01-20"],
                  "customer_id": ["a", "b", "a", "b"],
                  "article_id": ["0100000001", "0100000002", "0100000002", "0100000001"],
                  "price": [0.1, 0.2, 0.3, 0.1], "sales_channel_id": [1, 2, 2, 1]}).to_csv(
        root / "transactions.csv", index=False)
    return root


def test_cli_success_then_bad_value_exits_2(fake_hm: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    ok = _run("data=hm", f"paths.hm_dir={fake_hm}", f"paths.output_dir={out}", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert (out / "data" / "hm" / "manifest.json").is_file()
    df = pd.read_csv(fake_hm / "transactions.csv", dtype=str)
    df.loc[2, "price"] = "abc"
    df.to_csv(fake_hm / "transactions.csv", index=False)
    shutil.rmtree(out)
    bad = _run("data=hm", f"paths.hm_dir={fake_hm}", f"paths.output_dir={out}", cwd=tmp_path)
    assert bad.returncode == 2
    assert "transactions.csv, row 3, column 'price'" in bad.stderr
    assert "Traceback" not in bad.stderr and not (out / "data" / "hm").exists()


@pytest.mark.parametrize(("args", "needle"), [
    (["data=nosuch"], "nosuch"),
    (["data=hm", "+data.tables.items.columns.itm=article_id"], "unknown canonical column"),
    (["data=hm", "split=nosuch"], "nosuch"),
    (["data=hm", "typo_key=1"], "typo_key"),
])
def test_cli_config_errors_exit_2(fake_hm: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    res = _run(*args, f"paths.hm_dir={fake_hm}", f"paths.output_dir={tmp_path / 'o'}", cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr and "Traceback" not in res.stderr
