"""Reasoning strategies that decide structure: chains, votes, subtask trees, plans."""

from plait._deprecation import moved_names as _moved_names

# -- chain steps, fan-out votes, subtask trees (issue 4) --
from plait.planners._aggregators import (
    Aggregator, BestOfN, Candidate, Decision, EarlyStop, LogprobWeighted, Majority, Quorum,
)
from plait.planners._chain import ChainStep
from plait.planners._fanout import FanOut, VoteResult
from plait.planners._judge import LLMJudge
from plait.planners._refine import Draft, Refine, RefineResult
from plait.planners._parsers import ChoiceParser, ModelParser, NumberParser, Parser, RegexParser, TextParser
from plait.planners._subtask_model import SubtaskSpec, TaskRecord, TaskReply, TreeResult, TreeStats
from plait.planners._subtask_script import tree_call_key, tree_script
from plait.planners._subtasks import SubtaskTree
from plait.planners._template import Template

# -- width controls: staggered fan-outs, adaptive width-then-depth, token budgets (issue 17) --
from plait.planners._adaptive import Adaptive, AdaptiveResult, AdaptiveStage
from plait.planners._variants import VariantTally, rotations

# -- plan-then-execute (ReWOO / LLMCompiler) and the ReAct baseline (issue 5) --
from plait.planners._dag import execute_plan
from plait.planners._plan import LLM_TOOL, Plan, PlanStep, Ref
from plait.planners._plan_check import plan_json_schema, plan_problems
from plait.planners._plan_parse import parse_json_plan, parse_text_plan
from plait.planners._planner import Planner
from plait.planners._react import ReAct, ReActResult, ReActStep
from plait.planners._rewoo import PlanAndExecute, PlanResult, plan_and_execute_graph

# -- several models: a router and cascades (issue 18) --
from plait.planners._acceptance import Acceptance, agreement, consistent, parses, predicate
from plait.planners._cascade import Cascade, CascadeResult, TierAttempt
from plait.planners._route_model import ChooseRoute, RouteModel
from plait.planners._route_table import RouteTable

__all__ = [
    "ChainStep", "Template",
    "Parser", "TextParser", "RegexParser", "NumberParser", "ChoiceParser", "ModelParser",
    "FanOut", "VoteResult", "Candidate", "Decision", "Aggregator", "Majority", "LogprobWeighted", "BestOfN",
    "EarlyStop", "Quorum", "LLMJudge",
    "SubtaskTree", "TreeResult", "TreeStats", "TaskRecord", "TaskReply", "SubtaskSpec", "tree_script", "tree_call_key",
    # -- width controls (issue 17) --
    "VariantTally", "rotations", "Adaptive", "AdaptiveResult", "AdaptiveStage",
    # -- plan-then-execute and ReAct (issue 5) --
    "Plan", "PlanStep", "Ref", "LLM_TOOL", "Planner", "PlanAndExecute", "PlanResult", "plan_and_execute_graph",
    "ReAct", "ReActResult", "ReActStep", "execute_plan", "parse_json_plan", "parse_text_plan", "plan_problems",
    "plan_json_schema",
    # -- width and depth (issue 17) --
    "Refine", "RefineResult", "Draft",
    # -- several models (issue 18) --
    "RouteModel", "ChooseRoute", "RouteTable", "Cascade", "CascadeResult", "TierAttempt", "Acceptance", "agreement",
    "predicate", "consistent", "parses",
]

# renamed (every node's result type is a ...Result); the old names warn for one release
__getattr__ = _moved_names(__name__, {"PlanOutcome": "plait.planners.PlanResult",
                                     "ReActOutcome": "plait.planners.ReActResult"})
