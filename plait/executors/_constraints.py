"""Checking structured-output constraints before a request is sent.

A bad schema, regex or grammar should fail the call that carries it, with a
message naming the problem, before any request of the batch reaches the
engine or server. We check with ``jsonschema`` and :mod:`re`, and with
``xgrammar`` (the engine vLLM itself compiles constraints with) when it is
installed, so a constraint vLLM would reject mid-batch is caught up front.
An engine pinned to xgrammar (plait's in-process engine, see
:data:`~plait.executors._vllm.DEFAULT_ENGINE_OPTIONS`) also refuses the
JSON-schema features xgrammar cannot enforce (``multipleOf``, ``uniqueItems``,
a pattern next to ``maxLength``...), which vLLM's "auto" mode would have
handed to another library; they are reported here too.

Whitespace in constrained JSON is an engine setting, not a request field:
vLLM 0.32 reads only ``structured_outputs_config.disable_any_whitespace``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from plait.errors import BackendError
from plait.executors._base import Choice, Grammar, JsonSchema, Regex, Request

__all__ = ["check_request_constraint", "vllm_structured_fields"]


def check_request_constraint(request: Request, index: int = 0, *, xgrammar_only: bool = False) -> None:
    """Raise :class:`BackendError` if the request's constraint cannot be compiled.

    ``xgrammar_only``: the engine compiles with xgrammar and nothing else.
    """
    constraint = request.params.constraint
    if constraint is None:
        return
    where = f"request {index}" + (f" ({request.tag})" if request.tag else "")
    try:
        if isinstance(constraint, JsonSchema):
            _check_json_schema(constraint.schema_, xgrammar_only)
        elif isinstance(constraint, Regex):
            re.compile(constraint.pattern)
            _xgrammar("from_regex", constraint.pattern)
        elif isinstance(constraint, Grammar):
            _check_grammar(constraint.grammar)
        elif isinstance(constraint, Choice) and any(not option for option in constraint.options):
            raise ValueError("choice options must be non-empty strings")
    except (ValueError, re.error, RuntimeError) as exc:
        kind = type(constraint).__name__
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise BackendError(f"{where}: invalid {kind} constraint: {detail}; nothing was sent") from exc


def _check_json_schema(schema: dict[str, Any], xgrammar_only: bool) -> None:
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - jsonschema ships with vLLM and the openai extra
        jsonschema = None
    if jsonschema is not None:
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON schema: {exc.message}") from None
    _xgrammar("from_json_schema", json.dumps(schema))
    if xgrammar_only and _xgrammar_cannot_enforce(schema):
        raise ValueError("the schema uses a feature xgrammar cannot enforce (multipleOf, uniqueItems, contains, "
                         "an unsupported format, or a pattern together with minLength/maxLength); drop it")


def _xgrammar_cannot_enforce(schema: dict[str, Any]) -> bool:
    try:
        from vllm.v1.structured_output.backend_xgrammar import has_xgrammar_unsupported_json_features
    except ImportError:  # pragma: no cover - only vLLM pins xgrammar
        return False
    return has_xgrammar_unsupported_json_features(schema)


def _check_grammar(grammar: str) -> None:
    try:
        _xgrammar("from_ebnf", grammar)
    except RuntimeError as ebnf_error:
        try:
            _xgrammar("from_lark", grammar)
        except RuntimeError:
            raise ebnf_error from None


def _xgrammar(method: str, text: str) -> None:
    try:
        import xgrammar
    except ImportError:
        return
    getattr(xgrammar.Grammar, method)(text)


def vllm_structured_fields(request: Request) -> dict[str, Any]:
    """The constraint as vLLM's structured-output fields (``json``, ``regex``, ``choice``, ``grammar``)."""
    constraint = request.params.constraint
    if constraint is None:
        return {}
    if isinstance(constraint, JsonSchema):
        return {"json": constraint.schema_}
    if isinstance(constraint, Regex):
        return {"regex": constraint.pattern}
    if isinstance(constraint, Choice):
        return {"choice": list(constraint.options)}
    return {"grammar": constraint.grammar}
