"""Reasoning strategies that decide structure: chains, votes, subtask trees, plans."""

from plait.planners._aggregators import (
    Aggregator, BestOfN, Candidate, Decision, EarlyStop, LogprobWeighted, Majority, Quorum,
)
from plait.planners._chain import ChainStep
from plait.planners._fanout import FanOut, VoteResult
from plait.planners._judge import LLMJudge
from plait.planners._parsers import ChoiceParser, ModelParser, NumberParser, Parser, RegexParser, TextParser
from plait.planners._subtask_model import SubtaskSpec, TaskRecord, TaskReply, TreeResult, TreeStats
from plait.planners._subtask_script import tree_call_key, tree_script
from plait.planners._subtasks import SubtaskTree
from plait.planners._template import Template

__all__ = [
    "ChainStep", "Template",
    "Parser", "TextParser", "RegexParser", "NumberParser", "ChoiceParser", "ModelParser",
    "FanOut", "VoteResult", "Candidate", "Decision", "Aggregator", "Majority", "LogprobWeighted", "BestOfN",
    "EarlyStop", "Quorum", "LLMJudge",
    "SubtaskTree", "TreeResult", "TreeStats", "TaskRecord", "TaskReply", "SubtaskSpec", "tree_script", "tree_call_key",
]
