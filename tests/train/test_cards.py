"""Model cards: one per shipped weight set, rendered from its metadata (numbers never typed by hand), packaged."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from train import cards


def test_every_shipped_weight_set_has_an_up_to_date_card():
    assert cards.shipped() and cards.stale_cards() == []
    assert cards.main(["--check"]) == 0


def test_card_numbers_come_from_the_metadata():
    meta = json.loads((cards.PRETRAINED_DIR / "denoise-mobile.json").read_text())
    card = cards.render("denoise-mobile", meta)
    row = next(r for r in meta["evaluation"]["rows"] if r["level"] == 25.0)
    assert f"| 25 | {row['psnr']:.2f} | {row['input_psnr']:.2f} | {row['psnr'] - row['input_psnr']:+.2f} |" in card
    assert "CBSD432" in card and "research-use terms" in card and "σ of Gaussian noise" in card
    row["psnr"] += 1.0
    assert cards.render("denoise-mobile", meta) != card


def test_stale_card_is_reported(tmp_path, monkeypatch, capsys):
    for name in ("sr-mobile.json", "sr-mobile.safetensors"):
        (tmp_path / name).write_bytes((cards.PRETRAINED_DIR / name).read_bytes())
    monkeypatch.setattr(cards, "PRETRAINED_DIR", tmp_path)
    assert cards.main(["--check"]) == 1 and "sr-mobile" in capsys.readouterr().err
    assert cards.main([]) == 0 and cards.main(["--check"]) == 0
    assert "Set5" in (tmp_path / "sr-mobile.md").read_text()


def test_cards_are_package_data():
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert "pretrained/*.md" in pyproject["tool"]["setuptools"]["package-data"]["train"]
