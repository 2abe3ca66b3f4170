"""``python -m tunnel``: validate and test cloudflared configs, render them, provision Cloudflare.

python -m tunnel validate FILE          one line per problem; exit 1 on errors, 0 on warnings only
python -m tunnel match FILE URL         print the index (from 0) of the rule URL hits
python -m tunnel render SPEC [--remote] print config.yml (or the API JSON) for a spec
python -m tunnel waf-check SPEC         static check of the spec's WAF/rate-limit rules
python -m tunnel plan SPEC              what provision would change (reads and checks only)
python -m tunnel provision SPEC [--dry-run] [--token-file PATH]
python -m tunnel destroy SPEC [--dry-run]   remove the tunnel, its CNAME and its rules

Provisioning reads CLOUDFLARE_API_TOKEN, CLOUDFLARE_ACCOUNT_ID and, when set, the SDK's own
CLOUDFLARE_BASE_URL.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from tunnel.cloudflared import find_cloudflared, validate_with_cloudflared
from tunnel.errors import PlanRefused, TunnelError, ValidationError
from tunnel.match import match_url
from tunnel.model import render_remote, render_yaml
from tunnel.settings import CloudflareSettings
from tunnel.spec import TunnelSpec, load_spec
from tunnel.validate import check_file, errors, load_valid_config
from tunnel.waf import check_rules

EXIT_OK = 0
EXIT_FAILED = 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tunnel", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log each API step")
    commands = parser.add_subparsers(dest="command", required=True)

    validate = commands.add_parser("validate", help="check a cloudflared config.yml")
    validate.add_argument("file", type=Path)
    validate.add_argument(
        "--no-cloudflared", action="store_true", help="do not ask a cloudflared on PATH"
    )

    match = commands.add_parser("match", help="which rule a URL hits (index from 0)")
    match.add_argument("file", type=Path)
    match.add_argument("url")

    render = commands.add_parser("render", help="print config.yml (or API JSON) for a spec")
    render.add_argument("spec", type=Path)
    render.add_argument("--remote", action="store_true", help="the remote-configuration JSON")

    waf = commands.add_parser("waf-check", help="static check of the spec's WAF rules")
    waf.add_argument("spec", type=Path)

    plan = commands.add_parser("plan", help="show what provision would change (reads only)")
    plan.add_argument("spec", type=Path)
    plan.set_defaults(dry_run=True, token_file=None)

    provision_ = commands.add_parser("provision", help="create or update tunnel, DNS and WAF")
    provision_.add_argument("spec", type=Path)
    provision_.add_argument("--dry-run", action="store_true", help="read only; print the plan")
    provision_.add_argument(
        "--token-file", type=Path, default=None, help="write the tunnel token here (mode 0600)"
    )

    destroy = commands.add_parser("destroy", help="remove the tunnel, its CNAME and its rules")
    destroy.add_argument("spec", type=Path)
    destroy.add_argument("--dry-run", action="store_true", help="read only; print the plan")
    return parser


def _validate(args: argparse.Namespace) -> int:
    problems = check_file(args.file)
    refused = errors(problems)
    for problem in problems:
        print(f"warning: {problem}" if problem.warning else problem)
    status = EXIT_FAILED if refused else EXIT_OK
    if not refused:
        warned = len(problems)
        print(f"{args.file}: valid" + (f" ({warned} warning(s))" if warned else ""))
    binary = None if args.no_cloudflared else find_cloudflared()
    if binary is not None:
        verdict = validate_with_cloudflared(args.file, binary=binary)
        print(f"cloudflared: {'valid' if verdict.ok else 'invalid'}: {verdict.message}")
        if not verdict.ok:
            status = EXIT_FAILED
        if verdict.ok == bool(refused):
            print("note: this validator and cloudflared disagree; cloudflared's word is final")
    return status


def _match(args: argparse.Namespace) -> int:
    config = load_valid_config(args.file)
    print(match_url(config, args.url))
    return EXIT_OK


def _render(args: argparse.Namespace) -> int:
    config = load_spec(args.spec).ingress_config()
    if args.remote:
        print(json.dumps(render_remote(config), indent=2))
    else:
        print(render_yaml(config), end="")
    return EXIT_OK


def _waf_check(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    findings = check_rules(spec.rules, ref_prefix=spec.ref_prefix)
    for finding in findings:
        print(f"{'ok  ' if finding.ok else 'FAIL'} {finding.id}: {finding.message}")
    return EXIT_OK if all(f.ok for f in findings) else EXIT_FAILED


def _checked_spec(path: Path) -> TunnelSpec | None:
    """The spec, or None after printing why its rules are wrong (no API call is made then)."""
    spec = load_spec(path)
    failed = [f for f in check_rules(spec.rules, ref_prefix=spec.ref_prefix) if not f.ok]
    for finding in failed:
        print(f"{path}: {finding.id}: {finding.message}")
    return None if failed else spec


def _provision(args: argparse.Namespace) -> int:
    # The SDK takes a moment to import; only the commands that talk to Cloudflare pay for it.
    from tunnel.provision import provision

    spec = _checked_spec(args.spec)
    if spec is None:
        return EXIT_FAILED
    settings = CloudflareSettings.from_env()
    report = provision(spec, settings, dry_run=args.dry_run, token_file=args.token_file)
    for line in report.lines():
        print(line)
    return EXIT_OK


def _destroy(args: argparse.Namespace) -> int:
    from tunnel.destroy import destroy

    spec = load_spec(args.spec)
    report = destroy(spec, CloudflareSettings.from_env(), dry_run=args.dry_run)
    for line in report.lines():
        print(line)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    handlers = {
        "validate": _validate,
        "match": _match,
        "render": _render,
        "waf-check": _waf_check,
        "plan": _provision,
        "provision": _provision,
        "destroy": _destroy,
    }
    try:
        return handlers[args.command](args)
    except ValidationError as exc:
        for problem in exc.problems:
            print(problem)
        return EXIT_FAILED
    except PlanRefused as exc:
        for refusal in exc.refusals:
            print(f"error: {refusal}")
        print("nothing was changed")
        return EXIT_FAILED
    except TunnelError as exc:
        print(f"error: {exc}")
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
