"""``DataKey``: what ``ArrayKey`` and ``GraphKey`` share, a name that always gives the same key."""

from __future__ import annotations

from typing import Any, ClassVar


class DataKey:
    """A name for data in a batch; within one kind of key (``ArrayKey``, ``GraphKey``) the same
    name always gives the same key, which is also set on the kind's namespace (``ArrayKeys.RAW``).

    A kind is a direct subclass; it gives its namespace class by overriding ``namespace``.
    """

    _registry: ClassVar[dict[str, Any]] = {}
    _kind: ClassVar[type] = object
    identifier: str

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if DataKey in cls.__bases__:  # a new kind of key: its own names
            cls._registry = {}
            cls._kind = cls

    @classmethod
    def namespace(cls) -> type:
        """The class on which every key of this kind is set as an attribute."""
        raise NotImplementedError

    def __new__(cls, identifier: str):
        key = cls._registry.get(identifier)
        if key is None:
            key = super().__new__(cls)
            key.identifier = identifier
            cls._registry[identifier] = key
            setattr(cls.namespace(), identifier, key)
        return key

    def __init__(self, identifier: str):
        pass

    def __getnewargs__(self) -> tuple[str]:
        return (self.identifier,)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, self._kind) and other.identifier == self.identifier  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self._kind.__name__, self.identifier))

    def __lt__(self, other: object) -> bool:
        return str(self) < str(other)

    def __repr__(self) -> str:
        return self.identifier
