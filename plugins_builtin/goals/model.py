"""A thread's goal and the rules for changing it.

* Setting an objective on a thread without a goal creates one (``active``
  unless a status is given), with zero usage.
* Changing the objective keeps the goal's accounting (``createdAt``,
  ``tokensUsed``, ``timeUsedSeconds``): a completed goal becomes ``active``
  again, a budget-limited one stays ``budgetLimited``, any other becomes
  ``active`` (as the reference replaces it) unless a status is given.
* Setting the same objective, a status or a budget only updates those.
* Whenever a budget is set and used up, an ``active`` goal reads
  ``budgetLimited``; a budget raised above the usage makes a goal that was
  only budget-limited ``active`` again.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

__all__ = ["STATUSES", "Goal", "GoalError", "changed_goal", "new_goal"]

STATUSES = ("active", "paused", "blocked", "usageLimited", "budgetLimited", "complete")


class GoalError(ValueError):
    """A goal change that is refused; the message is the reference's where it has one."""


@attrs.frozen
class Goal:
    """One thread's goal (a row of ``thread_goals``)."""

    thread_id: str
    objective: str
    status: str
    token_budget: int | None
    tokens_used: int
    time_used_seconds: int
    created_at: int
    updated_at: int

    def wire(self) -> dict[str, Any]:
        """``ThreadGoal``."""
        return {
            "threadId": self.thread_id,
            "objective": self.objective,
            "status": self.status,
            "tokenBudget": self.token_budget,
            "tokensUsed": self.tokens_used,
            "timeUsedSeconds": self.time_used_seconds,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
        }

    @property
    def exhausted(self) -> bool:
        """A budget is set and used up."""
        return self.token_budget is not None and self.tokens_used >= self.token_budget

    def limited(self) -> Goal:
        """This goal, ``budgetLimited`` if it is active and out of budget."""
        if self.status == "active" and self.exhausted:
            return attrs.evolve(self, status="budgetLimited")
        return self

    def used(self, tokens: int, seconds: int) -> Goal:
        """This goal with a turn's usage added (and limited if the budget ran out)."""
        return attrs.evolve(
            self,
            tokens_used=self.tokens_used + max(0, tokens),
            time_used_seconds=self.time_used_seconds + max(0, seconds),
            updated_at=int(time.time()),
        ).limited()


def _check_budget(budget: Any) -> None:
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
        raise GoalError("goal budgets must be integers")
    if budget is not None and budget <= 0:
        raise GoalError("goal budgets must be positive when provided")


def _check_objective(objective: str) -> str:
    text = objective.strip()
    if not text:
        raise GoalError("goal objective must not be empty")
    return text


def new_goal(thread_id: str, objective: str, status: str | None, budget: int | None) -> Goal:
    """A new goal with no usage yet."""
    _check_budget(budget)
    now = int(time.time())
    goal = Goal(thread_id, _check_objective(objective), status or "active", budget, 0, 0, now, now)
    return goal.limited()


def changed_goal(
    goal: Goal,
    objective: str | None,
    status: str | None,
    budget: Any,
    budget_given: bool,
) -> Goal:
    """``goal`` after a ``thread/goal/set`` (see the module docstring)."""
    if budget_given:
        _check_budget(budget)
    new_budget = budget if budget_given else goal.token_budget
    new_status = goal.status
    new_objective = goal.objective
    if objective is not None:
        text = _check_objective(objective)
        if text != goal.objective:
            new_objective = text
            new_status = "budgetLimited" if goal.status == "budgetLimited" else "active"
        elif goal.status == "complete":
            new_status = "active"
    if status is not None:
        new_status = status
    changed = attrs.evolve(
        goal,
        objective=new_objective,
        status=new_status,
        token_budget=new_budget,
        updated_at=int(time.time()),
    )
    raised = budget_given and goal.status == "budgetLimited" and not changed.exhausted
    if raised and status is None and changed.status == "budgetLimited":
        changed = attrs.evolve(changed, status="active")
    return changed.limited()
