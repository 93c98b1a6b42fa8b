"""crdtsync/errors.py is the one exception tree: every exception class crdtsync defines lives
there, derives from CrdtsyncError (except ClientError, which belongs to the user's code), and is
drawn in the module docstring's tree."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import crdtsync
from crdtsync import errors

OPTIONAL = ("crdtsync.http",)  # needs the http extra: imported when installed


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(crdtsync.__path__, "crdtsync."):
        if info.name.endswith("__main__"):
            continue
        names.append(info.name)
    return names


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for name in _modules():
        try:
            module = importlib.import_module(name)
        except ImportError:
            assert name.startswith(OPTIONAL), f"{name} does not import"
            continue
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__.startswith("crdtsync"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_every_exception_class_is_defined_in_errors_py() -> None:
    elsewhere = sorted(q for q, cls in _exception_classes().items() if cls.__module__ != "crdtsync.errors")
    assert elsewhere == [], f"exception classes outside crdtsync/errors.py: {elsewhere}"


def test_every_exception_derives_from_the_root_and_is_in_the_drawn_tree() -> None:
    tree = errors.__doc__ or ""
    for qualname, cls in _exception_classes().items():
        if cls is not errors.ClientError:
            assert issubclass(cls, errors.CrdtsyncError), f"{qualname} is not a CrdtsyncError"
        assert f" {cls.__name__} " in tree or f" {cls.__name__}\n" in tree, f"{cls.__name__} is not in the tree"


def test_structured_fields() -> None:
    exc = errors.MessageTooLargeError("too big", size=10, limit=5)
    assert (exc.size, exc.limit) == (10, 5)
    remote = errors.RemoteError("forbidden", "read-only", doc_id="d", seq=3)
    assert (remote.code, remote.doc_id, remote.seq) == ("forbidden", "d", 3)
    assert errors.ConnectionClosed is errors.ConnectionClosedError
