"""Reasoning strategies that decide structure: chains, votes, subtask trees, plans."""

# -- plan-then-execute (ReWOO / LLMCompiler) and the ReAct baseline (issue 5) --
from plait.planners._dag import execute_plan
from plait.planners._plan import LLM_TOOL, Plan, PlanStep, Ref
from plait.planners._plan_check import plan_json_schema, plan_problems
from plait.planners._plan_parse import parse_json_plan, parse_text_plan
from plait.planners._planner import Planner
from plait.planners._react import ReAct, ReActOutcome, ReActStep
from plait.planners._rewoo import PlanAndExecute, PlanOutcome, plan_and_execute_graph

__all__ = [
    # -- plan-then-execute and ReAct (issue 5) --
    "Plan", "PlanStep", "Ref", "LLM_TOOL", "Planner", "PlanAndExecute", "PlanOutcome", "plan_and_execute_graph",
    "ReAct", "ReActOutcome", "ReActStep", "execute_plan", "parse_json_plan", "parse_text_plan", "plan_problems",
    "plan_json_schema",
]
