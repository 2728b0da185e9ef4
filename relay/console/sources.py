"""Console pages for sources: list, add, edit, pause/resume, delete.

Forms become the REST API's fields and go through `relay.admin.sources.add_source` and
`change_source`, so the console applies the API's validation. The password field is
write-only: never filled in, left blank to keep the stored one.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from relay.admin import sources as source_ops
from relay.console import forms
from relay.console.pages import Page, field_errors, list_context, page, redirect
from relay.core.errors import Conflict, InvalidInput
from relay.core.models import Source
from relay.web.query import page_params

NEW_FIELDS = ("username", "base_url", "poll_interval", "start_from")


def _create_data(form: forms.Form, problems: list[InvalidInput]) -> dict[str, Any]:
    """The form as API fields; fields that cannot be converted go to `problems`."""
    data: dict[str, Any] = {
        "username": form.get("username").strip(),
        "password": form.get("password"),
    }
    if form.get("base_url").strip():
        data["base_url"] = form.get("base_url").strip()
    if form.get("poll_interval").strip():
        forms.converted(
            data,
            "poll_interval",
            lambda: forms.number(form.get("poll_interval"), "poll_interval"),
            problems,
        )
    start_from = form.get("start_from").strip()
    if start_from and start_from != "now":
        data["start_from"] = forms.integer_or_text(start_from)
    problems += source_ops.invalid_fields(data)
    return data


def _update_data(form: forms.Form, source: Source, problems: list[InvalidInput]) -> dict[str, Any]:
    """Only what changed: re-sending an unchanged cursor could move it back behind the
    poller, which advanced it while the form was open. Field errors go to `problems`."""
    data: dict[str, Any] = {}
    username = form.get("username").strip()
    if username != source.username:
        data["username"] = username
    if form.get("password"):
        data["password"] = form.get("password")
    base_url = form.get("base_url").strip()
    if base_url != source.base_url:
        data["base_url"] = base_url
    typed: dict[str, Any] = {}
    forms.converted(
        typed,
        "poll_interval",
        lambda: forms.number(form.get("poll_interval"), "poll_interval"),
        problems,
    )
    if typed and typed["poll_interval"] != source.poll_interval_s:
        data["poll_interval"] = typed["poll_interval"]
    if form.get("cursor").strip() != form.get("cursor_was"):
        data["cursor"] = forms.integer_or_text(form.get("cursor"))
    problems += source_ops.invalid_fields(data)
    return data


async def _list(current: Page, *, status: int = 200, **values: Any) -> Response:
    limit, cursor = page_params(current.request)
    listing = await source_ops.list_sources(list_context(current), limit=limit, cursor=cursor)
    values.setdefault("entered", {})
    return current.render(
        "sources.html",
        status=status,
        sources=listing,
        default_base_url=current.ctx.settings.mc5_base_url,
        default_poll_interval=current.ctx.settings.poll_interval_s,
        **values,
    )


@page
async def list_sources(current: Page) -> Response:
    return await _list(current)


@page
async def create_source(current: Page) -> Response:
    entered = {name: current.form.get(name) for name in NEW_FIELDS}
    problems: list[InvalidInput] = []
    data = _create_data(current.form, problems)
    if problems:
        errors = forms.error_messages(problems)
        return await _list(current, status=422, errors=errors, entered=entered)
    try:
        await source_ops.add_source(current.ctx, data)
    except InvalidInput as exc:
        return await _list(current, status=422, errors=field_errors(exc), entered=entered)
    except Conflict as exc:
        return await _list(current, status=409, errors={"username": str(exc)}, entered=entered)
    return redirect("/ui/sources", done="source-added")


@page
async def edit_source(current: Page) -> Response:
    source = await source_ops.get_source(current.ctx, current.request.path_params["source_id"])
    return current.render("source.html", source=source, entered={})


@page
async def update_source(current: Page) -> Response:
    source_id = current.request.path_params["source_id"]
    source = await source_ops.get_source(current.ctx, source_id)
    problems: list[InvalidInput] = []
    data = _update_data(current.form, source, problems)
    errors, status = forms.error_messages(problems), 422
    if not errors:
        try:
            await source_ops.change_source(current.ctx, source_id, data)
        except InvalidInput as exc:
            errors = dict(field_errors(exc))
        except Conflict as exc:
            errors, status = {"username": str(exc)}, 409
    if errors:
        entered = {
            name: current.form.get(name) for name in ("username", "base_url", "poll_interval")
        }
        entered["cursor"] = current.form.get("cursor")
        return current.render(
            "source.html", status=status, source=source, errors=errors, entered=entered
        )
    return redirect(f"/ui/sources/{source_id}", done="source-saved")


@page
async def set_source_status(current: Page) -> Response:
    """Pause or resume (the form's `status` is "paused" or "ok", as in the API)."""
    source_id = current.request.path_params["source_id"]
    status = current.form.get("status")
    await source_ops.change_source(current.ctx, source_id, {"status": status})
    done = "source-paused" if status == "paused" else "source-resumed"
    back = {"overview": "/ui/", "source": f"/ui/sources/{source_id}"}
    return redirect(back.get(current.form.get("back"), "/ui/sources"), done=done)


@page
async def delete_source(current: Page) -> Response:
    await source_ops.delete_source(current.ctx, current.request.path_params["source_id"])
    return redirect("/ui/sources", done="source-deleted")
