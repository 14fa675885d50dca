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

import orjson

from model.cli import Parser, positive_int, run
from model.plausibility import RISK_FLOOR


def parse(argv: list[str] | None):
    p = Parser(prog="python -m model.priors", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)
    r = sub.add_parser("report", help="target vs effective marginals and mask mass")
    r.add_argument("--profile", default="jp")
    r.add_argument("--domain")
    r.add_argument("--out", help="directory for the .md, .json and .png (default: markdown on stdout)")
    j = sub.add_parser("joint", help="exact joint / conditional table of two attributes")
    j.add_argument("--profile", default="jp")
    j.add_argument("--domain")
    j.add_argument("--target", action="store_true", help="the unmasked (target) model instead of the effective")
    j.add_argument("--json", action="store_true")
    j.add_argument("a")
    j.add_argument("b")
    c = sub.add_parser("calibrate", help="match post-mask marginals to the targets")
    c.add_argument("--profile", default="jp")
    c.add_argument("--out", required=True, help="the calibrated profile JSON to write")
    c.add_argument("--attributes", help="comma-separated attributes to calibrate (default: all)")
    le = sub.add_parser("learn", help="learn implausibility from validation records, fold it into the profile")
    le.add_argument("--records", required=True)
    le.add_argument("--profile", default="jp")
    le.add_argument("--out", required=True, help="the learned profile JSON to write")
    le.add_argument("--pairs", type=int, default=6, help="attribute pairs to screen in (default 6)")
    le.add_argument("--steps", type=positive_int, default=1000, help="SVI steps (default 1000)")
    le.add_argument("--min-effect", type=float, default=0.1,
                    help="fold in cells rejecting at least this often with 95%% posterior probability")
    le.add_argument("--risk-floor", type=float, default=RISK_FLOOR,
                    help="smallest 95%% hazard bound written into the profile's plausibility section "
                    f"(default {RISK_FLOOR}; see model/plausibility.py risk_section)")
    le.add_argument("--seed", type=int, default=0)
    le.add_argument("--report", help="also write the top combinations as JSON here")
    s = sub.add_parser("sensitivity", help="entropy and distinct personas as one prior is tempered")
    s.add_argument("--profile", default="jp")
    s.add_argument("--domain")
    s.add_argument("--attribute", required=True)
    s.add_argument("--n", type=positive_int, default=3500, help="sample size for E[distinct personas]")
    s.add_argument("--steps", type=positive_int, default=11)
    s.add_argument("--out", help="directory for the .md, .json and .png (default: markdown on stdout)")
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


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from model.priors_io import load, output_dir, source_ref, write_json, write_png, write_text

    if args.command == "report":
        from model.priors_report import figure, markdown, report
        data, profile = load(args.profile, args.domain)
        out = output_dir(args.out)
        rep = report(data, profile)
        md = markdown(rep)
        if out is None:
            sys.stdout.write(md)
            return 0
        stem = out / f"priors_{_stem(profile)}"
        write_text(f"{stem}.md", md)
        write_json(f"{stem}.json", rep)
        write_png(f"{stem}.png", figure(rep))
        print(f"wrote {stem}.md, .json, .png")
    elif args.command == "joint":
        from model.priors_report import joint_markdown, joint_table
        _, profile = load(args.profile, args.domain)
        j = joint_table(profile, args.a, args.b, "prior" if args.target else "probs")
        sys.stdout.write(orjson.dumps(j).decode() + "\n" if args.json else joint_markdown(j))
    elif args.command == "calibrate":
        from model.calibrate import GOAL, calibrate_profile, calibrated_file
        from model.profile import compile_profile
        data, profile = load(args.profile)
        chosen = [a.strip() for a in args.attributes.split(",") if a.strip()] if args.attributes else None
        _, fits, goal = calibrate_profile(data, chosen)
        chosen = chosen or list(profile.order)
        new = calibrated_file(data, fits, goal, chosen, source_ref(args.profile))
        compile_profile(new)  # what we write must load
        write_json(args.out, new)
        print("| attribute | TV before | TV after | |")
        print("|---|---|---|---|")
        for name in chosen:
            f = fits[name]
            note = "infeasible: " + f.bound if f.tv_after > GOAL else ("ok" if not f.bound else "ok; " + f.bound)
            print(f"| {name} | {f.tv_before:.6f} | {f.tv_after:.6f} | {note} |")
    elif args.command == "learn":
        from model.plausibility import fit, fold, read_records, top_combinations
        from model.profile import compile_profile
        data, profile = load(args.profile)
        codes, y = read_records(args.records, profile)
        post = fit(profile, codes, y, pairs=args.pairs, steps=args.steps, seed=args.seed)
        top = top_combinations(profile, post)
        new, used = fold(data, profile, post, args.min_effect, source_ref(args.profile), str(args.records),
                         args.risk_floor)
        compile_profile(new)
        write_json(args.out, new)
        if args.report:
            write_json(args.report, {"records": len(y), "implausible": int(y.sum()), "factors": used, "top": top})
        print(f"{len(y)} records, {int(y.sum())} implausible ({y.mean():.1%}); factors folded in: "
              + (", ".join("x".join(u["attributes"]) + f" ({u['cells']} cells)" for u in used) or "none"))
        print("| combination | P(implausible) | 90% CI | records | implausible |")
        print("|---|---|---|---|---|")
        for r in top:
            combo = ", ".join(f"{k}={v}" for k, v in r["combination"].items())
            print(f"| {combo} | {r['p_implausible']:.3f} | [{r['ci90'][0]:.3f}, {r['ci90'][1]:.3f}] | "
                  f"{r['records']} | {r['implausible_records']} |")
    elif args.command == "sensitivity":
        from model import sensitivity as sens
        _, profile = load(args.profile, args.domain)
        profile.attribute(args.attribute)
        out = output_dir(args.out)
        rows = sens.sweep(profile, args.attribute, args.n, args.steps)
        md = sens.markdown(profile, args.attribute, args.n, rows)
        if out is None:
            sys.stdout.write(md)
            return 0
        stem = out / f"sensitivity_{_stem(profile, '_' + args.attribute)}"
        write_text(f"{stem}.md", md)
        write_json(f"{stem}.json", {"profile": profile.name, "attribute": args.attribute, "n": args.n, "rows": rows})
        write_png(f"{stem}.png", sens.figure(profile, args.attribute, args.n, rows))
        print(f"wrote {stem}.md, .json, .png")
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
