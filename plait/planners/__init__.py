"""Reasoning strategies that decide structure: chains, votes, subtask trees, plans."""

from plait.planners._chain import ChainStep
from plait.planners._parsers import ChoiceParser, ModelParser, NumberParser, Parser, RegexParser, TextParser
from plait.planners._template import Template

__all__ = [
    "ChainStep", "Template",
    "Parser", "TextParser", "RegexParser", "NumberParser", "ChoiceParser", "ModelParser",
]
