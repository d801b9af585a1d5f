"""The memory bill of one training step, as `composer build` and `composer diff` print it."""

from __future__ import annotations

import sys

import click

from composer.errors import DataError
from composer.spec.limits import check_batch


def parse_budget(memory_budget: str | None) -> int | None:
    """--memory-budget in bytes (None: not given); a value that is not a size exits 2."""
    from composer.compiler.memory_sizes import parse_bytes  # torch: only when a bill is asked for

    try:
        return parse_bytes(memory_budget) if memory_budget is not None else None
    except ValueError as e:
        click.echo(f"error: --memory-budget: {e}", err=True)
        sys.exit(2)


def memory(model, batch_size: int | None, precision: str | None, budget: int | None, choose: bool = False,
           source: str = "--memory-budget") -> dict:
    """The `memory` and `max_batch_size` entries of `composer build`; exits 2 on a budget below the weights.
    `choose`: first re-plan the model's recomputation for the budget (--recompute auto). `source`: where a
    given `budget` came from."""
    from composer.compiler.budget import choose_recompute
    from composer.compiler.memory import MemoryModel
    from composer.compiler.memory_sizes import default_budget
    from composer.compiler.precision import resolve_precision, store_frozen_in
    from composer.rundir.resolve import resolve_values

    if batch_size is not None:
        too_big = check_batch(model.spec, batch_size, "--batch-size")
        if too_big:
            raise DataError(too_big)
    settled = resolve_values(model.spec, batch_size=batch_size, precision=precision)
    precision, batch_size = resolve_precision(settled.precision), settled.batch
    if budget is None:
        budget, source = default_budget() or (None, None)
    store_frozen_in(model, precision)  # as `composer run` builds it, so the bill counts what a run holds
    if choose and budget is not None and MemoryModel(model, precision).bill(1).weights <= budget:
        choose_recompute(model, precision, batch_size, budget, source)
    bill_model = MemoryModel(model, precision)
    bill = bill_model.bill(batch_size)
    out = {"memory": bill.as_json(), "memory_budget": budget,
           "memory_budget_source": source, "max_batch_size": None}
    if budget is None:
        return out
    if budget < bill.weights:
        _too_small(bill, budget, source)
    out["max_batch_size"] = bill_model.max_batch_size(budget)
    return out


def _too_small(bill, budget: int, source: str) -> None:
    from composer.compiler.memory import bill_lines
    from composer.compiler.memory_sizes import format_bytes

    lines = "\n".join(f"  {line}" for line in bill_lines(bill.as_json()))
    click.echo(f"error: the memory budget {format_bytes(budget)} ({source}) is smaller than the weights alone "
               f"({format_bytes(bill.weights)}); give a larger --memory-budget, or a smaller model. The bill:\n"
               f"{lines}", err=True)
    sys.exit(2)
