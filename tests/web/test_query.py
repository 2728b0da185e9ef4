"""Paging and filter parameters as the API and the console read them from a query string."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from relay.core.errors import InvalidInput
from relay.store.pagination import encode_cursor
from relay.web.query import page_params, query_choice, query_text


def _request(query: str) -> Request:
    return Request({"type": "http", "query_string": query.encode(), "headers": []})


def test_page_params_default_to_fifty_and_no_cursor() -> None:
    assert page_params(_request("")) == (50, None)


def test_page_params_take_a_limit_and_a_cursor_this_api_made() -> None:
    cursor = encode_cursor(1234)
    assert page_params(_request(f"limit=7&cursor={cursor}")) == (7, cursor)


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "limit=1e3", "cursor=x"])
def test_bad_page_params_name_the_field(query: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        page_params(_request(query))
    assert caught.value.field == query.split("=")[0]


def test_query_choice_accepts_only_the_choices() -> None:
    assert query_choice(_request("type=a"), "type", ("a", "b")) == "a"
    assert query_choice(_request(""), "type", ("a", "b")) is None
    with pytest.raises(InvalidInput, match="type must be one of a, b"):
        query_choice(_request("type=c"), "type", ("a", "b"))


def test_query_text_is_bounded() -> None:
    assert query_text(_request("source_id=src_1"), "source_id", max_length=10) == "src_1"
    with pytest.raises(InvalidInput):
        query_text(_request("source_id=" + "x" * 11), "source_id", max_length=10)
