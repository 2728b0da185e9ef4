"""Console pages for dead letters: the list with each one's subscription and last response,
and retry (one, or all of them). Events have their own pages (`messages`)."""

from __future__ import annotations

from starlette.responses import Response

from relay.admin import dead_letters, subscriptions
from relay.console.pages import Page, page, redirect
from relay.web.query import page_params


@page
async def list_dead_letters(current: Page) -> Response:
    limit, cursor = page_params(current.request)
    found = await dead_letters.list_dead_letters(current.ctx, limit=limit, cursor=cursor)
    ids = sorted({dl.subscription_id for dl in found.items})
    urls = {sub.id: sub.url for sub in await subscriptions.subscriptions_by_id(current.ctx, ids)}
    return current.render("dead_letters.html", dead_letters=found, urls=urls)


@page
async def retry_dead_letter(current: Page) -> Response:
    dead_letter_id = current.request.path_params["dead_letter_id"]
    await dead_letters.retry_dead_letter(current.ctx, dead_letter_id)
    return redirect("/ui/dead-letters", done="retried")


@page
async def retry_all_dead_letters(current: Page) -> Response:
    queued = await dead_letters.retry_dead_letters(current.ctx)
    return redirect("/ui/dead-letters", done="retried-all", n=queued)
