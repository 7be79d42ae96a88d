"""Recipes and a resumable pipeline: ``run_recipe(recipe, out, overrides, dry_run)``.

A recipe (YAML) lists stage configs; stages run in the order of the data flow, each into
``OUT/<stage>/`` with a completion record written last, so reruns skip finished stages, re-run
changed ones and everything after them, and continue interrupted ones.
"""

from __future__ import annotations

from .recipe import Recipe, load_recipe, resolve, shipped_recipes, validate_recipe
from .runner import plan, run_recipe
from .stages import ORDER, STAGES

__all__ = ["ORDER", "STAGES", "Recipe", "load_recipe", "plan", "resolve", "run_recipe", "shipped_recipes",
           "validate_recipe"]
