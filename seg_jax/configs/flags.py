"""Command-line parsing for the absl CLIs (train, evaluate, ship, report): a mistake in a flag, a config file, a
``--config.<field>=`` override or a ``:variant`` ends in one line naming it (with absl's "did you mean" hint when
it has one) and exit code 2, instead of a traceback or absl's generic usage text."""
from __future__ import annotations

import re
import sys
from typing import Callable, Sequence


def one_line(message: str) -> str:
    """The useful line of an absl / ml_collections error: the exception line of an embedded traceback, the
    "Did you mean" hint kept, quotes and class prefixes dropped."""
    lines = [line.strip() for line in str(message).replace("\\n", "\n").splitlines() if line.strip()]
    if not lines:
        return "bad command line"
    hint = next((line for line in lines if line.startswith("Did you mean")), "")
    if any(line.startswith("Traceback") for line in lines):
        text = lines[-1]
        if text.startswith("Did you mean") and len(lines) > 1:
            text = lines[-2]
    else:
        text = lines[0]
    text = re.sub(r"^[A-Za-z_.]*(Error|Exception): ", "", text).strip()
    field = re.fullmatch(r"\\?'\\?'?([\w.]+)\\?'\\?'?", text.strip('"'))
    if field:                        # ml_collections' AttributeError for an override of a field that does not exist
        text = f"the config has no field {field.group(1)!r}"
    required = re.fullmatch(r"flag --([\w.]+)=None: Flag --[\w.]+ must have a value other than None\.", text)
    if required:
        text = f"--{required.group(1)} is required"
    if "earlier failure to load" in text or text.startswith("Failed loading config file"):
        errno = next((line for line in lines if "[Errno" in line), "")
        text = f"cannot load the config file: {errno or lines[-1]}"
    if hint:
        hint = hint.rstrip("'").rstrip("?")
        text = f"{text} ({hint}?)"
    return text


CONFIG_HELP = """config files and overrides:
  --config configs/<model>.py[:variant]   model: mobilenet | convlstm | unet
      variants: tiny (seconds, synthetic data), cpu, cpu-short, cpu-long (hours in the background), gpu,
      public-gpu, public-pod (the public data at scale: one GPU, several hosts)
  data: nothing set = the public datasets in $TFDS_DATA_DIR or ~/tensorflow_datasets (python -m
      seg_jax.data.prepare davis17|coco|youtube_vis|kaggle); --config.data.root=<dir> = a folder source
  --config.<field>=<value>                override any field, e.g. --config.batch_size=16
      --config.data.root=../shared/data --config.data.image_size=160,288 --config.loss=bce_dice
  Fields and defaults: seg_jax/configs/default.py. A config file is Python and runs as code: only pass
  configs you trust."""

HELP_FLAGS = ("-h", "--help", "-help", "--helpshort", "--helpfull", "-?")


def print_help(prog: str, doc: str, config_flag: str | None) -> None:
    from absl import flags
    print(f"usage: python -m {prog} [flags]\n\n{doc.strip()}\n\nflags:")
    print(flags.FLAGS.main_module_help() or flags.FLAGS.get_help())
    if config_flag:
        print("\n" + CONFIG_HELP)


def parser_for(prog: str, *, config_flag: str | None = "config", doc: str = "") -> Callable[[Sequence[str]], list[str]]:
    """An ``app.run(..., flags_parser=...)`` that parses ``argv`` and loads the config file eagerly, so every
    mistake surfaces here as one ``<prog>: error: ...`` line (exit code 2); ``--help`` prints ``doc``, the
    flags and (with a config flag) how configs, variants and overrides work, and exits 0."""
    def parse(argv: Sequence[str]) -> list[str]:
        from absl import flags
        if any(a in HELP_FLAGS for a in list(argv)[1:]):
            print_help(prog, doc, config_flag if config_flag and config_flag in flags.FLAGS else None)
            sys.exit(0)
        try:
            rest = flags.FLAGS(list(argv))
            if config_flag and config_flag in flags.FLAGS:
                config = getattr(flags.FLAGS, config_flag)
                if type(config).__name__ == "_ErrorConfig":   # ml_collections defers a failed load to first use
                    config.foo
        except SystemExit:
            raise
        except Exception as e:  # noqa: BLE001 - absl, ml_collections and the config file raise anything
            text = one_line(str(e))
            if "--helpfull" in text or not text:
                text = f"{type(e).__name__}: {e}"
            missing = re.fullmatch(r"the config has no field '([\w.]+)'", text)
            override = missing and next((a.split("=")[0] for a in argv if a.startswith(f"--{config_flag}.")
                                         and f".{missing.group(1)}" in a.split("=")[0]), None)
            if override:
                text = f"{override}: {text} (its fields and defaults: seg_jax/configs/default.py)"
            print(f"{prog}: error: {text}; see {prog} --helpshort", file=sys.stderr)
            sys.exit(2)
        return rest
    return parse
