"""The ``mechzoo`` command."""
from __future__ import annotations

import argparse
import sys


def _demo(args) -> None:
    from .baselines.demo import format_table, run_demo

    rows = run_demo(args.out, profiles=args.profiles, horizon=args.horizon, seed=args.seed)
    print(format_table(rows))
    print(f"\nexploitability oracle: {rows[0]['oracle']}")
    print(f"wrote {args.out}/summary.csv, summary.json and summary.png")


def _list(args) -> None:
    from .mechanisms.registry import make_one_shot, one_shot_names

    print("one-shot mechanisms (use with SAMA(f) or Independent(f)):")
    for name in one_shot_names():
        print(f"  {name:<14} {make_one_shot(name).description}")
    print("sequential meta-mechanisms: sama, independent")
    print("oracles: grid, random, gradient")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mechzoo", description="Allocation mechanisms without money as games.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="end-to-end demonstration on the default 2x2 game")
    demo.add_argument("--out", default="results/demo", help="output folder (default: results/demo)")
    demo.add_argument("--profiles", type=int, default=200, help="type profiles drawn (default: 200)")
    demo.add_argument("--horizon", type=int, default=10, help="rounds T (default: 10)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    lst = sub.add_parser("list", help="list mechanisms and oracles")
    lst.set_defaults(func=_list)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except ValueError as err:
        print(f"mechzoo: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
