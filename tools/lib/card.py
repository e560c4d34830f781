"""The model card: read, and written back in its hand-written layout so diffs show only what changed.

Every tool that writes a card goes through save_card, so the layout has one definition.
"""
from __future__ import annotations

import json
from pathlib import Path

INLINE_WIDTH = 100


class CardError(ValueError):
    """A model card that cannot be read, worded for the person who passed it."""


def load_card(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CardError(f"{path}: model card not found") from None
    except json.JSONDecodeError as error:
        raise CardError(f"{path}: model card is not valid JSON ({error})") from None


def insert_after(card: dict, anchor: str, key: str, value) -> dict:
    """Copy of card with key placed right after anchor, so a field sits next to what it explains."""
    items = [(k, v) for k, v in card.items() if k != key]
    position = [k for k, _ in items].index(anchor) + 1
    return dict(items[:position] + [(key, value)] + items[position:])


def _scalar(value) -> bool:
    return not isinstance(value, (dict, list))


def _flat(container) -> bool:
    """A list of scalars, or an object whose values are scalars or lists of scalars."""
    if isinstance(container, list):
        return all(map(_scalar, container))
    return all(_scalar(v) or (isinstance(v, list) and all(map(_scalar, v))) for v in container.values())


def format_card(value, indent: int = 0) -> str:
    """JSON with short lists and short objects of scalars or scalar lists on one line, the rest one key per line."""
    if isinstance(value, (dict, list)):
        if _flat(value):
            inline = json.dumps(value, separators=(", ", ": "))
            if isinstance(value, dict) and value:
                inline = "{ " + inline[1:-1] + " }"
            if indent + len(inline) <= INLINE_WIDTH:
                return inline
        pad = " " * (indent + 2)
        if isinstance(value, dict):
            body = [f"{pad}{json.dumps(key)}: {format_card(item, indent + 2)}" for key, item in value.items()]
            return "{\n" + ",\n".join(body) + "\n" + " " * indent + "}"
        body = [pad + format_card(item, indent + 2) for item in value]
        return "[\n" + ",\n".join(body) + "\n" + " " * indent + "]"
    return json.dumps(value)


def save_card(path: Path, card: dict) -> None:
    Path(path).write_text(format_card(card) + "\n")


def write_preprocess_choice(card_paths, change, report: Path, title: str, lines: list[str]) -> None:
    """A data tool's --write: change(card) applied to each card (the shipped and the seed card share their
    preprocessing), and the table it chose by into `report`."""
    for path in card_paths:
        card = load_card(path)
        change(card)
        save_card(path, card)
        print(f"wrote them into {path}")
    Path(report).write_text(f"# {title}\n\n" + "\n".join(lines) + "\n")
    print(f"wrote {report}")
