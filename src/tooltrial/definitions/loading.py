"""Loading an experiment from a folder, a YAML/TOML file, a ``.py`` file or ``module:attr``.

Everything is checked before any model is called: a bad definition stops the run with
one message naming the file, the entry (and its line, for YAML) and the fix.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tooltrial.definitions.experiment import Experiment, check_experiment
from tooltrial.definitions.scenarios import Scenario
from tooltrial.definitions.variants import Variant
from tooltrial.errors import DefinitionError

DEFINITION_FILES = ("experiment.yaml", "experiment.yml", "experiment.toml")


def load_experiment(target: str | Path) -> Experiment:
    """Load from a directory, a YAML/TOML file, a ``.py`` file or ``module:attribute``."""
    text = str(target)
    path = Path(text)
    if path.is_dir():
        path = _definition_file_in(path)
    if path.suffix == ".py" or (":" in text and not path.exists()):
        return _load_python(text)
    if not path.exists():
        raise DefinitionError(f"{path}: no such file; give a directory, a YAML/TOML file or .py")
    raw = _read_mapping(path)
    return _build_experiment(path, raw)


def _definition_file_in(directory: Path) -> Path:
    for name in DEFINITION_FILES:
        if (directory / name).exists():
            return directory / name
    raise DefinitionError(
        f"{directory}: no experiment definition; create one of {', '.join(DEFINITION_FILES)}"
    )


def _load_python(target: str) -> Experiment:
    if target.endswith(".py"):
        module_name, attribute = f"_tooltrial_experiment_{abs(hash(target))}", "experiment"
        spec = importlib.util.spec_from_file_location(module_name, target)
        if spec is None or spec.loader is None:
            raise DefinitionError(f"{target}: cannot import this file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    else:
        module_name, _, attribute = target.partition(":")
        module = importlib.import_module(module_name)
    value = getattr(module, attribute or "experiment", None)
    value = value() if callable(value) and not isinstance(value, Experiment) else value
    if not isinstance(value, Experiment):
        raise DefinitionError(
            f"{target}: expected an attribute {attribute or 'experiment'!r} holding a "
            "tooltrial.Experiment (or a function returning one)"
        )
    return check_experiment(value.model_copy(update={"source": target}), source=target)


def _read_data(path: Path) -> Any:
    """Parse a YAML or TOML file; a syntax error names the file and line."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        return tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise DefinitionError(f"{where}: not valid YAML ({exc.problem}); fix the syntax") from None
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise DefinitionError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from None


def _read_mapping(path: Path) -> dict[str, Any]:
    data = _read_data(path)
    if not isinstance(data, dict):
        raise DefinitionError(f"{path}: expected a mapping at the top level")
    return data


def _entry_lines(path: Path, key: str | None) -> list[int]:
    """1-based line numbers of each item of a YAML list (top-level, or under ``key``)."""
    if path.suffix == ".toml":
        return []
    node = yaml.compose(path.read_text())
    if key is not None and isinstance(node, yaml.MappingNode):
        node = next((v for k, v in node.value if k.value == key), None)
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]


def _where(path: Path, index: int, lines: list[int], entry: Any) -> str:
    line = f":{lines[index]}" if index < len(lines) else ""
    name = entry.get("id") or entry.get("name") if isinstance(entry, dict) else None
    return f"{path}{line}: entry #{index + 1}" + (f" ({name!r})" if name else "")


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _load_scenarios(path: Path) -> list[Scenario]:
    data = _read_data(path)
    key = None
    if isinstance(data, dict):
        data, key = data.get("scenarios"), "scenarios"
    if not isinstance(data, list):
        raise DefinitionError(f"{path}: expected a list of scenarios (or a 'scenarios:' list)")
    lines = _entry_lines(path, key)
    scenarios = []
    for index, entry in enumerate(data):
        try:
            scenarios.append(Scenario.model_validate(entry))
        except ValidationError as exc:
            where = _where(path, index, lines, entry)
            raise DefinitionError(f"{where}: {_explain(exc)}") from None
    return scenarios


def _load_variant(path: Path) -> Variant:
    raw = _read_mapping(path)
    try:
        return Variant.model_validate(raw)
    except ValidationError as exc:
        detail = _explain(exc)
        listed = raw.get("tools")
        tools: list[Any] = listed if isinstance(listed, list) else []
        lines = _entry_lines(path, "tools")
        for err in exc.errors():
            loc = err["loc"]
            if len(loc) >= 2 and loc[0] == "tools" and isinstance(loc[1], int):
                where = _where(path, loc[1], lines, tools[loc[1]])
                raise DefinitionError(f"{where} under 'tools': {detail}") from None
        raise DefinitionError(f"{path}: variant {raw.get('name')!r}: {detail}") from None


def _build_experiment(path: Path, raw: dict[str, Any]) -> Experiment:
    base = path.parent
    variant_files = raw.pop("variants", None)
    scenario_source = raw.pop("scenarios", None)
    if not isinstance(variant_files, list) or not variant_files:
        raise DefinitionError(f"{path}: 'variants' must list the variant files")
    if scenario_source is None:
        raise DefinitionError(f"{path}: 'scenarios' must name a scenario file")
    variants = [_load_variant(base / v) for v in variant_files]
    scenarios = _load_scenarios(base / scenario_source)
    try:
        experiment = Experiment(
            **raw, variants=tuple(variants), scenarios=tuple(scenarios), source=str(path)
        )
    except ValidationError as exc:
        raise DefinitionError(f"{path}: {_explain(exc)}") from None
    return check_experiment(experiment, source=str(base / scenario_source))
