"""`apeiro completion bash|zsh|tcsh`: a shell completion script generated from the argparse tree.

shtab writes a static script, so completing needs no Python at TAB time and no runtime hook in the
CLI (argcomplete would re-run `apeiro` on every TAB). Install once, e.g.
`apeiro completion bash > ~/.local/share/bash-completion/completions/apeiro`.
"""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh", "tcsh")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (bash, zsh or tcsh)")
    p.add_argument("shell", choices=SHELLS, help="the shell to complete for")
    p.set_defaults(func=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    import shtab

    from workers.cli import build_parser

    print(shtab.complete(build_parser(), shell=args.shell))
    return 0
