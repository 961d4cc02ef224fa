"""Tiny safe arithmetic for `${homes * 5 // 100}` params and `{n:03}` name templates."""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"min": min, "max": max, "round": round, "int": int}

PARAM = re.compile(r"\$\{([^}]*)\}")
TEMPLATE = re.compile(r"\{([^{}]*)\}")


class ExpressionError(ValueError):
    pass


def evaluate(text: str, names: Mapping[str, Any]) -> Any:
    """Evaluate +,-,*,/,//,%, min/max/round/int over numbers and the given names."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression {text!r}") from exc
    return _eval(tree.body, names, text)


def _eval(node: ast.AST, names: Mapping[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool)):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in names:
            known = ", ".join(sorted(names)) or "none"
            within = "" if text.strip() == node.id else f" in {text!r}"
            raise ExpressionError(f"unknown name {node.id!r}{within}; known: {known}")
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        try:
            return _BINARY[type(node.op)](_eval(node.left, names, text),
                                          _eval(node.right, names, text))
        except (TypeError, ZeroDivisionError) as exc:
            raise ExpressionError(f"cannot compute {text!r}: {exc}") from exc
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, names, text)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS and not node.keywords):
        args = [_eval(a, names, text) for a in node.args]
        return _FUNCTIONS[node.func.id](*args)
    raise ExpressionError(f"{text!r}: only numbers, names, + - * / // %, min, max, round, int")


def substitute_params(value: str, params: Mapping[str, Any]) -> Any:
    """'${x}' alone keeps x's type; '${x}' inside text is formatted into the text."""
    whole = PARAM.fullmatch(value.strip())
    if whole:
        return evaluate(whole.group(1), params)
    return PARAM.sub(lambda m: str(evaluate(m.group(1), params)), value)


def render_template(value: str, names: Mapping[str, Any]) -> str:
    """'home{n:03}' with n=7 -> 'home007'; '{(n-1)//50+1}' is evaluated too."""

    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        expr, _, spec = body.partition(":")
        result = evaluate(expr, names)
        if spec and spec.isdigit() and spec.startswith("0"):
            spec = spec + "d" if isinstance(result, int) else spec
        return format(result, spec)

    return TEMPLATE.sub(one, value)


def has_template(value: str) -> bool:
    return bool(TEMPLATE.search(value))
