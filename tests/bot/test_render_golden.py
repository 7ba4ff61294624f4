"""Golden files of every message kind the bot sends (`tests/bot/golden/<name>.json`): the exact
notification text and blocks. A change in rendering shows up as a diff of these files; after
checking the new output, regenerate them with `TIKVOPS_UPDATE_GOLDEN=1 pytest tests/bot`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.bot.records import all_messages

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("TIKVOPS_UPDATE_GOLDEN") == "1"
MESSAGES = all_messages()


def _dump(name: str) -> str:
    message = MESSAGES[name]
    body = {"text": message.text, "blocks": message.blocks}
    return json.dumps(body, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_matches_golden_file(name: str) -> None:
    path = GOLDEN / f"{name}.json"
    rendered = _dump(name)
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no golden file {path.name}; run with TIKVOPS_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(encoding="utf-8")


def test_every_golden_file_is_still_rendered() -> None:
    names = {p.stem for p in GOLDEN.glob("*.json")}
    assert names == set(MESSAGES)
