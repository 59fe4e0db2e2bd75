"""The public surface: everything exported is documented, typed and importable."""

from __future__ import annotations

import importlib.resources
import inspect

import freedompay_async as fp
import freedompay_async.callbacks as callbacks
import freedompay_async.cli as cli
import freedompay_async.sandbox as sandbox


def test_every_public_name_is_exported_and_documented() -> None:
    for module in (fp, callbacks, cli, sandbox):
        for name in module.__all__:
            obj = getattr(module, name)
            if name.startswith("__") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            assert inspect.getdoc(obj), f"{module.__name__}.{name} has no docstring"


def test_public_methods_are_documented() -> None:
    for name in fp.__all__:
        obj = getattr(fp, name)
        if not inspect.isclass(obj) or issubclass(obj, BaseException):
            continue
        for attr in vars(obj):
            member = getattr(obj, attr)
            documentable = inspect.isroutine(member) or isinstance(member, property)
            if attr.startswith("_") or not documentable:
                continue
            assert inspect.getdoc(member), f"{name}.{attr} has no docstring"


def test_the_package_ships_py_typed() -> None:
    assert importlib.resources.files("freedompay_async").joinpath("py.typed").is_file()


def test_every_error_is_a_freedompay_error() -> None:
    errors = [getattr(fp, n) for n in fp.__all__ if n.endswith("Error")]
    assert len(errors) >= 19
    assert all(issubclass(e, fp.FreedomPayError) for e in errors)


def test_the_merchant_side_is_importable_from_the_top_level_too() -> None:
    missing = [name for name in callbacks.__all__ if not hasattr(fp, name)]
    assert missing == []
    assert all(getattr(fp, name) is getattr(callbacks, name) for name in callbacks.__all__)
