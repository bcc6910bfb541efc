"""Write a :class:`~wconv.report.tables.Table` as CSV, Markdown and HTML (relative links only)."""

from __future__ import annotations

import html
import os
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from wconv.report.tables import OURS, Cell, Link, Table


def relative_url(target: Path, base: Path) -> str:
    """A relative URL from folder ``base`` to ``target`` (works from file:// without a server)."""
    path = os.path.relpath(target.resolve(), base.resolve())
    url = quote(Path(path).as_posix())
    return url + "/" if target.is_dir() and not url.endswith("/") else url


def load_css() -> str:
    return resources.files("wconv.report").joinpath("style.css").read_text()


def table_csv(table: Table) -> str:
    return table.data.to_csv(index=False, lineterminator="\n")


def _header(group: str, name: str) -> str:
    # Published columns carry their label in every format; ours are the unlabelled default.
    return f"{group}: {name}" if group and group != OURS else name


def _md_cell(cell: Cell, base: Path) -> str:
    if isinstance(cell, Link):
        text = cell.text.replace("|", "\\|")
        return f"[{text}]({relative_url(cell.target, base)})"
    return str(cell).replace("|", "\\|").replace("\n", " ")


def table_markdown(table: Table, base: Path) -> str:
    """A GitHub-flavoured Markdown table with the title and notes; links relative to ``base``."""
    lines = [f"## {table.title}", ""]
    lines.append("| " + " | ".join(_header(g, n) for g, n in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines += ["| " + " | ".join(_md_cell(c, base) for c in row) + " |" for row in table.rows]
    if not table.rows:
        lines.append("| " + " | ".join("—" for _ in table.columns) + " |")
    lines.append("")
    if table.caption:
        lines += [table.caption, ""]
    lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def _html_cell(cell: Cell, base: Path) -> str:
    if isinstance(cell, Link):
        href = html.escape(relative_url(cell.target, base))
        return f'<a href="{href}">{html.escape(cell.text)}</a>'
    return html.escape(str(cell))


def _group_class(group: str) -> str:
    if not group:
        return "key"
    return "ours" if group == OURS else "published"


def table_html(table: Table, base: Path) -> str:
    """The table as an HTML fragment (``<figure>`` with caption, table and notes)."""
    out = [f'<figure class="table" id="{html.escape(table.key)}">']
    out.append(f"<figcaption>{html.escape(table.title)}</figcaption>")
    out.append('<div class="scroll"><table>')
    out.append("<thead>")
    if any(group for group, _ in table.columns):
        out.append("<tr>")
        spans: list[tuple[str, int]] = []
        for group, _ in table.columns:
            if spans and spans[-1][0] == group:
                spans[-1] = (group, spans[-1][1] + 1)
            else:
                spans.append((group, 1))
        for group, span in spans:
            cls = _group_class(group)
            out.append(f'<th colspan="{span}" class="group {cls}">{html.escape(group)}</th>')
        out.append("</tr>")
    out.append("<tr>")
    for group, name in table.columns:
        out.append(f'<th class="{_group_class(group)}">{html.escape(name)}</th>')
    out.append("</tr>")
    out.append("</thead>")
    out.append("<tbody>")
    for index, row in enumerate(table.rows):
        cls = table.row_classes[index] if index < len(table.row_classes) else ""
        out.append(f'<tr class="{html.escape(cls)}">' if cls else "<tr>")
        for (group, _), cell in zip(table.columns, row, strict=True):
            out.append(f'<td class="{_group_class(group)}">{_html_cell(cell, base)}</td>')
        out.append("</tr>")
    if not table.rows:
        out.append(f'<tr><td colspan="{len(table.columns)}" class="empty">no rows yet</td></tr>')
    out.append("</tbody>")
    out.append("</table></div>")
    if table.caption:
        out.append(f'<p class="caption">{html.escape(table.caption)}</p>')
    if table.notes:
        out.append('<ul class="notes">')
        out += [f"<li>{html.escape(note)}</li>" for note in table.notes]
        out.append("</ul>")
    out.append("</figure>")
    return "\n".join(out)


def html_document(title: str, body: str) -> str:
    """A complete, self-contained HTML page (inline CSS, no scripts, no external resources)."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{load_css()}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
