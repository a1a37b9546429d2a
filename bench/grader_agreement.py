"""How often a grader agrees with the hand-graded table (tests/unit/grading_cases.py).

Baseline: the grader before targets existed, read from git (``--before``, default ``c9b453f``:
"the last number" for numeric answers, the reference's words for word answers, applied to the
text the old ``extract_answer`` took from each output). Candidate:
``steps.core.evaluate.grading.grader.grade`` with each case's target. Prints both agreement
counts, the disagreements by kind, and (with ``--list``) every case the baseline gets wrong.

    .venv/bin/python bench/grader_agreement.py
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit"))

from grading_cases import CASES  # noqa: E402

from steps.core.data.examples import parse_target  # noqa: E402
from steps.core.evaluate.grading.grader import grade  # noqa: E402


def _module_at(revision: str, path: str, name: str) -> types.ModuleType:
    """A module's source at a git revision, loaded under ``name``."""
    source = subprocess.run(
        ["git", "show", f"{revision}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    module = types.ModuleType(name)
    sys.modules[name] = module  # dataclasses and pydantic look the module up
    exec(compile(source, f"{revision}:{path}", "exec"), module.__dict__)  # noqa: S102
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="c9b453f", help="git revision of the old grader")
    parser.add_argument("--list", action="store_true", help="print the baseline's mistakes")
    args = parser.parse_args(argv)
    old = _module_at(args.before, "steps/core/answers.py", "old_answers")
    old_examples = _module_at(args.before, "steps/core/examples.py", "old_examples")
    counts = {"baseline": [0, 0, 0], "candidate": [0, 0, 0]}  # agree, missed right, passed wrong
    for family, target, reference, output, right in CASES:
        said = {
            "baseline": old.is_correct(old_examples.extract_answer(output), reference, family),
            "candidate": grade(output, parse_target(target), reference).correct,
        }
        for side, verdict in said.items():
            counts[side][0 if verdict == right else 1 if right else 2] += 1
        if args.list and said["baseline"] != right:
            print(
                f"  baseline wrong ({'right' if right else 'wrong'} answer): {family}: {output!r}"
            )
    print(f"table: {len(CASES)} hand-graded cases (tests/unit/grading_cases.py)")
    for side, label in (("baseline", f"grader at {args.before}"), ("candidate", "this grader")):
        agree, missed, passed = counts[side]
        print(
            f"{side:9}  {label:22} agrees on {agree:3} / {len(CASES)}; disagrees on "
            f"{missed + passed} ({missed} right answers marked wrong, {passed} wrong marked right)"
        )
    base, cand = counts["baseline"][0], counts["candidate"][0]
    print(f"ratio      candidate / baseline agreement: {cand / base:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
