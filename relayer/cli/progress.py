"""Progress bars for long CLI work (rich, on stderr; quiet when disabled)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)


def make_progress(enabled: bool = True) -> Progress:
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), disable=not enabled, transient=False)


@contextmanager
def step_progress(title: str, total: int, enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A bar that advances one step per call of the yielded function, showing the step's text."""
    with make_progress(enabled) as progress:
        task = progress.add_task(title, total=total)

        def step(text: str) -> None:
            progress.update(task, advance=1, description=f"{title}: {text}")

        yield step
        progress.update(task, completed=total)
