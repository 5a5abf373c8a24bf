# -*- coding: utf-8 -*-
# Copyright: lpfleet developers
# MIT License (see galaxy.yml)
"""What lpfleet's filter plugins share: bad input reported as an AnsibleFilterError naming the filter."""

from __future__ import annotations

from functools import wraps
from typing import Any, Callable

from ansible.errors import AnsibleFilterError

READ_ERRORS: tuple[type[Exception], ...] = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def checked(name: str, function: Callable[..., Any], errors: tuple[type[Exception], ...] = READ_ERRORS,
            what: str = "", show: Callable[[Exception], str] = str) -> Callable[..., Any]:
    """FUNCTION, its ERRORS raised as AnsibleFilterError('NAME: WHAT<the error, through SHOW>')."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except errors as exc:
            raise AnsibleFilterError("%s: %s%s" % (name, what, show(exc))) from exc

    return wrapper
