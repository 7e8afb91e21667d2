"""Shell tokenising: words, segments of ``a && b | c``, ``VAR=x``/``sudo`` prefixes, options."""

from __future__ import annotations

import logging
import os
import re
import shlex

__all__ = ["opt", "segments", "strip_prefix", "tokens"]

logger = logging.getLogger(__name__)


_OPERATORS = frozenset({"&&", "||", ";", "|", "&", "|&", ";;", "(", ")", "\n", ";&", "&;"})
_WRAPPERS = frozenset({"sudo", "env", "time", "nohup", "exec", "command", "nice", "timeout", "doas", "xargs"})


def tokens(command: str) -> list[str]:
    lex = shlex.shlex(command, posix=True, punctuation_chars=";&|()\n")
    lex.whitespace = " \t\r"
    lex.whitespace_split = True
    try:
        return list(lex)
    except ValueError:
        # Unbalanced quotes: fall back to whitespace words rather than give up on the command.
        return re.findall(r"[^\s;&|]+|[;&|\n]+", command)


def segments(tokens: list[str]) -> list[list[str]]:
    segs: list[list[str]] = []
    cur: list[str] = []
    for tok in tokens:
        if tok in _OPERATORS or (tok and set(tok) <= set(";&|()\n")):
            if cur:
                segs.append(cur)
            cur = []
        else:
            cur.append(tok)
    if cur:
        segs.append(cur)
    return segs


_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def strip_prefix(seg: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading ``VAR=value`` assignments and wrappers (``sudo -u x``, ``env``, ``timeout 5``) removed."""
    env: dict[str, str] = {}
    i = 0
    while i < len(seg):
        tok = seg[i]
        if _ASSIGN.match(tok):
            k, _, v = tok.partition("=")
            env[k] = v
            i += 1
        elif os.path.basename(tok) in _WRAPPERS:
            i += 1
            while i < len(seg) and seg[i].startswith("-"):
                # sudo -u user / timeout -s KILL: skip the flag and, if it takes one, its value
                flag = seg[i]
                i += 1
                if flag in ("-u", "-g", "-s", "-k", "-n", "-C", "--user", "--signal") and i < len(seg):
                    i += 1
            if (
                os.path.basename(seg[i - 1] if i else "") == "timeout"
                and i < len(seg)
                and seg[i][:1].isdigit()
            ):
                i += 1
        else:
            break
    return env, seg[i:]


def opt(args: list[str], i: int, names: tuple[str, ...]) -> tuple[str | None, int]:
    """If ``args[i]`` is one of ``names`` (``-h X``, ``-hX``, ``--host=X``), its value and the next index."""
    a = args[i]
    for n in names:
        if a == n:
            return (args[i + 1] if i + 1 < len(args) else None), i + 2
        if n.startswith("--") and a.startswith(n + "="):
            return a[len(n) + 1 :], i + 1
        if len(n) == 2 and not n.startswith("--") and a.startswith(n) and len(a) > 2:
            return a[2:], i + 1
    return None, i
