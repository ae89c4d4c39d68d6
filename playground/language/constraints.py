"""What structured output must produce: a JSON schema, a regular expression or a list of choices, as a person
typed it, checked (`parse_constraint`), and whether a finished text obeys it (`Constraint.validates`).

Any backend reads these: a local model compiles them for llguidance (`playground.language.grammar`), a server
receives them as its own structured-output fields (`playground.language.remote.structured`). The check of a
finished text is independent of every engine: `json` + `jsonschema` for a schema, Python's `re` for a
regular expression, equality for choices.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import jsonschema

from playground.core import checks
from playground.core.errors import PlaygroundError

KINDS = ("json_schema", "regex", "choice")
KIND_LABELS = {"json_schema": "JSON schema", "regex": "regular expression", "choice": "choices"}


class GrammarError(PlaygroundError):
    """A constraint that cannot be used: the message says what is wrong with it."""


@dataclass(frozen=True)
class Constraint:
    """What the output must be. `spec` is the schema (JSON text), the pattern, or the choices one per line."""

    kind: str
    spec: str

    @property
    def schema(self) -> dict | bool:
        return json.loads(self.spec)

    @property
    def choices(self) -> tuple[str, ...]:
        return tuple(line for line in self.spec.splitlines() if line.strip())

    def validates(self, text: str) -> bool:
        """Whether a finished text obeys the constraint, checked without the grammar engine."""
        if self.kind == "json_schema":
            try:
                value = json.loads(text)
            except ValueError:
                return False
            return jsonschema.validators.validator_for(self.schema)(self.schema).is_valid(value)
        if self.kind == "regex":
            return re.fullmatch(self.spec, text) is not None
        return text in self.choices


def parse_constraint(kind: str, spec: str, max_chars: int) -> Constraint:
    """A constraint from what a person typed, or a `GrammarError` that says what is wrong."""
    if kind not in KINDS:
        raise GrammarError(f"Unknown kind of constraint {str(kind)[:40]!r}; use one of: {', '.join(KINDS)}.")
    label = KIND_LABELS[kind]
    checks.text(spec, label, max_chars, required=True)
    constraint = Constraint(kind, spec.strip() if kind != "regex" else spec)
    if kind == "json_schema":
        try:
            schema = constraint.schema
        except ValueError as error:
            raise GrammarError(f"The JSON schema is not valid JSON: {error}.") from None
        if not isinstance(schema, (dict, bool)):
            raise GrammarError("A JSON schema must be a JSON object, such as {\"type\": \"object\"}.")
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as error:
            raise GrammarError(f"This is not a valid JSON schema: {error.message}.") from None
    elif kind == "regex":
        try:
            re.compile(spec)
        except re.error as error:
            raise GrammarError(f"The regular expression does not compile: {error}.") from None
    elif not constraint.choices:
        raise GrammarError("Give at least one non-empty choice, one per line.")
    return constraint
