"""A constraint as the request fields an inference server's own structured output reads.

vLLM and SGLang take a JSON schema, a regular expression or choices as they are (`guided_json`,
`guided_regex`, `guided_choice`). llama.cpp's server takes a GBNF grammar (`grammar`): choices and the
common part of JSON Schema (types, properties, enum, const, items, string lengths) are written out in GBNF
here, and the server's own grammar engine masks with it. What a server cannot take gets a message that says
so; the texts are checked against the constraint apart from any engine either way.
"""

from __future__ import annotations

import json
from typing import Any

from playground.core.errors import PlaygroundError
from playground.language.constraints import Constraint

# The same compact layout the local grammar uses (`grammar._JSON_LAYOUT`): ", " between items, ": " after keys.
_GBNF_BASICS = r'''
char ::= [^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F]{4})
integer ::= "-"? ("0" | [1-9] [0-9]{0,15})
number ::= integer ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})?
boolean ::= "true" | "false"
null ::= "null"
string ::= "\"" char* "\""
'''
_SCHEMA_WORDS = {"type", "properties", "required", "additionalProperties", "enum", "const", "items", "minLength",
                 "maxLength", "title", "description", "$schema"}


def _literal(text: str) -> str:
    """A GBNF string literal matching exactly `text`."""
    return json.dumps(text, ensure_ascii=False)


class _Gbnf:
    def __init__(self) -> None:
        self.rules: list[str] = []

    def rule(self, body: str) -> str:
        name = f"r{len(self.rules)}"
        self.rules.append(f"{name} ::= {body}")
        return name

    def value(self, schema: Any) -> str:
        if schema is True or schema == {}:
            raise PlaygroundError("llama.cpp's grammar here needs a type for every value (\"type\": \"string\", ...).")
        if not isinstance(schema, dict):
            raise PlaygroundError("Every part of the schema must be a JSON object.")
        unknown = sorted(set(schema) - _SCHEMA_WORDS)
        if unknown:
            raise PlaygroundError(f"The schema uses {', '.join(unknown[:3])}, which this playground does not write "
                                  "as a llama.cpp grammar; pick a local model (llguidance reads the whole schema).")
        if "const" in schema:
            return _literal(json.dumps(schema["const"], ensure_ascii=False))
        if "enum" in schema:
            return "(" + " | ".join(_literal(json.dumps(v, ensure_ascii=False)) for v in schema["enum"]) + ")"
        kind = schema.get("type")
        if kind == "object":
            properties = schema.get("properties") or {}
            if not properties:
                return '"{}"'
            # Every declared property, in order: a superset of the required ones and nothing undeclared, so the
            # text always validates.
            parts = [f'{_literal(json.dumps(key, ensure_ascii=False) + ": ")} {self.value(value)}'
                     for key, value in properties.items()]
            return self.rule('"{" ' + ' ", " '.join(parts) + ' "}"')
        if kind == "array":
            item = self.value(schema.get("items", {"type": "string"}))
            return self.rule(f'"[" ({item} (", " {item})*)? "]"')
        if kind == "string" and ("minLength" in schema or "maxLength" in schema):
            low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
            return self.rule(f'"\\"" char{{{low},{"" if high is None else int(high)}}} "\\""')
        if kind in ("string", "integer", "number", "boolean", "null"):
            return kind
        raise PlaygroundError(f"Type {str(kind)[:20]!r} is not written as a llama.cpp grammar here; use one of "
                              "object, array, string, integer, number, boolean, null.")


def gbnf(constraint: Constraint) -> str:
    """The constraint as a GBNF grammar for llama.cpp (choices and JSON schemas)."""
    if constraint.kind == "choice":
        return "root ::= " + " | ".join(_literal(choice) for choice in constraint.choices)
    if constraint.kind == "regex":
        raise PlaygroundError("llama.cpp's server takes grammars in GBNF, not regular expressions; use a JSON schema "
                              "or choices with this server, or pick a local model for a regular expression.")
    grammar = _Gbnf()
    root = grammar.value(constraint.schema)
    return "\n".join([f"root ::= {root}", *grammar.rules]) + _GBNF_BASICS


def structured_fields(server: str, constraint: Constraint) -> dict[str, Any]:
    """The request fields that make `server` (an `endpoint.SERVER_KINDS` key) obey `constraint`."""
    if server == "llama.cpp":
        return {"grammar": gbnf(constraint)}
    if server in ("vllm", "sglang"):
        if constraint.kind == "json_schema":
            return {"guided_json": constraint.schema}
        if constraint.kind == "regex":
            return {"guided_regex": constraint.spec}
        return {"guided_choice": list(constraint.choices)}
    raise PlaygroundError("This server takes no structured output through the completions API that this "
                          "playground knows; pick a local model, or a llama.cpp or vLLM server.")
