"""Pipeline files (TOML): loading and complete validation before anything runs.

    name = "digits"
    out = "out/digits"                    # artifacts folder (relative to the working dir); --out overrides
    imports = ["my_steps.py"]             # modules whose @pipeline_process functions become step types

    [[steps]]
    name = "data"
    type = "dataset"
    params = { name = "digits", test_size = 0.25 }

    [[steps]]
    name = "train"
    type = "train"
    params = { data = "${data.data}", graph = "cnn.json", epochs = 5 }

A string that is exactly `${step}` or `${step.key}` is replaced by that step's output (any
type); `${out}` is the artifacts folder; references inside longer strings are formatted in
("${out}/model.onnx"). Steps run in dependency order (references and `depends_on`), file order
otherwise. Every problem (unknown step type or key, wrong type, missing parameter, unknown
reference, duplicate name, cycle) is collected into one PipelineConfigError naming step and key.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .process import REGISTRY, PipelineConfigError, get_process

REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z0-9_.\-]+))?\}")
RESERVED = {"out": "the artifacts folder", "pipeline": "the pipeline's own settings"}
TOP_KEYS = {"name": str, "description": str, "out": str, "seed": int, "device": str, "imports": list, "steps": list,
            "store": str}
STEP_KEYS = {"name", "type", "params", "depends_on", "description"}


def is_ref(v: Any) -> bool:
    return isinstance(v, str) and REF.search(v) is not None


def refs_in(v: Any, path: str = "") -> list[tuple[str, str, str | None]]:
    """(key path, step, output key) of every reference inside a params value."""
    if isinstance(v, str):
        return [(path, m.group(1), m.group(2)) for m in REF.finditer(v)]
    if isinstance(v, dict):
        return [r for k, x in v.items() for r in refs_in(x, f"{path}.{k}" if path else str(k))]
    if isinstance(v, list):
        return [r for i, x in enumerate(v) for r in refs_in(x, f"{path}[{i}]")]
    return []


@dataclass
class StepConfig:
    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    description: str = ""

    def needs(self) -> list[str]:
        """Steps this one waits for: depends_on plus every referenced step."""
        refs = [s for _, s, _ in refs_in(self.params) if s not in RESERVED]
        return list(dict.fromkeys(self.depends_on + refs))


@dataclass
class PipelineConfig:
    name: str
    steps: list[StepConfig]
    order: list[str]                      # step names in run order
    out: str | None = None
    seed: int = 0
    device: str | None = None
    store: str | None = None
    description: str = ""
    imports: list[str] = field(default_factory=list)
    base_dir: Path = field(default_factory=Path.cwd)   # relative paths in params resolve here
    source: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def step(self, name: str) -> StepConfig:
        return next(s for s in self.steps if s.name == name)

    def resolve_path(self, p: str | Path) -> Path:
        p = Path(p).expanduser()
        return p if p.is_absolute() else self.base_dir / p


def load_pipeline(path: str | Path, overrides: dict[str, Any] | None = None) -> PipelineConfig:
    """Read and validate a pipeline TOML file (see module docs); raises PipelineConfigError.
    `overrides` {"step.param": value} change step parameters before validation."""
    path = Path(path)
    if not path.is_file():
        raise PipelineConfigError(f"pipeline file '{path}' does not exist" if not path.exists()
                                  else f"'{path}' is not a file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise PipelineConfigError(f"not valid TOML: {e}", source=str(path)) from None
    if overrides:
        apply_overrides(data, overrides, str(path))
    return parse_pipeline(data, base_dir=path.resolve().parent, source=str(path), default_name=path.stem)


def apply_overrides(data: dict, overrides: dict[str, Any], source: str | None = None) -> None:
    """Set step parameters in raw pipeline data: {"train.epochs": 1} (e.g. from `--set`)."""
    steps = {s.get("name"): s for s in data.get("steps", []) if isinstance(s, dict)}
    problems = []
    for key, value in overrides.items():
        step, _, param = key.partition(".")
        if not param:
            problems.append((None, key, "an override must look like step.param=value"))
        elif step not in steps:
            problems.append((step, param, f"override names no step (steps: {', '.join(map(str, steps))})"))
        else:
            steps[step].setdefault("params", {})[param] = value
    if problems:
        raise PipelineConfigError(problems, source)


def loads_pipeline(text: str, base_dir: str | Path | None = None) -> PipelineConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PipelineConfigError(f"not valid TOML: {e}") from None
    return parse_pipeline(data, base_dir=Path(base_dir or Path.cwd()))


def parse_pipeline(data: dict, base_dir: Path, source: str | None = None, default_name: str = "pipeline"
                   ) -> PipelineConfig:
    problems: list[tuple[str | None, str | None, str]] = []
    for k, v in data.items():
        if k not in TOP_KEYS:
            problems.append((None, k, f"unknown top-level key; valid keys: {', '.join(TOP_KEYS)}"))
        elif not isinstance(v, TOP_KEYS[k]) or (TOP_KEYS[k] is int and isinstance(v, bool)):
            problems.append((None, k, f"must be a {TOP_KEYS[k].__name__}, got {type(v).__name__}"))
    if problems:
        raise PipelineConfigError(problems, source)
    imports = list(data.get("imports", []))
    problems += import_modules(imports, base_dir)
    raw_steps = data.get("steps", [])
    if not raw_steps:
        problems.append((None, "steps", "the pipeline has no steps; add [[steps]] tables"))
    steps: list[StepConfig] = []
    seen: set[str] = set()
    for i, st in enumerate(raw_steps):
        label = st.get("name") if isinstance(st, dict) and isinstance(st.get("name"), str) else f"#{i + 1}"
        if not isinstance(st, dict):
            problems.append((label, None, "each [[steps]] entry must be a table"))
            continue
        for k in st:
            if k not in STEP_KEYS:
                problems.append((label, k, f"unknown step key; valid keys: {', '.join(sorted(STEP_KEYS))}"))
        name, typ = st.get("name"), st.get("type")
        if not isinstance(name, str) or not name.isidentifier():
            problems.append((label, "name", "every step needs a 'name' made of letters, digits and _"))
            continue
        if name in RESERVED:
            problems.append((name, "name", f"'{name}' is reserved (${{{name}}} is {RESERVED[name]})"))
        if name in seen:
            problems.append((name, "name", "duplicate step name; give every step a unique name"))
        seen.add(name)
        params, deps = st.get("params", {}), st.get("depends_on", [])
        if not isinstance(params, dict):
            problems.append((name, "params", "must be a table, e.g. params = { epochs = 5 }"))
            params = {}
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            problems.append((name, "depends_on", "must be a list of step names"))
            deps = []
        if not isinstance(typ, str):
            problems.append((name, "type", "every step needs a 'type' (a built-in step type or a registered "
                                           "@pipeline_process function)"))
            continue
        steps.append(StepConfig(name, typ, dict(params), list(deps), str(st.get("description", ""))))
    names = {s.name for s in steps}
    for s in steps:
        try:
            proc = get_process(s.type)
        except KeyError as e:
            problems.append((s.name, "type", str(e).strip("'\"")))
            proc = None
        for d in s.depends_on:
            if d not in names:
                problems.append((s.name, "depends_on", f"no step named '{d}'"))
        for key, ref_step, out_key in refs_in(s.params):
            if ref_step in RESERVED:
                if out_key is not None and ref_step == "out":
                    problems.append((s.name, f"params.{key}", "${out} takes no key"))
                continue
            if ref_step == s.name:
                problems.append((s.name, f"params.{key}", "a step cannot refer to its own output"))
            elif ref_step not in names:
                problems.append((s.name, f"params.{key}", f"reference to unknown step '{ref_step}' "
                                                          f"(steps: {', '.join(sorted(names))})"))
            elif out_key is not None:
                outs = REGISTRY[t].outputs if (t := next(x.type for x in steps if x.name == ref_step)) in REGISTRY \
                    else None
                if outs is not None and out_key.split(".")[0] not in outs:
                    problems.append((s.name, f"params.{key}", f"step '{ref_step}' has no output '{out_key}' "
                                                              f"(its outputs: {', '.join(outs)})"))
        if proc is not None:
            problems += [(st_, f"params.{k}", m) for st_, k, m in proc.validate(s.params, s.name, is_ref, base_dir)]
    order: list[str] = []
    if not problems:
        order, cyc = _order(steps)
        if cyc:
            problems.append((cyc[0], "depends_on", "the steps form a cycle: " + " -> ".join(cyc)))
    if problems:
        raise PipelineConfigError(problems, source)
    return PipelineConfig(str(data.get("name", default_name)), steps, order, data.get("out"), int(data.get("seed", 0)),
                          data.get("device"), data.get("store"), str(data.get("description", "")), imports, base_dir,
                          source, data)


def _order(steps: list[StepConfig]) -> tuple[list[str], list[str]]:
    """Run order (file order among ready steps) or, if there is one, a cycle as a name list."""
    needs = {s.name: s.needs() for s in steps}
    done: list[str] = []
    left = [s.name for s in steps]
    while left:
        ready = [n for n in left if all(d in done for d in needs[n])]
        if not ready:
            return done, _find_cycle(needs, left)
        done.append(ready[0])
        left.remove(ready[0])
    return done, []


def _find_cycle(needs: dict[str, list[str]], left: list[str]) -> list[str]:
    path: list[str] = []
    n = left[0]
    while n not in path:
        path.append(n)
        n = next(d for d in needs[n] if d in left)
    return path[path.index(n):] + [n]


def import_modules(imports: list, base_dir: Path) -> list[tuple[str | None, str | None, str]]:
    """Import each entry (a .py path relative to the pipeline file, or a dotted module name) so
    its @pipeline_process functions register."""
    problems = []
    for i, entry in enumerate(imports):
        if not isinstance(entry, str):
            problems.append((None, f"imports[{i}]", "must be a file path or module name string"))
            continue
        try:
            if entry.endswith(".py") or "/" in entry or "\\" in entry:
                path = (base_dir / entry).resolve()
                if not path.is_file():
                    problems.append((None, f"imports[{i}]", f"file '{path}' does not exist"))
                    continue
                mod_name = f"tinyuop_pipeline_{path.stem}_{abs(hash(str(path))) % 10**8}"
                if mod_name not in sys.modules:
                    spec = importlib.util.spec_from_file_location(mod_name, path)
                    mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
                    sys.modules[mod_name] = mod
                    if str(path.parent) not in sys.path:  # so the module can import its neighbours
                        sys.path.insert(0, str(path.parent))
                    try:
                        spec.loader.exec_module(mod)  # type: ignore[union-attr]
                    except BaseException:
                        sys.modules.pop(mod_name, None)
                        raise
            else:
                importlib.import_module(entry)
        except Exception as e:
            problems.append((None, f"imports[{i}]", f"importing '{entry}' failed: {type(e).__name__}: {e}"))
    return problems
