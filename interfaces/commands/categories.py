"""`evidence categories …`: the enforcement categories (执法类别) cases are filed under."""

from __future__ import annotations

import typer
from rich.table import Table

from interfaces import common, output
from interfaces.common import JsonOpt
from pipeline.cases.categories import load_categories

app = typer.Typer(help="Enforcement categories (执法类别) of cases.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="categories")
    app.command("list")(categories_list)


def categories_list(json_out: JsonOpt = False) -> None:
    """List the categories: the id or the zh-CN name goes to `cases add --category`;
    mandatory A/V ones need whole-process recording (全过程音像记录).

    Example: evidence categories list
    """
    found = load_categories(common.settings())
    listing = found.listing()
    if json_out:
        output.print_json(listing)
        return
    table = Table(title=f"{output.plural(len(listing), 'category')} (执法类别)")
    for col in ("id", "名称", "name", "A/V required", "kept"):
        table.add_column(col)
    for c in listing:
        days = found.retention_days[c.retention]
        table.add_row(
            output.text(c.id),
            output.text(c.name_zh),
            output.text(c.name_en),
            "yes 必须" if c.mandatory_av else "no",
            "permanently 永久" if days == 0 else f"{days} days",
        )
    output.console.print(table)
