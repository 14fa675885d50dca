"""`python -m model.priors`: study the attribute priors of a profile, exactly.

  report      --profile P [--domain D] [--out DIR]   target vs effective marginals, TV, mass removed per rule
  joint       --profile P [--domain D] A B [--target] [--json]   exact joint and conditional table
  calibrate   --profile P --out P2 [--attributes a,b]  tilt tables so post-mask marginals match the targets
  learn       --records RUN.jsonl --profile P --out P3  learn P(implausible | attributes), fold it into P, and
              write each persona's risk model (the `plausibility` section) for `llm.generate --trust-below`
  sensitivity --profile P --attribute A [--domain D] [--n N] [--steps S] [--out DIR]
"""
from __future__ import annotations

import sys
from argparse import RawDescriptionHelpFormatter

import orjson

from common.cli import Parser, positive_int, run
from common.files import output_dir, write_json, write_png, write_text
from model.priors import calibrate, learn, sensitivity
from model.priors.joint import joint_markdown, joint_table
from model.priors.learn import RISK_FLOOR
from model.priors.report import figure, markdown, report
from model.profile import compile_profile, load_with_data, source_ref

FIGURE_DPI = 110


PROFILE_HELP = "profile name (jp, us) or path to a profile JSON (default jp)"
DOMAIN_HELP = "scenario domain name (conversation, sns, workplace) or path to a domain JSON (default: none)"
OUT_HELP = "directory for the .md, .json and .png (default: markdown on stdout)"


def parser() -> Parser:
    p = Parser(prog="python -m model.priors", description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser,
                         help="what to do (`python -m model.priors COMMAND --help`: its options)")
    r = sub.add_parser("report", help="target vs effective marginals and mask mass")
    r.add_argument("--profile", default="jp", help=PROFILE_HELP)
    r.add_argument("--domain", help=DOMAIN_HELP)
    r.add_argument("--out", help=OUT_HELP)
    j = sub.add_parser("joint", help="exact joint / conditional table of two attributes")
    j.add_argument("--profile", default="jp", help=PROFILE_HELP)
    j.add_argument("--domain", help=DOMAIN_HELP)
    j.add_argument("--target", action="store_true", help="the unmasked (target) model instead of the effective")
    j.add_argument("--json", action="store_true", help="JSON instead of a markdown table")
    j.add_argument("a", help="the first attribute (the table's rows)")
    j.add_argument("b", help="the second attribute (the table's columns)")
    c = sub.add_parser("calibrate", help="match post-mask marginals to the targets")
    c.add_argument("--profile", default="jp", help=PROFILE_HELP)
    c.add_argument("--out", required=True, help="the calibrated profile JSON to write")
    c.add_argument("--attributes", help="comma-separated attributes to calibrate (default: all)")
    le = sub.add_parser("learn", help="learn implausibility from validation records, fold it into the profile")
    data, fit, out = (le.add_argument_group(t) for t in ("input", "fit", "output"))
    data.add_argument("--records", required=True, help="validation records: JSONL shaped like model.sample's "
                    "records with a `validation` object (an llm.generate results file)")
    data.add_argument("--profile", default="jp", help=PROFILE_HELP)
    out.add_argument("--out", required=True, help="the learned profile JSON to write")
    fit.add_argument("--pairs", type=int, default=6, help="attribute pairs to screen in (default 6)")
    fit.add_argument("--steps", type=positive_int, default=1000, help="SVI steps (default 1000)")
    fit.add_argument("--min-effect", type=float, default=0.1,
                    help="fold in cells rejecting at least this often with 95%% posterior probability")
    fit.add_argument("--risk-floor", type=float, default=RISK_FLOOR,
                    help="smallest 95%% hazard bound written into the profile's plausibility section "
                    f"(default {RISK_FLOOR}; see model/priors/learn.py risk_section)")
    fit.add_argument("--seed", type=int, default=0, help="seed of the SVI fit and its posterior draws (default 0)")
    out.add_argument("--report", help="also write the top combinations as JSON here")
    s = sub.add_parser("sensitivity", help="entropy and distinct personas as one prior is tempered")
    tempered = s.add_argument_group("what to temper")
    tempered.add_argument("--profile", default="jp", help=PROFILE_HELP)
    tempered.add_argument("--domain", help=DOMAIN_HELP)
    tempered.add_argument("--attribute", required=True, help="the attribute whose prior is tempered")
    tempered.add_argument("--n", type=positive_int, default=3500, help="sample size for E[distinct personas]")
    tempered.add_argument("--steps", type=positive_int, default=11, help="tempering steps from uniform to the census "
                   "(default 11)")
    s.add_argument_group("output").add_argument("--out", help=OUT_HELP)
    return p


def parse(argv: list[str] | None):
    p = parser()
    args = p.parse_args(argv)
    if args.command == "learn" and not 0 <= args.min_effect < 1:
        p.error("argument --min-effect: must be in [0, 1)")
    if args.command == "learn" and not args.risk_floor > 0:
        p.error("argument --risk-floor: must be > 0")
    if args.command == "learn" and args.pairs < 0:
        p.error("argument --pairs: must be >= 0")
    return args


def _stem(profile, extra: str = "") -> str:
    return f"{profile.name}{'_' + profile.domain.name if profile.domain else ''}{extra}"


def _emit(out, stem: str, md: str, data: dict, fig) -> None:
    """The markdown on stdout without --out; else `stem`.md, .json and .png (`fig()` draws it) in `out`."""
    if out is None:
        sys.stdout.write(md)
        return
    path = out / stem
    write_text(f"{path}.md", md)
    write_json(f"{path}.json", data)
    write_png(f"{path}.png", fig(), dpi=FIGURE_DPI)
    print(f"wrote {path}.md, .json, .png")


def report_command(args) -> None:
    data, profile = load_with_data(args.profile, args.domain)
    out = output_dir(args.out)
    rep = report(data, profile)
    _emit(out, f"priors_{_stem(profile)}", markdown(rep), rep, lambda: figure(rep))


def joint_command(args) -> None:
    _, profile = load_with_data(args.profile, args.domain)
    j = joint_table(profile, args.a, args.b, "prior" if args.target else "probs")
    sys.stdout.write(orjson.dumps(j).decode() + "\n" if args.json else joint_markdown(j))


def calibrate_command(args) -> None:
    data, profile = load_with_data(args.profile)
    chosen = [a.strip() for a in args.attributes.split(",") if a.strip()] if args.attributes else None
    _, fits, goal = calibrate.calibrate_profile(data, chosen)
    chosen = chosen or list(profile.order)
    new = calibrate.calibrated_file(data, fits, goal, chosen, source_ref(args.profile))
    compile_profile(new)  # what we write must load
    write_json(args.out, new)
    print("\n".join(calibrate.summary(fits, chosen)))


def learn_command(args) -> None:
    data, profile = load_with_data(args.profile)
    codes, y = learn.read_records(args.records, profile)
    post = learn.fit(profile, codes, y, pairs=args.pairs, steps=args.steps, seed=args.seed)
    top = learn.top_combinations(profile, post)
    new, used = learn.fold(data, profile, post, args.min_effect, source_ref(args.profile), str(args.records),
                           args.risk_floor)
    compile_profile(new)
    write_json(args.out, new)
    if args.report:
        write_json(args.report, {"records": len(y), "implausible": int(y.sum()), "factors": used, "top": top})
    print(learn.summary(y, used))
    print("\n".join(learn.top_table(top)))


def sensitivity_command(args) -> None:
    _, profile = load_with_data(args.profile, args.domain)
    profile.attribute(args.attribute)
    out = output_dir(args.out)
    rows = sensitivity.sweep(profile, args.attribute, args.n, args.steps)
    md = sensitivity.markdown(profile, args.attribute, args.n, rows)
    data = {"profile": profile.name, "attribute": args.attribute, "n": args.n, "rows": rows}
    _emit(out, f"sensitivity_{_stem(profile, '_' + args.attribute)}", md, data,
          lambda: sensitivity.figure(profile, args.attribute, args.n, rows))


COMMANDS = {"report": report_command, "joint": joint_command, "calibrate": calibrate_command,
            "learn": learn_command, "sensitivity": sensitivity_command}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    COMMANDS[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
