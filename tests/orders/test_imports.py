"""The hot path's modules import one another without a circle, function-level imports included:
a circle is what made `services` import `tasks` inside a function and a model import the HTTP
client."""

import ast
from pathlib import Path

ORDERS = Path(__file__).parents[2] / "orders"


def orders_imports() -> dict[str, set[str]]:
    """For each module of orders/, the modules of orders/ it imports, wherever in the file."""
    modules = {path.stem for path in ORDERS.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in ORDERS.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.module == "orders":
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("orders."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("orders.")}
        graph[path.stem] = (found & modules) - {path.stem}
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of imports, as the modules along it, or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        stack.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return [*stack[stack.index(imported) :], imported]
            if imported not in state and (circle := visit(imported)):
                return circle
        stack.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (circle := visit(module)):
            return circle
    return None


def test_the_check_finds_a_circle_when_there_is_one():
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) is None


def test_no_module_of_orders_is_in_an_import_circle():
    graph = orders_imports()
    assert {"acceptance", "lifecycle", "placement", "tasks", "services"} <= set(graph)
    assert cycle_in(graph) is None


def test_no_module_of_orders_imports_the_legacy_api_and_the_model_no_http_client():
    for path in ORDERS.glob("*.py"):
        text = path.read_text()
        assert "legacy_api" not in text, path.name
    assert "legacy_client.references" in (ORDERS / "models.py").read_text()
