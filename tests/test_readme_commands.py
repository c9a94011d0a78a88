"""Every command in the README's code blocks, run cheaply, so the README cannot drift from the tools: each
``python -m`` command is run with its real flag parser on its real arguments and stopped right after parsing (a
renamed flag, a missing module or a dependency missing at import fails); ``pip install`` extras must exist;
launch scripts must parse; the first command (the sample blurred into a file) runs for real on a few frames;
the Python block runs on a small frame."""
import argparse
import re
import runpy
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from absl import app as absl_app
from absl import flags as absl_flags

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def shell_commands() -> list[list[str]]:
    """The README's bash blocks -> simple commands (continuations joined, comments dropped, ``&&`` split,
    ``VAR=value`` and ``nice -n N`` prefixes dropped, ``$(hostname)`` replaced)."""
    out = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            argv: list[str] = []
            for token in shlex.split(line.replace("$(hostname)", "host"), comments=True) + ["&&"]:
                if token != "&&":
                    argv.append(token)
                    continue
                while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
                    argv = argv[1:]
                if argv[:1] == ["nice"]:
                    argv = argv[3:]
                if argv:
                    out.append(argv)
                argv = []
    return out


COMMANDS = shell_commands()
PYTHON_M = [c for c in COMMANDS if c[:2] == ["python", "-m"] and c[2] != "pytest"]


class Parsed(SystemExit):
    """Raised right after a tool parsed its flags."""


def parse_only(monkeypatch, module: str, args: list[str]) -> None:
    """Run ``python -m module args`` in this process until its flags are parsed: argparse parsers and absl's
    ``app.run`` stop there (``Parsed``); a bad flag exits non-zero as it would for a user."""
    argparse_parse = argparse.ArgumentParser.parse_args

    def parse_args(self, args=None, namespace=None):
        argparse_parse(self, args, namespace)
        raise Parsed(0)

    def run(main, argv=None, flags_parser=absl_app.parse_flags_with_usage):
        flags_parser(list(sys.argv if argv is None else argv))
        raise Parsed(0)

    # flags an earlier test's tool left defined in this process would clash with the ones this tool defines:
    # set them aside for the run and put them back after
    # (absl's own flags stay; a flag defined from inside a function is registered to no module, so look at all)
    absl_own = {flag.name for owner, flag_list in absl_flags.FLAGS.flags_by_module_dict().items()
                if owner.startswith("absl") for flag in flag_list}
    saved = {name: absl_flags.FLAGS[name] for name in list(absl_flags.FLAGS)
             if name not in absl_own and absl_flags.FLAGS[name].name == name}
    for name in saved:
        delattr(absl_flags.FLAGS, name)
    defined = set(absl_flags.FLAGS)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_args)
    monkeypatch.setattr(absl_app, "run", run)
    monkeypatch.setattr(sys, "argv", [module] + args)
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        raise AssertionError(f"python -m {module} did not parse flags")
    except SystemExit as e:
        assert isinstance(e, Parsed) and e.code == 0, f"python -m {module} {' '.join(args)}: exit {e.code}"
    finally:
        for name in set(absl_flags.FLAGS) - defined:       # the next tool defines its own
            delattr(absl_flags.FLAGS, name)
        for name, flag in saved.items():
            absl_flags.FLAGS[name] = flag


def test_the_readme_has_the_commands_this_test_knows():
    kinds = {" ".join(c[:2]) if c[0] in ("python", "pip") else c[0] for c in COMMANDS}
    assert kinds == {"python -m", "pip install", "bash"}, kinds
    assert len(PYTHON_M) >= 15


@pytest.mark.parametrize("argv", PYTHON_M, ids=[" ".join(c[2:5]) for c in PYTHON_M])
def test_readme_command_parses(argv, monkeypatch):
    monkeypatch.chdir(REPO)
    parse_only(monkeypatch, argv[2], argv[3:])


def test_readme_pip_extras_and_scripts_exist():
    section = (REPO / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1].split("\n[")[0]
    extras = set(re.findall(r"^([\w-]+) = \[", section, flags=re.M))
    assert {"dev", "onnx", "plots"} <= extras
    for argv in COMMANDS:
        if argv[:2] == ["pip", "install"]:
            for spec in argv[2:]:
                named = re.findall(r"\[(.*?)\]", spec)
                assert set(",".join(named).split(",")) - {""} <= extras, spec
        elif argv[0] == "bash":
            subprocess.run(["bash", "-n", str(REPO / argv[1])], check=True)
    for name in re.findall(r"seg_jax\[(\w+)\]", README):
        assert name in extras, name
    import xdist  # noqa: F401 - `pytest -n 2` in the test command


def test_readme_first_command_runs_on_a_few_frames(tmp_path):
    first = next(c for c in PYTHON_M if c[2] == "seg_jax.live")
    out = tmp_path / "blur.mp4"
    argv = [sys.executable, "-m", *first[2:]]
    argv[argv.index("--output") + 1] = str(out)
    done = subprocess.run(argv + ["--max-frames", "3", "-q"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 1000


def test_readme_python_block_runs():
    code = blocks("python")[0]
    frame = np.zeros((360, 640, 3), np.uint8)        # the sample's size: the first command compiled for it
    frame[90:, 240:400] = 200
    scope = {"frame_rgb_uint8": frame}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["alpha"].shape == (360, 640) and scope["alpha"].dtype == np.float32
