"""results/ as a reader finds it: few top-level entries, every Markdown link in the docs resolves, every results
path and ``python -m`` module the hand-written pages cite exists, and the tools' default inputs are where the files
are."""
import importlib.util
import re
from pathlib import Path

from seg_jax.evaluation import model_card, report

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
MAX_TOP_LEVEL = 15
# Hand-written pages whose backticked paths into results/ must exist (generated tables quote recorded
# commands; archive/README.md lists the paths as they were).
CITING = [REPO / "README.md", RESULTS / "HISTORY.md",
          *[p for p in sorted(RESULTS.glob("*/README.md")) if p.parent.name != "archive"]]


def docs() -> list[Path]:
    """Every Markdown file of the repository outside results/archive/ (kept as it was written)."""
    return [p for p in REPO.rglob("*.md") if ".git" not in p.parts and "archive" not in p.relative_to(REPO).parts
            and not any(part.startswith(".") or part in ("workdirs", "runs") for part in p.relative_to(REPO).parts)]


def test_results_has_few_top_level_entries():
    entries = sorted(p.name for p in RESULTS.iterdir() if not p.name.startswith("."))
    assert len(entries) <= MAX_TOP_LEVEL, f"results/ has {len(entries)} entries (at most {MAX_TOP_LEVEL}): {entries}"
    for name in ("README.md", "HISTORY.md", report.EVAL, report.BENCH, "archive"):
        assert name in entries


def test_every_relative_markdown_link_resolves():
    broken = []
    for md in docs():
        for target in re.findall(r"\]\(([^)\s]+)\)", md.read_text()):
            path = target.split("#")[0]
            if path and not re.match(r"[a-z]+:", path) and not (md.parent / path).exists():
                broken.append(f"{md.relative_to(REPO)} -> {target}")
    assert not broken, broken


def test_cited_results_paths_exist():
    """`results/...` anywhere in the cited pages, and paths into a results/ entry (`training/x.json`,
    `../ablations/y/`) in the pages inside results/."""
    entries = {p.name for p in RESULTS.iterdir()}
    missing = []
    for md in CITING:
        for span in re.findall(r"`([^`\n]+)`", md.read_text()):
            if re.search(r"[<>*{}$ ]", span):
                continue
            if span.startswith("results/"):
                path = REPO / span
            elif RESULTS in md.parents and re.sub(r"^(\.\./)+", "", span).split("/")[0] in entries:
                path = md.parent / span
            else:
                continue
            if not path.exists():
                missing.append(f"{md.relative_to(REPO)}: {span}")
    assert not missing, missing


def test_cited_commands_name_modules_that_exist():
    """``python -m seg_jax.x`` / ``research.x`` in results/HISTORY.md and the folder READMEs (not the archive)."""
    missing = []
    for md in CITING[1:]:
        for module in re.findall(r"python -m ((?:seg_jax|research)[\w.]*)", md.read_text()):
            if importlib.util.find_spec(module) is None:
                missing.append(f"{md.relative_to(REPO)}: {module}")
    assert not missing, missing


def test_model_cards_default_evaluations_exist():
    for path in [*model_card.DEFAULT_EVAL.values(), model_card.DEFAULT_PEERS]:
        assert (REPO / path).is_file(), path
        assert Path(path).parent.name == report.EVAL
