"""Shared tools for planner tests: a tiny typed knowledge base."""

import anyio
import pytest
from pydantic import BaseModel

from plait import tool
from plait.executors import ToolRegistry


class Quote(BaseModel):
    symbol: str
    price: float


@pytest.fixture
def registry():
    @tool
    async def quote(symbol: str) -> Quote:
        """Latest quote of a stock symbol."""
        await anyio.sleep(0.01)
        return Quote(symbol=symbol, price={"AAA": 10.0, "BBB": 2.5}[symbol])

    @tool
    def scale(value: float, factor: float = 2.0) -> float:
        """Multiply a number by a factor."""
        return value * factor

    @tool
    def count(text: str) -> int:
        """Number of characters of a text."""
        return len(text)

    @tool
    def total(values: list[float]) -> float:
        """Sum of numbers."""
        return sum(values)

    return ToolRegistry([quote, scale, count, total])
