"""Values in scenario files: ``${...}`` placeholders filled from what earlier steps captured.

A string that is exactly one placeholder (``"${order_id}"``) becomes the value itself (a
number stays a number); a placeholder inside a longer string is rendered as text
(``"/v1/orders/${order_id}"``). Inside the braces is a small expression: names, ``.field``
and ``[index]`` access, integer and string literals, ``+ - *`` and parentheses
(``${price * 3}``, ``${order.items[0].sku}``). Nothing else is evaluated: scenario files
are data, never code.
"""

from __future__ import annotations

import ast
import functools
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["TemplateError", "names_in", "render", "render_text"]

_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}


class TemplateError(ValueError):
    """A placeholder that cannot be evaluated; the message names it and why."""


def render(value: Any, names: Mapping[str, Any]) -> Any:
    """``value`` with every placeholder filled, at any depth (mapping keys too)."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return _evaluate(whole.group(1), names)
        return render_text(value, names)
    if isinstance(value, dict):
        return {render_text(str(k), names): render(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [render(item, names) for item in value]
    return value


def render_text(text: str, names: Mapping[str, Any]) -> str:
    return _PLACEHOLDER.sub(lambda m: str(_evaluate(m.group(1), names)), text)


def names_in(value: Any) -> set[str]:
    """The top-level names the placeholders in ``value`` use (for lint: captured before?)."""
    found: set[str] = set()
    if isinstance(value, str):
        for expression in _PLACEHOLDER.findall(value):
            try:
                tree = _parse(expression)
            except SyntaxError:
                continue
            found |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    elif isinstance(value, dict):
        for key, item in value.items():
            found |= names_in(str(key)) | names_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= names_in(item)
    return found


@functools.lru_cache(maxsize=1024)
def _parse(expression: str) -> ast.Expression:
    """Parsed once per distinct expression (a scenario repeats its placeholders)."""
    return ast.parse(expression.strip(), mode="eval")


@functools.lru_cache(maxsize=1024)
def check_expression(expression: str) -> str | None:
    """None when ``expression`` uses only what :func:`render` evaluates, else why not."""
    try:
        tree = _parse(expression)
    except SyntaxError as exc:
        return f"'${{{expression}}}' is not an expression: {exc.msg}"
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            return (
                f"'${{{expression}}}' uses {type(node).__name__}, which scenarios do not evaluate"
            )
        if isinstance(node, ast.BinOp) and type(node.op) not in _OPERATORS:
            return f"'${{{expression}}}': only + - * are evaluated"
    return None


def expressions_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return list(_PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return [e for k, v in value.items() for e in expressions_in(str(k)) + expressions_in(v)]
    if isinstance(value, list):
        return [e for item in value for e in expressions_in(item)]
    return []


_ALLOWED = (
    ast.Expression,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.Constant,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.UnaryOp,
    ast.USub,
)


def _evaluate(expression: str, names: Mapping[str, Any]) -> Any:
    problem = check_expression(expression)
    if problem:
        raise TemplateError(problem)
    return _eval(_parse(expression).body, names, expression)


def _eval(node: ast.expr, names: Mapping[str, Any], source: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            known = ", ".join(sorted(names)) or "none yet"
            raise TemplateError(
                f"'${{{source}}}': nothing captured as '{node.id}' (known: {known})"
            )
        return names[node.id]
    if isinstance(node, ast.Attribute):
        return _item(_eval(node.value, names, source), node.attr, source)
    if isinstance(node, ast.Subscript):
        return _item(_eval(node.value, names, source), _eval(node.slice, names, source), source)
    if isinstance(node, ast.UnaryOp):
        return -_eval(node.operand, names, source)
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, names, source), _eval(node.right, names, source)
        try:
            return _OPERATORS[type(node.op)](left, right)
        except TypeError as exc:
            raise TemplateError(f"'${{{source}}}': {exc}") from None
    raise TemplateError(f"'${{{source}}}' cannot be evaluated")  # pragma: no cover - checked


def _item(container: Any, key: Any, source: str) -> Any:
    try:
        return container[key]
    except (KeyError, IndexError, TypeError):
        raise TemplateError(f"'${{{source}}}': no {key!r} in {container!r:.80}") from None
