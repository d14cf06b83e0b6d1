"""Loading an experiment from a folder, a YAML/TOML file, a ``.py`` file or ``module:attr``.

Everything is checked before any model is called: a bad definition stops the run with
one ``DefinitionError`` naming the file, the entry (and its line, for YAML) and the fix.
That covers every way a definition can be wrong: a file that cannot be read or is not
UTF-8, YAML or TOML that does not parse, a key given twice in one YAML mapping, a value
of the wrong type or out of range (``tooltrial.definitions.limits``), an entry that means
nothing (no scenarios, an empty prompt), and a Python definition that does not import.
A scenario's fault found after loading (its success checks, setup, reference, forbidden
calls, expectations; ``check_experiment`` and the workbench) names the scenarios file and
the line of the key at fault (``scenario_where`` with the fault's ``ScenarioFault.loc``),
never ``experiment.yaml``; a fault of the experiment or a variant names
``experiment.yaml``, never the scenarios file.

YAML is parsed by libyaml (``yaml.CSafeLoader``) when PyYAML has it, with the cyclic
garbage collector paused. Line numbers for a message are looked up only once something is
wrong, so a large valid file is parsed once (``bench/bench_load.py``).

A selection (``load_experiment(target, scenarios=...)``: a run's ``--scenario``, or a
resumed run's planned scenarios) is loaded at a cost proportional to it: the scenarios
file is split into its entries as text (``entries``), and only the selected ones are
parsed, built and checked; every entry's id is still read, so a duplicate or unknown id
is still found. The experiment then holds only those scenarios. Anything the split or a
selected entry does not make plain (a file not written as a plain list, an entry that
does not parse alone or is wrong) loads the whole file as without a selection, so a
selection never changes what a file means or what an error says. ``tooltrial check``
without ``--scenario`` checks every entry.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import sys
import tomllib
import traceback
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tooltrial.definitions.entries import split_list
from tooltrial.definitions.experiment import (
    Experiment,
    check_experiment,
    scenario_problem,
    variant_problem,
)
from tooltrial.definitions.scenarios import Scenario
from tooltrial.definitions.variants import Variant
from tooltrial.errors import DefinitionError, TooltrialError

DEFINITION_FILES = ("experiment.yaml", "experiment.yml", "experiment.toml")

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DuplicateKey(yaml.constructor.ConstructorError):
    """A key given twice in one mapping (plain YAML keeps the last and says nothing)."""

    def __init__(self, key: Any, first_line: int, mark: yaml.Mark) -> None:
        super().__init__(problem=f"duplicate key {key!r}", problem_mark=mark)
        self.key, self.first_line = key, first_line


class StrictLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe YAML (libyaml's parser when present) that refuses a duplicate mapping key.

    Keys merged in with ``<<`` may be overridden, as YAML intends; a key written twice
    in the same mapping is refused with both lines."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    first = seen.get(key)
                except TypeError:
                    continue  # unhashable: the base class says so
                if first is not None:
                    raise DuplicateKey(key, first, key_node.start_mark)
                seen[key] = line
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: loading makes millions of small objects and no
    cycles, and the collector's passes over them were most of a large file's load time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_experiment(target: str | Path, scenarios: Collection[str] | None = None) -> Experiment:
    """Load from a directory, a YAML/TOML file, a ``.py`` file or ``module:attribute``;
    with ``scenarios``, only those scenarios (see the module docstring)."""
    only = frozenset(scenarios) if scenarios else None
    with _gc_paused():
        return _load(target, only)


def _load(target: str | Path, only: frozenset[str] | None) -> Experiment:
    text = str(target)
    path = Path(text)
    if path.is_dir():
        path = _definition_file_in(path)
    if path.suffix == ".py" or (":" in text and not path.exists()):
        return _load_python(text, only)
    if not path.exists():
        raise DefinitionError(f"{path}: no such file; give a directory, a YAML/TOML file or .py")
    if path.suffix not in (".yaml", ".yml", ".toml"):
        raise DefinitionError(
            f"{path}: not a definition file; give a folder, a .yaml/.yml/.toml file, "
            "a .py file or module:attr"
        )
    raw = _read_mapping(path)
    return _build_experiment(path, raw, only)


def _definition_file_in(directory: Path) -> Path:
    for name in DEFINITION_FILES:
        if (directory / name).exists():
            return directory / name
    raise DefinitionError(
        f"{directory}: no experiment definition; create one of {', '.join(DEFINITION_FILES)}"
    )


# --- Python definitions ----------------------------------------------------------------


def _load_python(target: str, only: frozenset[str] | None) -> Experiment:
    if target.endswith(".py"):
        module, attribute = _import_file(Path(target)), "experiment"
    else:
        module_name, _, attribute = target.partition(":")
        module = _import_module(module_name, target)
    name = attribute or "experiment"
    value = getattr(module, name, None)
    if callable(value) and not isinstance(value, Experiment):
        value = _user_code(target, value)
    if not isinstance(value, Experiment):
        raise DefinitionError(
            f"{target}: expected an attribute {name!r} holding a "
            "tooltrial.Experiment (or a function returning one)"
        )
    update: dict[str, Any] = {"source": target}
    ids = [scenario.id for scenario in value.scenarios]
    if only is not None and only <= set(ids) and len(set(ids)) == len(ids):
        update["scenarios"] = tuple(s for s in value.scenarios if s.id in only)
    return check_experiment(value.model_copy(update=update), source=target)


def import_code(reference: str) -> tuple[Any, str]:
    """The module a code reference (``file.py[:Name]`` or ``module[:Name]``) names, and
    the name after the colon ('' if none); what the code raises is a DefinitionError."""
    file, _, name = reference.partition(":")
    if file.endswith(".py"):
        return _import_file(Path(file)), name
    return _import_module(file, reference), name


def run_user_code(target: str, function: Any, *args: Any) -> Any:
    """Call the user's ``function``; what it raises is a DefinitionError naming its
    file and line (``target`` when no frame of the user's is found)."""
    return _user_code(target, function, *args)


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise DefinitionError(f"{path}: no such file; give an existing .py file")
    module_name = f"_tooltrial_experiment_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise DefinitionError(f"{path}: cannot import this file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        _user_code(str(path), spec.loader.exec_module, module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module


def _import_module(module_name: str, target: str) -> Any:
    if not module_name or not all(p.isidentifier() for p in module_name.split(".")):
        raise DefinitionError(
            f"{target}: not a module path; write package.module:attr, or give a file"
        )
    try:
        return _user_code(target, importlib.import_module, module_name)
    except DefinitionError as exc:
        cause = exc.__cause__
        if isinstance(cause, ModuleNotFoundError) and (
            cause.name == module_name or module_name.startswith(f"{cause.name}.")
        ):
            raise DefinitionError(
                f"{target}: no module named {cause.name!r}; check the name, or run from "
                "the folder that holds it (or give the .py file)"
            ) from None
        raise


def _user_code(target: str, function: Any, *args: Any) -> Any:
    """Run the definition's own code; what it raises is bad input, named by file and line."""
    try:
        return function(*args)
    except TooltrialError:
        raise
    except SyntaxError as exc:
        where = f"{exc.filename}:{exc.lineno}" if exc.lineno else (exc.filename or target)
        raise DefinitionError(f"{where}: not valid Python ({exc.msg}); fix the syntax") from None
    except ValidationError as exc:
        raise DefinitionError(f"{_user_frame(exc, target)}: {_explain(exc)}") from None
    except (Exception, SystemExit) as exc:
        raise DefinitionError(
            f"{_user_frame(exc, target)}: the definition raised "
            f"{type(exc).__name__}: {exc}; fix the definition"
        ) from exc


def _user_frame(exc: BaseException, target: str) -> str:
    """``file:line`` of the innermost frame outside tooltrial and the import machinery."""
    here = str(Path(__file__).resolve().parents[1])
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(here)
        and not f.filename.startswith("<frozen")
        and "site-packages" not in f.filename
    ]
    return f"{frames[-1].filename}:{frames[-1].lineno}" if frames else target


# --- files -----------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    """The file as text; unreadable or not UTF-8 is a message naming file and line."""
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise DefinitionError(f"{path}: is a folder; name the definition file") from None
    except FileNotFoundError:
        raise DefinitionError(f"{path}: no such file; check the name and path") from None
    except OSError as exc:
        raise DefinitionError(
            f"{path}: cannot read ({exc.strerror or exc}); check its permissions"
        ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DefinitionError(
            f"{path}:{line}: not UTF-8 text (byte {data[exc.start]:#04x} at column {column}); "
            "save the file as UTF-8"
        ) from None


def _read_data(path: Path) -> Any:
    """Parse a YAML or TOML file; a syntax error names the file and line."""
    text = _read_text(path)
    if path.suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DefinitionError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    try:
        return yaml.load(text, Loader=StrictLoader)  # StrictLoader is a safe loader
    except DuplicateKey as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else exc.first_line
        first = "earlier on this line" if exc.first_line == line else f"on line {exc.first_line}"
        raise DefinitionError(
            f"{path}:{line}: duplicate key {exc.key!r} (first given {first}); YAML would "
            "silently keep only the last: remove or rename one"
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise DefinitionError(f"{where}: not valid YAML ({exc.problem}); fix the syntax") from None
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{path}: not valid YAML: {exc}; fix the syntax") from None


def _read_mapping(path: Path) -> dict[str, Any]:
    data = _read_data(path)
    if not isinstance(data, dict):
        raise DefinitionError(
            f"{path}: expected a mapping of keys at the top level, got "
            f"{_kind(data)}; see the README's 'Bring your own experiment'"
        )
    return data


def _kind(value: Any) -> str:
    if value is None:
        return "an empty file"
    if isinstance(value, list):
        return "a list"
    return "a string" if isinstance(value, str) else type(value).__name__


def _line_of(path: Path, loc: Sequence[str | int]) -> int | None:
    """1-based line of the node at ``loc`` (keys and list indices), or of its nearest
    ancestor that exists. Only called once something is wrong: parses the file again."""
    if path.suffix == ".toml":
        return None
    try:
        node = yaml.compose(_read_text(path), Loader=_BaseLoader)
    except (yaml.YAMLError, DefinitionError):
        return None
    line = None
    for step in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(step)), None)
            if found is None:
                break
            line, node = found[0].start_mark.line + 1, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            if step >= len(node.value):
                break
            node = node.value[step]
            line = node.start_mark.line + 1
        else:
            break
    return line


def scenario_where(source: str | None, scenario_id: str, *loc: str | int) -> str:
    """``file:line: scenario 'id'`` for a fault in a scenario found after loading (its
    success checks, setup, reference, expectations): the line in the scenarios file of
    ``loc`` within that scenario's entry (or of the entry). From a definition file only;
    otherwise ``source`` as given. Only called once something is wrong: reads the files
    again."""
    plain = f"{source or '<python>'}: scenario {scenario_id!r}"
    path = Path(source) if source else None
    if path is None or path.suffix not in (".yaml", ".yml", ".toml") or not path.is_file():
        return plain
    try:
        named = _read_mapping(path).get("scenarios")
        scenario_file = path.parent / named if isinstance(named, str) else None
        data = _read_data(scenario_file) if scenario_file is not None else None
    except (DefinitionError, OSError):
        return plain
    prefix: tuple[str | int, ...] = ()
    if isinstance(data, dict):
        data, prefix = data.get("scenarios"), ("scenarios",)
    if scenario_file is None or not isinstance(data, list):
        return plain
    index = next(
        (n for n, e in enumerate(data) if isinstance(e, dict) and e.get("id") == scenario_id),
        None,
    )
    if index is None:
        return f"{scenario_file}: scenario {scenario_id!r}"
    line = _line_of(scenario_file, (*prefix, index, *loc))
    return f"{scenario_file}{f':{line}' if line else ''}: scenario {scenario_id!r}"


def _where(path: Path, loc: Sequence[str | int], index: int, entry: Any) -> str:
    line = _line_of(path, loc)
    name = entry.get("id") or entry.get("name") if isinstance(entry, dict) else None
    return f"{path}{f':{line}' if line else ''}: entry #{index + 1}" + (
        f" ({name!r})" if isinstance(name, str | int) and name else ""
    )


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


# --- the three kinds of file -------------------------------------------------------------


def _load_scenarios(path: Path, only: frozenset[str] | None = None) -> list[Scenario]:
    if only is not None and path.suffix != ".toml":
        selected = _selected_scenarios(path, only)
        if selected is not None:
            return selected
    data = _read_data(path)
    prefix: tuple[str | int, ...] = ()
    if isinstance(data, dict):
        data, prefix = data.get("scenarios"), ("scenarios",)
    if not isinstance(data, list):
        raise DefinitionError(f"{path}: expected a list of scenarios (or a 'scenarios:' list)")
    if not data:
        raise DefinitionError(
            f"{path}: there are no scenarios; add at least one (a run would make no call)"
        )
    scenarios = []
    for index, entry in enumerate(data):
        try:
            scenario = Scenario.model_validate(entry)
        except ValidationError as exc:
            where = _where(path, (*prefix, index), index, entry)
            raise DefinitionError(f"{where}: {_explain(exc)}") from None
        problem = scenario_problem(scenario)
        if problem is not None:
            loc, what = problem
            line = _line_of(path, (*prefix, index, *loc))
            where = f"{path}{f':{line}' if line else ''}: entry #{index + 1} ({scenario.id!r})"
            raise DefinitionError(f"{where}: {what}")
        scenarios.append(scenario)
    return scenarios


def _selected_scenarios(path: Path, only: frozenset[str]) -> list[Scenario] | None:
    """The selected scenarios, parsed, built and checked alone; None whenever anything is
    not plain (the caller loads the whole file, which says what is wrong)."""
    listing = split_list(_read_text(path))
    if listing is None:
        return None
    ids = list(listing.ids)
    parsed: dict[int, Any] = {}
    for index, known in enumerate(listing.ids):
        if known is None:  # not plain in the text: this entry is parsed to learn it
            parsed[index] = _entry_data(listing.text(index))
            found = parsed[index].get("id") if isinstance(parsed[index], dict) else None
            ids[index] = found if isinstance(found, str) else None
    if None in ids or len(set(ids)) != len(ids) or not only <= set(ids):
        return None  # a duplicate or unknown id: the whole file's load says so
    scenarios = []
    for index, scenario_id in enumerate(ids):
        if scenario_id not in only:
            continue
        data = parsed[index] if index in parsed else _entry_data(listing.text(index))
        try:
            scenario = Scenario.model_validate(data)
        except ValidationError:
            return None
        if scenario.id != scenario_id or scenario_problem(scenario) is not None:
            return None
        scenarios.append(scenario)
    return scenarios


def _entry_data(text: str) -> Any:
    """One entry parsed alone (``entries.Listing.text``), or None if it does not parse as
    one list item."""
    try:
        data = yaml.load(text, Loader=StrictLoader)  # StrictLoader is a safe loader
    except yaml.YAMLError:
        return None
    return data[0] if isinstance(data, list) and len(data) == 1 else None


def resolve_code(reference: Any, base: Path) -> Any:
    """A code reference (``file.py``, ``file.py:Name`` or ``module:Name``) with a relative
    file made absolute against ``base`` (the folder of the file that names it)."""
    if not isinstance(reference, str):
        return reference  # the model's own validation says what is wrong
    file, colon, name = reference.partition(":")
    if file.endswith(".py") and not Path(file).is_absolute():
        return f"{(base / file).resolve()}{colon}{name}"
    return reference


def _load_variant(path: Path) -> Variant:
    raw = _read_mapping(path)
    if "implementation" in raw:
        raw["implementation"] = resolve_code(raw["implementation"], path.parent)
    if isinstance(raw.get("mcp"), dict):
        raw["mcp"] = {**raw["mcp"], "here": str(path.parent.resolve())}
    try:
        variant = Variant.model_validate(raw)
    except ValidationError as exc:
        detail = _explain(exc).replace("mcp.tools.", "tools.")
        listed = raw.get("tools")
        tools: list[Any] = listed if isinstance(listed, list) else []
        for err in exc.errors():
            loc = err["loc"]
            if loc[:2] == ("mcp", "tools"):  # beside mcp:, tools: are its overrides
                loc = loc[1:]
            if len(loc) >= 2 and loc[0] == "tools" and isinstance(loc[1], int) and tools:
                where = _where(path, ("tools", loc[1]), loc[1], tools[loc[1]])
                raise DefinitionError(f"{where} under 'tools': {detail}") from None
        line = _line_of(path, exc.errors()[0]["loc"])
        where = f"{path}{f':{line}' if line else ''}"
        raise DefinitionError(f"{where}: variant {raw.get('name')!r}: {detail}") from None
    problem = variant_problem(variant)
    if problem is not None:
        loc, what = problem
        line = _line_of(path, loc)
        raise DefinitionError(f"{path}{f':{line}' if line else ''}: {what}")
    return variant


def _file_list(path: Path, raw: dict[str, Any], key: str, many: bool) -> list[Path]:
    """The files named under ``key``: a list of them (``many``), or exactly one."""
    value = raw.pop(key, None)

    def where(*loc: int) -> str:  # only called for a message: it parses the file again
        line = _line_of(path, (key, *loc))
        return f"{path}:{line}" if line else str(path)

    shape = "list the variant files" if many else "name one scenario file"
    if value is None:
        raise DefinitionError(f"{where()}: '{key}' is missing or empty; {shape}")
    if (many and (not isinstance(value, list) or not value)) or (
        not many and not isinstance(value, str)
    ):
        raise DefinitionError(f"{where()}: '{key}' must {shape}; got {value!r}")
    items = value if many else [value]
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            raise DefinitionError(
                f"{where(*([index] if many else []))}: '{key}' entry #{index + 1} must be a "
                f"file path (relative to {path.parent}); got {item!r}"
            )
    return [path.parent / item for item in items]


def _build_experiment(path: Path, raw: dict[str, Any], only: frozenset[str] | None) -> Experiment:
    variant_files = _file_list(path, raw, "variants", many=True)
    (scenario_file,) = _file_list(path, raw, "scenarios", many=False)
    variants = [_load_variant(v) for v in variant_files]
    scenarios = _load_scenarios(scenario_file, only)
    if "app" in raw:
        raw["app"] = resolve_code(raw["app"], path.parent)
    try:
        experiment = Experiment(
            **raw, variants=tuple(variants), scenarios=tuple(scenarios), source=str(path)
        )
    except TypeError as exc:  # a key that is not a string (``1: x``)
        raise DefinitionError(f"{path}: {exc}; keys must be names") from None
    except ValidationError as exc:
        line = _line_of(path, exc.errors()[0]["loc"][:1])
        raise DefinitionError(f"{path}{f':{line}' if line else ''}: {_explain(exc)}") from None
    return check_experiment(
        experiment,
        source=str(path),
        place=lambda scenario_id, *loc: scenario_where(str(path), scenario_id, *loc),
    )
