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


def _reproduce(args) -> None:
    from .baselines.reproduce import reproduce

    reports = reproduce(args.result, out=args.out, profiles=args.profiles, seed=args.seed, backend=args.backend,
                        address=args.address, resume=args.resume)
    for report in reports:
        print(f"wrote {', '.join(str(path) for path in report.files)}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="mechzoo", description="Allocation mechanisms without money as games.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="end-to-end demonstration on the default 2x2 game")
    demo.add_argument("--out", default="results/demo", help="output folder (default: results/demo)")
    demo.add_argument("--profiles", type=int, default=200, help="type profiles drawn (default: 200)")
    demo.add_argument("--horizon", type=int, default=10, help="rounds T (default: 10)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo)
    rep = sub.add_parser("reproduce", help="reproduce a published table or figure beside the paper's numbers "
                         "(docs/reproductions.md)")
    rep.add_argument("result", choices=["sama-table1", "sama-table2", "sama-figure2", "sama-figure3", "rpf-figure1",
                                        "rpf-table1", "all"])
    rep.add_argument("--out", default=None, help="output folder (default: results/<result>)")
    rep.add_argument("--profiles", type=int, default=None, help="type profiles (default: the result's own)")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--backend", choices=["serial", "ray"], default="serial", help="sweep backend (default: serial)")
    rep.add_argument("--address", default=None, help="Ray cluster address (backend ray; default: a local one)")
    rep.add_argument("--resume", action="store_true", help="skip the configurations already in the checkpoint")
    rep.set_defaults(func=_reproduce)
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
