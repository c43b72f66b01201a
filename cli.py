"""The ``mechzoo`` command."""
from __future__ import annotations

import argparse
import sys


def _demo(args) -> None:
    from .baselines.demo import format_table, run_demo

    rows = run_demo(args.out, profiles=args.profiles, horizon=args.horizon, seed=args.seed,
                    ppo_timesteps=args.ppo_timesteps)
    print(format_table(rows))
    print(f"\none-shot exploitability oracle: {rows[0]['oracle']}")
    print(f"full exploitability: full_best_response, default ScalingMisreports; PPO (agent_0): trained on the "
          f"profiles with the type profile observed, value misreports only, {args.ppo_timesteps} timesteps")
    print(f"wrote {args.out}/summary.csv, summary.json and summary.png")


def _exploit(args) -> None:
    from .baselines.exploit import exploitability, write_exploit

    setting = {k: v for k, v in vars(args).items() if k not in ("func", "command", "out")}
    estimate, game = exploitability(args.mechanism, args.one_shot, args.oracle, args.mode, args.agents, args.resources,
                                    args.horizon, args.profiles, args.seed, args.timesteps, args.train_on,
                                    args.observe_types, args.fields)
    write_exploit(args.out, estimate, {**setting, "game": game})
    print(f"{args.mode if args.mechanism != 'one-shot' else 'one-shot'} exploitability of "
          f"{args.mechanism}({args.one_shot}), mean over agents: {estimate}")
    print("per agent: " + ", ".join(f"{m:.4g} ± {c:.2g}" for m, c in zip(estimate.per_agent, estimate.per_agent_ci)))
    print(f"wrote {args.out}/exploit.json and exploit.csv")


def _train(args) -> None:
    from .agents.dynamics import hedge_dynamics, ppo_dynamics
    from .baselines.exploit import game_for

    game = game_for(args.mechanism, args.one_shot, args.agents, args.resources, args.horizon)
    if args.algo == "hedge":
        history = hedge_dynamics(game, iterations=args.iterations, profiles=args.profiles, seed=args.seed,
                                 out=args.out, resume=args.resume)
    elif args.algo in ("ppo-best-response", "independent-ppo"):
        learners = ["agent_0"] if args.algo == "ppo-best-response" else None
        history = ppo_dynamics(game, learners, rounds=args.rounds, timesteps_per_round=args.timesteps,
                               eval_profiles=args.profiles, seed=args.seed, out=args.out, resume=args.resume)
    else:
        raise ValueError(f"algo must be ppo-best-response, independent-ppo or hedge, got {args.algo!r}")
    last = history[-1]
    print(f"{args.algo} after {last['timesteps']} (per agent): report distance {last['report_distance']:.4f}, "
          f"NSW {last['nsw']:.4f} (truthful {last['truthful_nsw']:.4f}), "
          f"NashConv {last['nash_conv']:.4g} ± {last['nash_conv_ci']:.2g}")
    print(f"wrote {args.out}/history.csv, history.png and checkpoint.json")


def _list(args) -> None:
    from .mechanisms.registry import make_one_shot, one_shot_names

    print("one-shot mechanisms (use with SAMA(f) or Independent(f)):")
    for name in one_shot_names():
        print(f"  {name:<14} {make_one_shot(name).description}")
    print("sequential meta-mechanisms: sama, independent")
    from .baselines.exploit import ORACLES
    from .envs import ENV_IDS

    print("games (PettingZoo ids): " + ", ".join(ENV_IDS))
    print("best-response oracles (mechzoo exploit --oracle):")
    for name, what in ORACLES.items():
        print(f"  {name:<14} {what}")


# TrainingConfig fields settable from `mechzoo train-mechanism` (unset ones keep the config's defaults).
TRAINING_OPTIONS = (
    ("steps", int, "outer iterations K"),
    ("batch_size", int, "minibatch size s"),
    ("train_size", int, "training samples L"),
    ("hidden", int, "units per hidden layer of the trunk"),
    ("layers", int, "hidden layers of the trunk"),
    ("lr", float, "Adam step on the weights (alpha)"),
    ("lr_half_life", int, "steps over which the weights' step halves (0: constant)"),
    ("dual_lr", float, "dual step (beta)"),
    ("epsilon", float, "exploitability target"),
    ("gamma_init", float, "initial multiplier gamma^0"),
    ("inner_steps", int, "misreport ascent steps per outer step"),
    ("restarts", int, "random misreport candidates per (sample, agent) and step"),
    ("checkpoint_every", int, "steps between checkpoints"),
)


def _train_mechanism(args) -> None:
    import shlex

    import numba
    import torch

    from .agents.mechanism_training import TrainingConfig, train_mechanism

    if args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    torch.set_num_threads(args.threads)  # the networks are small: more threads only add overhead
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))  # the PF kernel's prange
    options = {k: getattr(args, k) for k in ("data", "seed", "regularised", "trunk", "inputs", "share_prior", "welfare", "init_weights",
                                            "inner_start", "inner_gradient",
                                            *(name for name, _, _ in TRAINING_OPTIONS))
               if getattr(args, k) is not None}
    for name in ("contended_only", "demand_patterns", "value_patterns"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name) == "yes"
    config = TrainingConfig(architecture=args.architecture.replace("-", "_"), n_agents=args.agents,
                            n_resources=args.resources, **options)
    out = args.out or f"results/{config.architecture}_{args.agents}x{args.resources}_{args.data}"
    flags = [f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in vars(args).items()
             if k not in ("command", "func", "architecture", "resume") and v is not None]
    command = " ".join(["mechzoo train-mechanism", args.architecture, *flags] + (["--resume"] if args.resume else []))
    train_mechanism(config, out, resume=args.resume, command=command)
    print(f"wrote {out}/{config.architecture}_{args.agents}x{args.resources}.pt, history.csv, "
          "training.png and record.json")


def _combine_mechanisms(args) -> None:
    import shlex

    from .mechanisms.learned import combine_models

    command = " ".join(["mechzoo combine-mechanisms", *map(shlex.quote, args.files), "--out", shlex.quote(args.out)])
    ensemble = combine_models(args.files, args.out, command)
    print(f"wrote {args.out}: {ensemble.architecture} for {ensemble.n_agents}x{ensemble.n_resources}, "
          f"the mean of {len(ensemble.members)} networks")


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
    demo.add_argument("--ppo-timesteps", type=int, default=200_000,
                      help="PPO best response training budget per agent (0 skips it; default: 200000)")
    demo.set_defaults(func=_demo)
    train = sub.add_parser("train-mechanism", help="train RPF-Net, ExS-Net or the softmax network (Algorithm 1); "
                           "unset options take TrainingConfig's defaults (docs/learned_mechanisms.md)")
    train.add_argument("architecture", choices=["rpf-net", "exs-net", "softmax-net"])
    train.add_argument("--agents", type=int, required=True, help="N")
    train.add_argument("--resources", type=int, required=True, help="M")
    train.add_argument("--data", choices=["paper", "perturbed", "adversarial"], default="paper",
                       help="training distribution: (17), (18) or (19) of the RPF-Net paper (default: paper)")
    train.add_argument("--out", default=None, help="output folder (default: results/<arch>_<N>x<M>_<data>)")
    for name, kind, what in TRAINING_OPTIONS:
        train.add_argument("--" + name.replace("_", "-"), type=kind, help=what)
    train.add_argument("--regularised", choices=["all", "contended", "profile"], default=None,
                       help="RPF-Net: resources its linear term acts on (default: contended); 'contended' leaves "
                            "those whose reported demand fits the budget to PF (handed out in full), 'profile' "
                            "acts on every resource of a profile with an over-demanded resource and leaves the "
                            "other profiles to PF")
    train.add_argument("--contended-only", choices=["yes", "no"], default=None,
                       help="train on over-demanded profiles only (the others are PF's and carry no gradient; "
                            "default: yes with --regularised contended or profile)")
    train.add_argument("--demand-patterns", choices=["yes", "no"], default=None,
                       help="add the 3^M - 1 demand patterns (true values, each demand dropped, truthful or claimed "
                            "in full) to each step's restart candidates (default: no)")
    train.add_argument("--value-patterns", choices=["yes", "no"], default=None,
                       help="add the (2^M - 1) x 4 value patterns (true demands, the values of a subset of the "
                            "resources scaled by 0.1, 0.25, 0.5 or 0.75) to each step's restart candidates (default: no)")
    train.add_argument("--inner-start", choices=["warm", "truth"], default=None,
                       help="where each step's misreport search starts: the misreports stored from earlier steps "
                            "('warm', default, RegretNet-style) or the truthful report ('truth'; with --restarts 0 "
                            "a local ascent from the truth, the RPF-Net paper's evaluation protocol)")
    train.add_argument("--inner-gradient", choices=["network", "program"], default=None,
                       help="RPF-Net: what the misreport ascent differentiates, the network and the PF program "
                            "('network', default) or the PF program only, as the paper's closed-form gradients "
                            "('program')")
    train.add_argument("--trunk", choices=["mlp", "set"], default=None,
                       help="network trunk: the paper's feed-forward 'mlp' (default) or 'set', permutation-"
                            "equivariant over the agents (one set of weights per agent)")
    train.add_argument("--inputs", choices=["all", "contended", "pf"], default=None,
                       help="what the network reads: every resource's reports ('all', default), only those of "
                            "over-demanded resources ('contended', RPF-Net with --regularised contended), or every "
                            "report plus PF's allocation at the reports ('pf')")
    train.add_argument("--share-prior", choices=["none", "demand", "head_start"], default=None,
                       help="ExS-Net and the softmax network: add log shares (and ExS-Net's log slack) to the "
                            "logits, so that a zero output gives every agent its demand where it fits and the "
                            "proportional rule where it does not ('demand'), or the head-start rule's allocation "
                            "with t = 0.5 ('head_start'), or not ('none', default)")
    train.add_argument("--welfare", choices=["log", "nsw"], default=None,
                       help="welfare term the designer maximises: 'log' NSW (eq. 5, default) or the mean 'nsw' "
                            "product the tables report, relative to PF's")
    train.add_argument("--init-weights", default=None, metavar="FILE.pt",
                       help="start from these trained weights (e.g. a shipped model) instead of a random "
                            "initialisation; the network (every member of an ensemble, which is then trained "
                            "as a whole) must match the other options")
    train.add_argument("--threads", type=int, default=1, help="threads of torch and of the PF kernel (default: 1)")
    train.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    train.add_argument("--seed", type=int)
    train.set_defaults(func=_train_mechanism)
    comb = sub.add_parser("combine-mechanisms", help="one mechanism from several trained networks of the same "
                          "architecture and size: allocates by their mean linear term (RPF-Net) or mean shares")
    comb.add_argument("files", nargs="+", metavar="FILE.pt", help="weights written by train-mechanism")
    comb.add_argument("--out", required=True, metavar="FILE.pt", help="where to write the ensemble")
    comb.set_defaults(func=_combine_mechanisms)
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
    exp = sub.add_parser("exploit", help="exploitability of a mechanism by a best-response oracle, with a 95%% CI")
    exp.add_argument("--mechanism", default="sama", help="sama, independent or one-shot (default: sama)")
    exp.add_argument("--one-shot", default="pf", help="one-shot rule f (default: pf; see `mechzoo list`)")
    exp.add_argument("--oracle", default="scaling", help="grid, random, gradient (one-shot), scaling (sequential) "
                     "or ppo (default: scaling)")
    exp.add_argument("--mode", default="full", help="full or online (sequential; default: full)")
    exp.add_argument("--agents", type=int, default=2)
    exp.add_argument("--resources", type=int, default=2)
    exp.add_argument("--horizon", type=int, default=10)
    exp.add_argument("--profiles", type=int, default=200)
    exp.add_argument("--seed", type=int, default=0)
    exp.add_argument("--timesteps", type=int, default=50_000, help="ppo: training timesteps per agent")
    exp.add_argument("--train-on", default="profiles", help="ppo: profiles (ex post, default) or distribution")
    exp.add_argument("--observe-types", action=argparse.BooleanOptionalAction, default=True,
                     help="ppo: the learner observes the whole type profile (ex-post best response; default on)")
    exp.add_argument("--fields", default="both", help="ppo: report fields misreported: values, demands or both")
    exp.add_argument("--out", default="results/exploit", help="output folder (default: results/exploit)")
    exp.set_defaults(func=_exploit)
    trn = sub.add_parser("train", help="train strategic agents (PPO best response, independent PPO, Hedge) and "
                         "record reports, welfare and NashConv")
    trn.add_argument("--algo", default="hedge", help="ppo-best-response, independent-ppo or hedge (default: hedge)")
    trn.add_argument("--mechanism", default="sama", help="sama, independent or one-shot (default: sama)")
    trn.add_argument("--one-shot", default="pf")
    trn.add_argument("--agents", type=int, default=2)
    trn.add_argument("--resources", type=int, default=2)
    trn.add_argument("--horizon", type=int, default=10)
    trn.add_argument("--rounds", type=int, default=5, help="PPO: training rounds (default: 5)")
    trn.add_argument("--timesteps", type=int, default=10_000, help="PPO: timesteps per agent per round")
    trn.add_argument("--iterations", type=int, default=100, help="Hedge: updates (default: 100)")
    trn.add_argument("--profiles", type=int, default=64, help="Hedge: profiles per update; PPO: evaluation profiles")
    trn.add_argument("--seed", type=int, default=0)
    trn.add_argument("--out", default="results/train", help="output folder (default: results/train)")
    trn.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.json")
    trn.set_defaults(func=_train)
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
