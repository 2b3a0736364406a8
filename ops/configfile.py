"""Reading ``invoke.yaml`` (``.yml``, ``.json``) as the untrusted input it is: bounded, and wrong
in one line that names the file and the position.

Invoke reads its configuration files itself, before any task runs, with ``yaml.safe_load``, and
then merges them over the defaults. Each way a file can be wrong went wrong in its own way: a
syntax error, a tab or an unknown tag (``!!python/object``) was a traceback; ``ops: [1, 2]``, an
empty ``ops:`` or a top-level list failed later inside Invoke's merge (``AmbiguousMergeError``,
``AttributeError``) without saying where; and an alias bomb ("billion laughs", nine anchors of
nine aliases each) loads in an instant but hung Invoke for minutes, because its debug log formats
the loaded data, expanded, even when debug output is off.

``read_config_file`` is what Invoke's loaders are replaced with (``ops.taskkit``). It reads at
most ``MAX_BYTES`` of a regular file, composes the YAML with a loader that counts every node as
the aliases expand it and refuses nesting beyond ``MAX_DEPTH``, and checks the result against the
shape of the values it will be merged over, so every one of those is a ``ConfigError`` (exit 2)
saying ``invoke.yaml:3:5: …``. Only plain YAML is read: mappings, lists, strings, numbers,
booleans, null and dates, with anchors, aliases and merge keys within the bounds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.nodes import MappingNode, Node, ScalarNode

from ops.bounded import Refused, clipped, count, loads_json, read_capped
from ops.errors import ConfigError

#: Larger than any real configuration file; small enough that parsing it takes no time.
MAX_BYTES = 1 << 20
#: Nodes of the document with every alias expanded: what Invoke will copy and format.
MAX_NODES = 100_000
#: Nesting deeper than any settings file needs, far below Python's recursion limit.
MAX_DEPTH = 64
#: One error line stays readable: a problem text longer than this is cut.
_PROBLEM_CHARS = 200


class _BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that refuses a document which nests too deep or expands too far.

    Each composed node records its expanded size (itself, its children, and for every alias
    the size of what it refers to); the document's total is checked as it grows, so a bomb is
    refused after ``MAX_NODES`` steps, not after expanding. An alias to a node that is still
    being composed (``&a [*a]``) would make a structure that contains itself, which Invoke's
    merge and repr recurse into forever: refused too.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._nodes = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            size = self._sizes.get(id(node))
            if size is None:
                raise ComposerError(None, None, f"alias *{event.anchor} refers to a value that "
                                    "contains it", mark)
            self._grow(size, mark)
            return node
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
        before = self._nodes
        node = super().compose_node(parent, index)
        self._depth -= 1
        self._grow(1, mark)
        self._sizes[id(node)] = self._nodes - before
        return node

    def _grow(self, size: int, mark: yaml.Mark) -> None:
        self._nodes += size
        if self._nodes > MAX_NODES:
            raise ComposerError(None, None, f"expands to more than {count(MAX_NODES)} values "
                                "(aliases repeating aliases: write the values out)", mark)


def read_config_file(path: str | Path, shape: Mapping[str, Any]) -> dict[str, Any]:
    """The settings in ``path`` (an empty file is ``{}``), or a one-line ``ConfigError``.

    ``shape`` is what the file is merged over (Invoke's defaults and the collection's): where it
    holds a mapping the file must too, and where it holds a value the file must not hold a
    mapping, since Invoke cannot merge those. A missing file raises ``FileNotFoundError``, which
    Invoke takes as "no such file, try the next suffix".
    """
    path = Path(path)
    name = display_name(path)
    try:
        data = read_capped(path, MAX_BYTES)
    except FileNotFoundError:
        raise
    except Refused as exc:
        raise ConfigError(f"{name} {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{name}: cannot be read ({exc.strerror or type(exc).__name__})"
                          ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{name}:{line}: not UTF-8 text (first bad byte on this line)"
                          ) from None
    if path.suffix == ".json":
        return _checked(name, _json(name, text), shape, None)
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters right away
    except yaml.reader.ReaderError as exc:
        raise ConfigError(_reader_problem(name, text, exc)) from None
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_keys(name, node)
        loaded = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_yaml_problem(name, exc)) from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(_reader_problem(name, text, exc)) from None
    finally:
        loader.dispose()
    return _checked(name, loaded, shape, node)


def display_name(path: Path) -> str:
    """The file as the person typed or sees it: relative to the current directory when inside."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return str(path)


def _json(name: str, text: str) -> Any:
    try:
        return loads_json(text, MAX_DEPTH)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name}:{exc.lineno}:{exc.colno}: {exc.msg}") from None
    except Refused as exc:
        raise ConfigError(f"{name} {exc}") from None


def _yaml_problem(name: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name
    problem = (exc.problem or "not valid YAML").replace("tag:yaml.org,2002:", "!!")
    if "could not determine a constructor" in problem:
        problem = (problem.replace("could not determine a constructor for the tag", "unknown tag")
                   + " (only plain YAML is read: mappings, lists, strings, numbers, booleans)")
    if exc.context and exc.problem:
        problem += f" ({exc.context})"
    return f"{where}: {clipped(' '.join(problem.split()), _PROBLEM_CHARS)}"


def _reader_problem(name: str, text: str, exc: yaml.reader.ReaderError) -> str:
    line = text.count("\n", 0, exc.position) + 1
    column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
    return f"{name}:{line}:{column}: character #x{exc.character:04x} is not allowed in YAML"


_NAME_TAGS = frozenset({"tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"})
_TAG_KINDS = {"bool": "a boolean", "int": "a number", "float": "a number", "null": "null",
              "timestamp": "a date", "binary": "bytes"}


def _key_problem(key: Node) -> str:
    if not isinstance(key, ScalarNode):
        return "a list or mapping as a key is not a setting name"
    kind = _TAG_KINDS.get(key.tag.rsplit(":", 1)[-1], "not a string")
    shown = clipped(str(key.value), 40)
    return f"key {shown or '(empty)'} is read as {kind}, not a name; quote it: '{shown}'"


def _check_keys(name: str, root: Node) -> None:
    """Every key is a string: Invoke sorts the top-level keys and joins key paths into
    variable names, and a bare ``on:`` or ``1:`` is a boolean or a number to YAML.

    Walks the composed nodes (each shared one once), so an error names the key's position.
    """
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen or not isinstance(node.value, list):
            continue
        seen.add(id(node))
        for item in node.value:
            if isinstance(node, MappingNode):
                key, value = item
                if key.tag not in _NAME_TAGS:
                    raise ConfigError(f"{_at(name, key)}: {_key_problem(key)}")
                stack.extend((key, value))
            else:
                stack.append(item)


# --- the shape Invoke can merge ------------------------------------------------------------------


def _checked(name: str, data: Any, shape: Mapping[str, Any], node: Node | None
             ) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{_at(name, node)}: expected settings (a mapping such as `ops:`), "
                          f"found {_kind(data)}")
    _check_mapping(name, data, shape, node, ())
    return data


def _check_mapping(name: str, data: dict[Any, Any], shape: Mapping[str, Any], node: Node | None,
                   path: tuple[str, ...]) -> None:
    for key, value in data.items():
        if not isinstance(key, str) or key not in shape:
            continue  # a new key merges as it is; what it holds is the settings' validation
        expected = shape[key]
        where = _at(name, _value_node(node, key))
        dotted = ".".join((*path, key))
        if isinstance(expected, Mapping):
            if value is None:
                raise ConfigError(f"{where}: {dotted} is empty; give it settings or remove it")
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {dotted} must be a mapping of settings, found "
                                  f"{_kind(value)}")
            _check_mapping(name, value, expected, _value_node(node, key), (*path, key))
        elif isinstance(value, dict):
            wanted = _kind(expected) if expected is not None else "a single value"
            raise ConfigError(f"{where}: {dotted} must be {wanted}, found a mapping")


def _value_node(node: Node | None, key: str) -> Node | None:
    """The node of ``key``'s value in a composed mapping (the last one, as the dict keeps)."""
    if not isinstance(node, MappingNode):
        return None
    found = None
    for key_node, value_node in node.value:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            found = value_node
    return found


def _at(name: str, node: Node | None) -> str:
    if node is None:
        return name
    return f"{name}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _kind(value: Any) -> str:
    """What a value is, in the words of the error line (``bool`` before ``int``: it is one)."""
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (bool, "a boolean"), ((int, float), "a number"), (str, "a string"),
        ((list, tuple), "a list"), (dict, "a mapping"))
    if value is None:
        return "nothing (null)"
    return next((word for kind, word in kinds if isinstance(value, kind)),
                f"a {type(value).__name__}")
