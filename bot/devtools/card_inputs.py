"""The inputs of an Adaptive Card: where they are in the card, and the values Teams would submit for them.

`card_inputs` walks a card's body (containers, columns, tables) and notes whether each input is shown
(`isVisible`, overridden by Action.ToggleVisibility). `parse_answer` and `collect_inputs` validate what
the user typed as the Adaptive Card renderers validate (isRequired, regex, min/max, maxLength, choices)
and give the value as Teams submits it: always a string, numbers as JavaScript writes them, choices by
value. `input_prompt` is the line the terminal asks with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.devtools.markdown import plain


@dataclass(frozen=True)
class InputSpec:
    """One Adaptive Card input, as the client prompts for it."""

    id: str
    type: str
    label: str
    placeholder: str | None = None
    is_required: bool = False
    regex: str | None = None
    error_message: str | None = None
    value: str | None = None
    choices: tuple[tuple[str, str], ...] = ()
    is_multi_select: bool = False
    minimum: str | None = None
    maximum: str | None = None
    max_length: int | None = None
    value_on: str = "true"
    value_off: str = "false"
    visible: bool = True



def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def input_spec(element: Mapping[str, Any], visible: bool) -> InputSpec:
    """One `Input.*` element of a card as an InputSpec."""
    kind = str(element.get("type", ""))
    label = (
        element.get("label") or element.get("title") or element.get("placeholder") or element.get("id", "")
    )
    choices = tuple(
        (str(choice.get("title", choice.get("value", ""))), str(choice.get("value", "")))
        for choice in element.get("choices") or []
        if isinstance(choice, Mapping)
    )
    minimum = element.get("min")
    maximum = element.get("max")
    max_length = element.get("maxLength")
    return InputSpec(
        id=str(element.get("id", "")),
        type=kind,
        label=plain(str(label)),
        placeholder=element.get("placeholder"),
        is_required=bool(element.get("isRequired", False)),
        regex=element.get("regex"),
        error_message=element.get("errorMessage"),
        value=_as_text(element.get("value")),
        choices=choices,
        is_multi_select=bool(element.get("isMultiSelect", False)),
        minimum=_as_text(minimum),
        maximum=_as_text(maximum),
        max_length=max_length if isinstance(max_length, int) else None,
        value_on=str(element.get("valueOn", "true")),
        value_off=str(element.get("valueOff", "false")),
        visible=visible,
    )


def element_children(element: Mapping[str, Any]) -> list[Any]:
    """The elements inside a container, column set, column or table, in reading order."""
    kind = element.get("type")
    if kind == "ColumnSet":
        return list(element.get("columns") or [])
    if kind == "Table":
        cells: list[Any] = []
        for row in element.get("rows") or []:
            for cell in row.get("cells") or [] if isinstance(row, Mapping) else []:
                cells.extend(cell.get("items") or [] if isinstance(cell, Mapping) else [])
        return cells
    return list(element.get("items") or [])


def is_visible(element: Mapping[str, Any], overrides: Mapping[str, bool]) -> bool:
    """Whether an element is shown: its `isVisible`, unless a toggle changed it (`overrides`, by id)."""
    element_id = element.get("id")
    if isinstance(element_id, str) and element_id in overrides:
        return overrides[element_id]
    return element.get("isVisible", True) is not False


def card_inputs(card: Mapping[str, Any], visibility: Mapping[str, bool] | None = None) -> list[InputSpec]:
    """The inputs of one card's body, hidden ones included (their `visible` is False), in document order.

    Inputs of Action.ShowCard cards are not included: like the Adaptive Card renderers, they belong to the
    shown card, whose actions gather them together with those of its parents.
    """
    overrides = visibility or {}
    found: list[InputSpec] = []

    def walk(elements: Iterable[Any], visible: bool) -> None:
        for element in elements:
            if not isinstance(element, Mapping):
                continue
            shown = visible and is_visible(element, overrides)
            if str(element.get("type", "")).startswith("Input."):
                found.append(input_spec(element, shown))
            walk(element_children(element), shown)

    walk(card.get("body") or [], True)
    return found


class InputError(ValueError):
    """Some inputs are invalid; `errors` maps input id to a message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))
        self.errors = dict(errors)


_YES = {"y", "yes", "o", "oui", "j", "ja", "true", "1", "x", "on"}
_NO = {"n", "no", "non", "nee", "nein", "false", "0", "off"}
_DATE_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TIME_FORMAT = re.compile(r"^(\d{1,2}):(\d{2})$")


def _js_number(value: float) -> str:
    """A number as JavaScript's toString writes it (what Teams puts in the submitted data)."""
    return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)


def parse_answer(spec: InputSpec, raw: str) -> str | None:
    """The value Teams would submit for what the user typed; None when the input stays unset.

    An empty answer keeps the input's initial value. Raises ValueError with the card's errorMessage (or a
    plain explanation) when the renderer would refuse to submit.
    """
    answer = raw.strip()
    if spec.type == "Input.Toggle":
        if not answer:
            return spec.value if spec.value is not None else spec.value_off
        if answer.lower() in _YES or answer == spec.value_on:
            return spec.value_on
        if answer.lower() in _NO or answer == spec.value_off:
            return spec.value_off
        raise ValueError("Answer y or n.")
    if not answer:
        answer = spec.value or ""
    if not answer:
        if spec.is_required:
            raise ValueError(spec.error_message or "This field is required.")
        return None
    try:
        value = _typed_value(spec, answer)
    except ValueError as exc:
        raise ValueError(spec.error_message or str(exc)) from exc
    return value


def _typed_value(spec: InputSpec, answer: str) -> str:
    if spec.type == "Input.Number":
        try:
            number = float(answer.replace(",", "."))
        except ValueError:
            raise ValueError("Type a number.") from None
        if spec.minimum is not None and number < float(spec.minimum):
            raise ValueError(f"The smallest allowed value is {spec.minimum}.")
        if spec.maximum is not None and number > float(spec.maximum):
            raise ValueError(f"The largest allowed value is {spec.maximum}.")
        return _js_number(number)
    if spec.type == "Input.Date":
        if not _DATE_FORMAT.match(answer):
            raise ValueError("Type the date as YYYY-MM-DD.")
        try:
            day = date.fromisoformat(answer)
        except ValueError:
            raise ValueError("This date does not exist.") from None
        if spec.minimum and day < date.fromisoformat(spec.minimum):
            raise ValueError(f"The earliest allowed date is {spec.minimum}.")
        if spec.maximum and day > date.fromisoformat(spec.maximum):
            raise ValueError(f"The latest allowed date is {spec.maximum}.")
        return answer
    if spec.type == "Input.Time":
        match = _TIME_FORMAT.match(answer)
        if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            raise ValueError("Type the time as HH:MM.")
        value = f"{int(match.group(1)):02d}:{match.group(2)}"
        if spec.minimum and value < spec.minimum:
            raise ValueError(f"The earliest allowed time is {spec.minimum}.")
        if spec.maximum and value > spec.maximum:
            raise ValueError(f"The latest allowed time is {spec.maximum}.")
        return value
    if spec.type == "Input.ChoiceSet":
        return _choice_value(spec, answer)
    if spec.max_length is not None and len(answer) > spec.max_length:
        raise ValueError(f"At most {spec.max_length} characters.")
    # The renderers test the pattern anywhere in the value (JavaScript RegExp.test), not as a full match.
    if spec.regex and not re.search(spec.regex, answer):
        raise ValueError("This value does not have the expected format.")
    return answer


def _choice_value(spec: InputSpec, answer: str) -> str:
    picks = [part.strip() for part in answer.split(",")] if spec.is_multi_select else [answer]
    values = []
    for pick in picks:
        if not pick:
            continue
        if pick.isdigit() and 1 <= int(pick) <= len(spec.choices):
            values.append(spec.choices[int(pick) - 1][1])
            continue
        matches = [value for title, value in spec.choices if pick.lower() in (title.lower(), value.lower())]
        if not matches:
            raise ValueError(f"Choose a number between 1 and {len(spec.choices)}.")
        values.append(matches[0])
    if not values:
        raise ValueError("Choose at least one option.")
    return ",".join(values)


def collect_inputs(inputs: Sequence[InputSpec], answers: Mapping[str, str]) -> dict[str, str]:
    """Validate typed answers (by input id) for all inputs; the values Teams would submit.

    Unset inputs are left out, like the renderers do. Hidden inputs keep their initial value. Raises
    InputError listing every invalid input.
    """
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for spec in inputs:
        if not spec.id:
            continue
        raw = answers.get(spec.id, "") if spec.visible else ""
        try:
            value = parse_answer(spec, raw)
        except ValueError as exc:
            if spec.visible:
                errors[spec.id] = str(exc)
            continue
        if value is not None:
            values[spec.id] = value
    if errors:
        raise InputError(errors)
    return values


def input_prompt(spec: InputSpec) -> tuple[list[str], str]:
    """Lines to show before asking for an input, and the prompt itself."""
    star = " *" if spec.is_required else ""
    before: list[str] = []
    hint = ""
    if spec.type == "Input.ChoiceSet":
        before = [f"  {number}. {title}" for number, (title, _) in enumerate(spec.choices, 1)]
        hint = " (numbers, comma-separated)" if spec.is_multi_select else " (number)"
    elif spec.type == "Input.Date":
        hint = " (YYYY-MM-DD)"
    elif spec.type == "Input.Time":
        hint = " (HH:MM)"
    elif spec.type == "Input.Toggle":
        hint = " (y/n)"
    elif spec.type == "Input.Number" and (spec.minimum is not None or spec.maximum is not None):
        hint = f" (number {spec.minimum if spec.minimum is not None else ''}…{spec.maximum or ''})"
    if spec.placeholder and spec.type not in ("Input.ChoiceSet", "Input.Toggle"):
        hint += f" e.g. {spec.placeholder}"
    default = spec.value
    if spec.type == "Input.Toggle":
        default = "y" if (spec.value or spec.value_off) == spec.value_on else "n"
    elif spec.type == "Input.ChoiceSet" and spec.value:
        titles = {value: title for title, value in spec.choices}
        default = ",".join(titles.get(v, v) for v in spec.value.split(","))
    suffix = f" [{default}]" if default else ""
    return before, f"{spec.label}{star}{hint}{suffix}: "
