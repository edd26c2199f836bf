"""The command-line surface stays what users know: every command's flags, defaults, types and
help panels, the rlt-data options of the TRL-parsed commands, and the YAML keys of ``--config``.

Issue #19 (the joints refactor) must change none of them: "every flag, YAML key and default of
every command is the same as before (a test compares the generated ``--help`` option sets and
defaults before and after, from a snapshot taken first)". The snapshot
``tests/snapshots/cli_surface.json`` was generated from commit bb851b1, before the refactor.

The surface is regenerated in a fresh interpreter (``python tests/test_cli_surface.py`` prints it):
- ``commands``: the click tree of ``rlt_data.cli.app`` (``typer.main.get_command``). Per option:
  its flag names, click's default, the default its help text shows (``(default: X)``, which is
  where the generated options of ``generate``/``score``/... keep the dataclass default, their click
  default being None), the type, ``is_flag``, ``required``, ``multiple`` and the rich help panel.
  Nothing is rendered, so the terminal width plays no part.
- ``trl_options``: ``train``, ``train-teacher sft`` and ``train-teacher grpo`` are parsed by TRL's
  ``TrlParser`` from dataclasses. ``trl`` is replaced by a stand-in package whose parser records
  the dataclasses it is given (no torch, no TRL import: fast), and the command is invoked with
  ``--help``. Only the dataclasses defined in ``rlt_data`` are recorded (TRL's own configs change
  with TRL versions): each field as ``--name`` with its default.
- ``yaml_keys``: for each command with a ``--config`` option, the option names that a YAML file
  may hold. Found through the command itself: a YAML file with every option name plus one unknown
  key (all null) is passed, and the keys the one-line error calls unknown are taken out.

On a difference the test prints the options added, removed and changed. If the change is meant
(it is a user-visible change: say so in CHANGELOG.md), rewrite the snapshot with
``RLT_UPDATE_SNAPSHOT=1 pytest tests/test_cli_surface.py``.
"""

from __future__ import annotations

import dataclasses
import importlib.abc
import importlib.machinery
import json
import os
import re
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "cli_surface.json"
PROGRAM = "rlt-data"
# commands whose arguments go to TRL's parser, and the sub-commands (phases) each one takes
TRL_COMMANDS = {"train": ("",), "train-teacher": ("sft", "grpo")}
PROBE_KEY = "rlt_surface_probe_key"
CLICK_TYPE_NAMES = {"text": "str", "integer": "int", "float": "float", "boolean": "bool"}


# -- generation (runs in a fresh interpreter: see _generate) ------------------------------------
def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return repr(value)


def type_name(param: Any) -> str:
    """The option's value type, the same across typer versions (typer >= 0.25 has no click ParamType)."""
    kind = getattr(param, "type", None)
    if kind is not None and getattr(kind, "name", None):
        return CLICK_TYPE_NAMES.get(kind.name, kind.name)
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is None:
        return "unknown"
    if isinstance(annotation, type) and not isinstance(annotation, types.GenericAlias):
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def shown_default(help_text: str | None) -> str | None:
    match = re.search(r"\(default: ([^()]*)\)\s*$", help_text or "")
    return match.group(1) if match else None


def describe_option(param: Any) -> dict[str, Any]:
    return {
        "names": list(param.opts) + list(param.secondary_opts),
        "default": jsonable(param.default),
        "shown_default": shown_default(getattr(param, "help", None)),
        "type": type_name(param),
        "is_flag": bool(getattr(param, "is_flag", False)),
        "required": bool(param.required),
        "multiple": bool(getattr(param, "multiple", False)),
        "panel": getattr(param, "rich_help_panel", None),
    }


def describe_argument(param: Any) -> dict[str, Any]:
    return {"name": param.name, "type": type_name(param), "required": bool(param.required), "nargs": param.nargs}


def walk(command: Any, path: str, out: dict[str, Any]) -> None:
    options = {}
    for param in command.params:
        if param.param_type_name == "option":
            options[max(param.opts, key=len)] = describe_option(param)
    out[path] = {
        "arguments": [describe_argument(p) for p in command.params if p.param_type_name == "argument"],
        "options": options,
        "forwards_arguments": bool((command.context_settings or {}).get("ignore_unknown_options")),
        "subcommands": sorted(getattr(command, "commands", {}) or {}),
    }
    for name, sub in sorted((getattr(command, "commands", {}) or {}).items()):
        walk(sub, f"{path} {name}", out)


class _Recorded(SystemExit):
    pass


class _FakeTrl(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """``trl`` and ``trl.*`` as stand-ins: any name is a placeholder class, and a ``*Parser`` records
    the dataclasses it is built with and stops the command (as ``--help`` would)."""

    def __init__(self) -> None:
        self.parsed: list[tuple] = []

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name == "trl" or name.startswith("trl."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        finder = self

        class Module(types.ModuleType):
            def __getattr__(self, attr: str) -> Any:
                if attr.startswith("__"):
                    raise AttributeError(attr)
                if attr.endswith("Parser"):
                    def record(parser: Any, dataclass_types: Any = (), *args: Any, **kwargs: Any) -> None:
                        types_ = tuple(dataclass_types) if isinstance(dataclass_types, (list, tuple)) else (dataclass_types,)
                        finder.parsed.append(types_)
                        raise _Recorded(0)

                    value: Any = type(attr, (), {"__init__": record, "__module__": self.__name__})
                else:
                    value = type(attr, (), {"__module__": self.__name__, "__init__": lambda s, *a, **k: None})
                setattr(self, attr, value)
                return value

        module = Module(spec.name)
        module.__path__ = []  # a package: trl.scripts.utils and the like import too
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def trl_options(runner: Any, app: Any, fake: _FakeTrl, argv: list[str]) -> dict[str, Any]:
    """The rlt-data dataclass options that TRL's parser is given for ``argv``."""
    fake.parsed.clear()
    result = runner.invoke(app, [*argv, "--help"])
    if len(fake.parsed) != 1:
        raise RuntimeError(f"`{PROGRAM} {' '.join(argv)} --help` built {len(fake.parsed)} TRL parsers, not one "
                           f"(exit {result.exit_code}): {result.output[-2000:]!r} {result.exception!r}")
    options = {}
    for cls in fake.parsed[0]:
        if isinstance(cls, type) and cls.__module__.split(".")[0] == "rlt_data" and dataclasses.is_dataclass(cls):
            for f in dataclasses.fields(cls):
                if f.init:
                    required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
                    options[f"--{f.name}"] = {"default": jsonable(field_default(f)), "required": required}
    return options


def yaml_keys(runner: Any, app: Any, path: str, options: dict[str, Any], folder: Path) -> list[str]:
    """The option names ``PATH --config FILE.yaml`` accepts as keys."""
    command = path.split()[1:]
    candidates = {o["names"][0].lstrip("-").replace("-", "_") for o in options.values()} - {"config"}
    config = folder / f"{'_'.join(command)}.yaml"
    config.write_text("".join(f"{k}: null\n" for k in sorted(candidates | {PROBE_KEY})))
    result = runner.invoke(app, [*command, "--config", str(config)])
    message = (result.output or "").replace(str(config), "")
    said = set(re.findall(r"[A-Za-z_][A-Za-z0-9_-]*", message))
    if PROBE_KEY not in said:
        raise RuntimeError(f"`{path} --config` did not refuse the unknown key {PROBE_KEY} (exit {result.exit_code}): "
                           f"{message[-2000:]!r} {result.exception!r}")
    return sorted(candidates - said)


def surface() -> dict[str, Any]:
    """The whole surface; run it in a fresh interpreter (it replaces ``trl`` in ``sys.modules``)."""
    fake = _FakeTrl()
    for name in [m for m in sys.modules if m == "trl" or m.startswith("trl.")]:
        del sys.modules[name]
    sys.meta_path.insert(0, fake)
    try:
        import typer.main
        from typer.testing import CliRunner

        from rlt_data.cli import app

        commands: dict[str, Any] = {}
        walk(typer.main.get_command(app), PROGRAM, commands)
        runner = CliRunner()
        trl: dict[str, Any] = {}
        for command, phases in TRL_COMMANDS.items():
            for phase in phases:
                argv = [command, phase] if phase else [command]
                trl[" ".join([PROGRAM, *argv])] = trl_options(runner, app, fake, argv)
        yaml: dict[str, Any] = {}
        with tempfile.TemporaryDirectory(prefix="rlt-surface-") as folder:
            for path, entry in commands.items():
                if "--config" in entry["options"] and not entry["forwards_arguments"]:
                    yaml[path] = yaml_keys(runner, app, path, entry["options"], Path(folder))
    finally:
        sys.meta_path.remove(fake)
    return {"commands": commands, "trl_options": trl, "yaml_keys": yaml}


def _generate() -> tuple[dict[str, Any], dict[str, Any]]:
    """(surface, facts about the interpreter that made it) from a fresh interpreter on this checkout."""
    env = {**os.environ, "COLUMNS": "80", "TERMINAL_WIDTH": "80", "NO_COLOR": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"generating the CLI surface failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    out = json.loads(proc.stdout)
    return out["surface"], out["facts"]


# -- comparison -----------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Readable differences: commands, options and arguments added, removed or changed."""
    lines: list[str] = []
    old_c, new_c = old.get("commands", {}), new.get("commands", {})
    for path in sorted(old_c.keys() - new_c.keys()):
        lines.append(f"- removed command: {path}")
    for path in sorted(new_c.keys() - old_c.keys()):
        lines.append(f"+ added command: {path} (options: {', '.join(sorted(new_c[path]['options'])) or 'none'})")
    for path in sorted(old_c.keys() & new_c.keys()):
        before, after = old_c[path], new_c[path]
        for flag in sorted(before["options"].keys() - after["options"].keys()):
            lines.append(f"- removed option: {path} {flag}  (was {_fmt(before['options'][flag])})")
        for flag in sorted(after["options"].keys() - before["options"].keys()):
            lines.append(f"+ added option: {path} {flag}  ({_fmt(after['options'][flag])})")
        for flag in sorted(before["options"].keys() & after["options"].keys()):
            a, b = before["options"][flag], after["options"][flag]
            for key in sorted(a.keys() | b.keys()):
                if a.get(key) != b.get(key):
                    lines.append(f"~ changed option: {path} {flag}: {key} {_fmt(a.get(key))} -> {_fmt(b.get(key))}")
        for key in sorted((before.keys() | after.keys()) - {"options"}):
            if before.get(key) != after.get(key):
                lines.append(f"~ changed command: {path}: {key} {_fmt(before.get(key))} -> {_fmt(after.get(key))}")
    for section, label in (("trl_options", "TRL-parsed option"), ("yaml_keys", "YAML key")):
        a_all, b_all = old.get(section, {}), new.get(section, {})
        for path in sorted(a_all.keys() | b_all.keys()):
            if path not in b_all:
                lines.append(f"- removed {label}s of: {path}")
                continue
            if path not in a_all:
                lines.append(f"+ added {label}s of: {path}: {_fmt(b_all[path])}")
                continue
            a, b = a_all[path], b_all[path]
            if isinstance(a, list):
                a, b = dict.fromkeys(a, True), dict.fromkeys(b, True)
            for name in sorted(a.keys() - b.keys()):
                lines.append(f"- removed {label}: {path} {name}")
            for name in sorted(b.keys() - a.keys()):
                lines.append(f"+ added {label}: {path} {name}  {'' if b[name] is True else _fmt(b[name])}".rstrip())
            for name in sorted(a.keys() & b.keys()):
                if a[name] != b[name]:
                    lines.append(f"~ changed {label}: {path} {name}: {_fmt(a[name])} -> {_fmt(b[name])}")
    for section in sorted((old.keys() | new.keys()) - {"commands", "trl_options", "yaml_keys"}):
        if old.get(section) != new.get(section):
            lines.append(f"~ changed section {section}")
    return lines


def test_cli_surface() -> None:
    current, facts = _generate()
    assert facts["rlt_data"].startswith(str(ROOT)), f"the surface was read from {facts['rlt_data']}, not from {ROOT}"
    assert "vllm" not in facts["imported"], "reading the CLI surface imported vllm"
    if os.environ.get("RLT_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return
    assert SNAPSHOT.is_file(), f"no snapshot at {SNAPSHOT}: run with RLT_UPDATE_SNAPSHOT=1 once"
    snapshot = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    changes = diff(snapshot, current)
    assert not changes, (
        f"the command-line surface differs from {SNAPSHOT.relative_to(ROOT)} ({len(changes)} change(s)):\n"
        + "\n".join(changes)
        + "\nIf every change is meant (users see it: note it in CHANGELOG.md), rewrite the snapshot with "
        "RLT_UPDATE_SNAPSHOT=1 pytest tests/test_cli_surface.py"
    )
    assert current == snapshot  # anything diff() would not name


def test_diff_names_the_changes() -> None:
    option = {"names": ["--a"], "default": None, "shown_default": "1", "type": "int", "is_flag": False,
              "required": False, "multiple": False, "panel": "X"}
    old = {"commands": {"p c": {"arguments": [], "options": {"--a": option, "--b": option}, "forwards_arguments": False,
                                "subcommands": []}},
           "trl_options": {"p t": {"--x": {"default": 1, "required": False}}}, "yaml_keys": {"p c": ["a", "b"]}}
    new = json.loads(json.dumps(old))
    del new["commands"]["p c"]["options"]["--b"]
    new["commands"]["p c"]["options"]["--a"]["shown_default"] = "2"
    new["trl_options"]["p t"]["--y"] = {"default": None, "required": True}
    new["yaml_keys"]["p c"] = ["a"]
    assert diff(old, new) == [
        '- removed option: p c --b  (was {"default": null, "is_flag": false, "multiple": false, "names": ["--a"], '
        '"panel": "X", "required": false, "shown_default": "1", "type": "int"})',
        '~ changed option: p c --a: shown_default "1" -> "2"',
        '+ added TRL-parsed option: p t --y  {"default": null, "required": true}',
        "- removed YAML key: p c b",
    ]
    assert diff(old, old) == []


if __name__ == "__main__":
    if sys.argv[1:] != ["--json"]:
        sys.exit("usage: python tests/test_cli_surface.py --json  (prints the CLI surface of this checkout)")
    data = surface()
    import rlt_data

    facts = {"rlt_data": str(Path(rlt_data.__file__).resolve()), "imported": [m for m in ("vllm", "torch") if m in sys.modules]}
    print(json.dumps({"surface": data, "facts": facts}, indent=1, sort_keys=True))
