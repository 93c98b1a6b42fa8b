"""URL templates from query keys and mutation variables (pure functions)."""

from __future__ import annotations

import pytest

from crdtsync.http import entity_tag, mutation_path, query_path


@pytest.mark.parametrize(("template", "key", "page", "expected"), [
    ("/todos/{1}", ("todos", 5), None, ("/todos/5", {})),
    ("/users/{1}/posts/{2}", ("users", 3, 9), None, ("/users/3/posts/9", {})),
    ("/todos?page={1[page]}", ("todos", {"page": 2}), None, ("/todos?page=2", {})),
    ("/feed/{page}", ("feed",), 4, ("/feed/4", {})),
    ("/files/{1}", ("files", "a b/c?"), None, ("/files/a%20b%2Fc%3F", {})),
    (None, ("todos", 5), None, ("/todos/5", {})),
    (None, ("todos", {"status": "done"}, "x"), None, ("/todos/x", {"status": "done"})),
    (None, ("todos",), None, ("/todos", {})),
])
def test_query_path(template: str | None, key: tuple[object, ...], page: object,
                    expected: tuple[str, dict[str, object]]) -> None:
    assert query_path(template, key, page) == expected


def test_mutation_path_by_name_or_position() -> None:
    assert mutation_path("/todos/{id}", {"id": 5, "title": "x"}) == "/todos/5"
    assert mutation_path("/todos/{id}", {"id": 5.0}) == "/todos/5"  # an integral float reads as an int
    assert mutation_path("/todos/{0}", 7) == "/todos/7"
    assert mutation_path("/tags/{name}", {"name": "a/b"}) == "/tags/a%2Fb"
    with pytest.raises(KeyError):
        mutation_path("/todos/{id}", {"title": "x"})


@pytest.mark.parametrize(("version", "tag"), [
    (3, '"3"'), (3.0, '"3"'), ("abc", '"abc"'), ('"abc"', '"abc"'), ('W/"abc"', 'W/"abc"'),
])
def test_entity_tag(version: object, tag: str) -> None:
    assert entity_tag(version) == tag
