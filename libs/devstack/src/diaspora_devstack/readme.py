"""The README's commands, run in order against a running platform (the README check).

Every ```sh block of README.md is split into commands (a command goes on over lines
ending with a backslash, an open quote and a here-document) and each one runs, in the
order of the README, in one bash session (variables set by a command are there for the
next ones), from a scratch folder (files a command writes land there), with `uv run`
pointed at the checkout. A command must exit 0, or the code its own comment announces
(``# exit code 1: ...``); ``curl`` fails on an HTTP error status (``--fail-with-body``),
so a 4xx or 5xx answer fails the check with the answer shown.

Placeholders ``<name>`` in a command (``<id>``) are replaced by the value of ``name`` at
the top level of the latest answer (a JSON object) that had it: the id the registration
answered, say. Addresses of `make run` (127.0.0.1:8080, ...) are replaced by those of the
platform under test, and `.local/` by its state folder (mail in `.local/mail/`, logs).

An HTML comment just before a block says how the check treats it:

- ``<!-- readme-check: eventually -->``: each command is repeated until it succeeds (up to
  a minute): it reads what a worker writes once an event has reached it.
- ``<!-- readme-check: not run: <why> -->``: not run here (it starts the platform or the
  suite, or long-running processes); its ``make`` targets and ``uv run`` programs must
  exist.

A failure names the command (README line), its exit code and what it printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import select
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*readme-check:\s*(?P<what>[a-z -]+?)\s*(?::\s*(?P<why>.*?))?\s*-->$")
_HEREDOC = re.compile(r"<<(-?)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_EXIT_CODE = re.compile(r"#.*\bexit code (\d+)\b")
_PLACEHOLDER = re.compile(r"<([a-z][a-z0-9_]*)>")
_RC_MARK = "__readme_check_rc__"
_RC_LINE = re.compile(_RC_MARK + r" (\d+)\n")

EVENTUALLY_SECONDS = 60.0
COMMAND_TIMEOUT_SECONDS = 180.0


@dataclass
class Command:
    text: str
    line: int  # 1-based line of README.md where it starts
    mode: str = "run"  # run | eventually | not run
    why: str = ""

    @property
    def expected_exit(self) -> int:
        found = _EXIT_CODE.search(self.text)
        return int(found.group(1)) if found else 0


@dataclass
class Block:
    line: int
    commands: list[Command] = field(default_factory=list)


class ReadmeCommandFailed(AssertionError):
    pass


def blocks(markdown: str) -> list[Block]:
    """The ```sh blocks, in order, with their commands."""
    found: list[Block] = []
    lines = markdown.splitlines()
    mode, why = "run", ""
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = _MARKER.match(line.strip())
        if marker:
            mode, why = marker.group("what").strip(), marker.group("why") or ""
            if mode not in ("eventually", "not run"):
                raise ValueError(f"README.md line {index + 1}: unknown readme-check {mode!r}")
            index += 1
            continue
        fence = _FENCE.match(line)
        if fence is None:
            if line.strip():
                mode, why = "run", ""  # a marker applies to the block right after it
            index += 1
            continue
        body_start = index + 1
        end = body_start
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if fence.group(1) == "sh":
            block = Block(line=body_start)
            for text, start in split_commands(lines[body_start:end]):
                block.commands.append(Command(text, body_start + start + 1, mode, why))
            found.append(block)
        mode, why = "run", ""
        index = end + 1
    return found


def split_commands(lines: list[str]) -> Iterator[tuple[str, int]]:
    """(command, index of its first line): backslash continuations, open quotes and
    here-documents keep a command going; blank and comment-only lines stand alone."""
    current: list[str] = []
    start = 0
    heredoc: tuple[str, bool] | None = None
    for number, line in enumerate(lines):
        if not current:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            start = number
        current.append(line)
        if heredoc is not None:
            delimiter, strip_tabs = heredoc
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                heredoc = None
                yield "\n".join(current), start
                current = []
            continue
        match = _HEREDOC.search(line)
        if match:
            heredoc = (match.group(3), match.group(1) == "-")
            continue
        if line.endswith("\\") or not _quotes_closed("\n".join(current)):
            continue
        yield "\n".join(current), start
        current = []
    if current:
        yield "\n".join(current), start


def _quotes_closed(text: str) -> bool:
    try:
        shlex.split(text, comments=True)
    except ValueError:
        return False
    return True


# Running --------------------------------------------------------------------------------


class Shell:
    """One bash session; each command's output goes to a file of its own."""

    def __init__(self, cwd: Path, env: Mapping[str, str]) -> None:
        self.cwd = cwd
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env),
            text=True,
        )
        self._pending = ""  # what the shell printed that was not read yet (markers only)
        # An HTTP error status is a failure, with the answer's body shown.
        self._send('curl() { command curl --fail-with-body "$@"; }\n')
        self.count = 0

    def _send(self, text: str) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # the shell ended: run() says so
            self.process.stdin.write(text)
            self.process.stdin.flush()

    def run(self, command: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> tuple[int, str]:
        self.count += 1
        out = self.cwd / f".readme-check-{self.count}.out"
        self._send(
            f"{{\n{command}\n}} > {shlex.quote(str(out))} 2>&1 < /dev/null\n"
            f"printf '\\n{_RC_MARK} %s\\n' \"$?\"\n"
        )
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while (end := _RC_LINE.search(self._pending)) is None:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(0.0, remaining))
            if not ready:
                self.close()
                text = out.read_text(errors="replace") if out.exists() else ""
                return 124, text + f"\n(no end after {timeout:.0f}s)"
            chunk = os.read(fd, 4096)
            if not chunk:  # the command ended the shell (`exit`)
                code = self.process.wait(timeout=10)
                text = out.read_text(errors="replace") if out.exists() else ""
                return code, text + "\n(the shell ended: no later command can run)"
            self._pending += chunk.decode(errors="replace")
        self._pending = self._pending[end.end() :]
        return int(end.group(1)), out.read_text(errors="replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def substitute(command: str, answers: Mapping[str, str], addresses: Mapping[str, str]) -> str:
    for default, actual in addresses.items():
        command = command.replace(default, actual)

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in answers:
            raise ReadmeCommandFailed(
                f"<{name}>: no answer before this command had a top-level {name!r}"
            )
        return answers[name]

    return _PLACEHOLDER.sub(value, command)


def remember(output: str, answers: dict[str, str]) -> None:
    """Top-level scalar fields of a JSON object answer, for later placeholders."""
    try:
        body: Any = json.loads(output)
    except ValueError:
        return
    if isinstance(body, dict):
        for key, item in body.items():
            if isinstance(item, str | int) and not isinstance(item, bool):
                answers[key] = str(item)


def check_not_run(command: Command, root: Path) -> None:
    """A command the check does not run: its make targets and uv programs exist."""
    words = shlex.split(command.text, comments=True)
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else None
        if word == "make" and following:
            done = subprocess.run(
                ["make", "-n", "-C", str(root), following], capture_output=True, text=True
            )
            if done.returncode != 0:
                raise ReadmeCommandFailed(
                    f"README.md line {command.line}: `make {following}`: {done.stderr.strip()}"
                )
        if word == "run" and index > 0 and words[index - 1] == "uv" and following:
            program = Path(sys.executable).parent / following
            if not program.exists():
                raise ReadmeCommandFailed(
                    f"README.md line {command.line}: `uv run {following}`: no such program"
                )


def run_readme(
    readme: Path,
    *,
    env: Mapping[str, str],
    addresses: Mapping[str, str],
    log: Any = sys.stdout,
) -> int:
    """Run the README's commands in order; returns how many ran. Raises
    ReadmeCommandFailed naming the first command that failed and what it printed."""
    root = readme.resolve().parent
    # Commands run from a scratch folder: `.local/` (mail, logs) is the platform's state.
    state = Path(env.get("DIASPORA_STATE_DIR") or root / ".local")
    addresses = {**addresses, ".local/": f"{state}/"}
    answers: dict[str, str] = {}
    ran = 0
    with tempfile.TemporaryDirectory(prefix="readme-check-") as scratch:
        shell_env = {**env, "UV_PROJECT": str(root), "UV_FROZEN": "1"}
        shell = Shell(Path(scratch), shell_env)
        try:
            for block in blocks(readme.read_text()):
                for command in block.commands:
                    if command.mode == "not run":
                        check_not_run(command, root)
                        print(f"- line {command.line}: not run ({command.why})", file=log)
                        continue
                    text = substitute(command.text, answers, addresses)
                    code, output = _run_one(shell, command, text)
                    print(f"$ {text}\n{_shorten(output)}", file=log, flush=True)
                    if code != command.expected_exit:
                        raise ReadmeCommandFailed(
                            f"README.md line {command.line}: exit code {code} "
                            f"(expected {command.expected_exit}) from\n$ {text}\n"
                            f"It printed:\n{output}"
                        )
                    remember(output, answers)
                    ran += 1
        finally:
            shell.close()
    return ran


def _run_one(shell: Shell, command: Command, text: str) -> tuple[int, str]:
    deadline = time.monotonic() + EVENTUALLY_SECONDS
    while True:
        code, output = shell.run(text)
        if code == command.expected_exit or command.mode != "eventually":
            return code, output
        if time.monotonic() > deadline:
            return code, output + f"\n(still failing after {EVENTUALLY_SECONDS:.0f}s)"
        time.sleep(1)


def _shorten(output: str, limit: int = 1500) -> str:
    return output if len(output) <= limit else output[:limit] + f"... ({len(output)} chars)"


def main(argv: list[str] | None = None) -> int:
    """Run the README against a platform started by `make run` (its fixed ports)."""
    parser = argparse.ArgumentParser(prog="python -m diaspora_devstack.readme")
    parser.add_argument("readme", type=Path, nargs="?", default=Path("README.md"))
    args = parser.parse_args(argv)
    try:
        ran = run_readme(args.readme, env=os.environ, addresses={})
    except ReadmeCommandFailed as failed:
        print(f"\nREADME check failed: {failed}", file=sys.stderr)
        return 1
    print(f"\nREADME check: {ran} commands ran as documented")
    return 0


if __name__ == "__main__":
    sys.exit(main())
