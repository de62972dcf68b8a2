"""The click parts every ``clp*`` command shares: the :class:`Command` class (a mistake in the
options is the product's ``Invalid option.``) and ``--json``."""

from __future__ import annotations

from typing import Any

import click

from clp.cli.common import PRODUCT, Code, finish

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")


class Command(click.Command):
    """A clp command: a mistake in the options is the product's ``Invalid option.`` (click's
    explanation follows on stderr), and ``-h`` is left to the commands, which use it for a host
    name (help is ``--help``)."""

    option_code: int = Code.INVALID_OPTION  # a command with the product's own codes changes it

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("context_settings", {"help_option_names": ["--help"]})
        super().__init__(*args, **kwargs)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            self._one_choice_each(ctx, args)
            return super().parse_args(ctx, args)
        except click.UsageError as e:
            finish(self.option_code, e.format_message(), product=PRODUCT[Code.INVALID_OPTION])

    def _one_choice_each(self, ctx: click.Context, args: list[str]) -> None:
        """Options sharing a name are one choice (``-s`` or ``-t``): click would keep the last
        one given without a word, so two different ones are refused."""
        _, _, order = self.make_parser(ctx).parse_args(args=list(args))
        given: dict[str, list[str]] = {}
        for p in order:
            if isinstance(p, click.Option) and p.name is not None:
                given.setdefault(p.name, []).append(p.opts[0])
        for flags in given.values():
            if len(set(flags)) > 1:
                raise click.UsageError(f"{flags[0]} and {flags[-1]} cannot be used together.")
