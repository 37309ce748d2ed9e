"""The README check itself: how it reads a README and what it says when a command fails."""

from __future__ import annotations

import functools
import http.server
import io
import threading
from pathlib import Path

import pytest

from diaspora_devstack.readme import ReadmeCommandFailed, blocks, run_readme

README = """\
# A project

```sh
make run     # starts it
```

<!-- readme-check: not run: starts the platform -->
```sh
make up
```

Text.

```
output shown, not a command
```

```sh
TOKEN=$(echo secret)
echo '{"id": "abc-1", "n": 2}'
curl -s -X POST http://127.0.0.1:8080/x \\
  -d '{
  "a": 1}'
cat > list.csv <<'END'
a;b
# not a comment here
END
false   # exit code 1: on purpose
```

<!-- readme-check: eventually -->
```sh
test -e ready || { touch ready; false; }
```
"""


def test_blocks_split_commands_in_order_with_their_markers() -> None:
    found = blocks(README)
    commands = [(c.line, c.mode, c.text.splitlines()[0]) for b in found for c in b.commands]
    assert commands == [
        (4, "run", "make run     # starts it"),
        (9, "not run", "make up"),
        (19, "run", "TOKEN=$(echo secret)"),
        (20, "run", """echo '{"id": "abc-1", "n": 2}'"""),
        (21, "run", "curl -s -X POST http://127.0.0.1:8080/x \\"),
        (24, "run", "cat > list.csv <<'END'"),
        (28, "run", "false   # exit code 1: on purpose"),
        (33, "eventually", "test -e ready || { touch ready; false; }"),
    ]
    by_line = {c.line: c for b in found for c in b.commands}
    assert by_line[21].text.endswith('"a": 1}\'')  # the quote spans three lines
    assert by_line[24].text.splitlines()[-1] == "END"  # the here-document is whole
    assert by_line[28].expected_exit == 1
    assert by_line[20].expected_exit == 0


def test_unknown_marker_is_refused() -> None:
    with pytest.raises(ValueError, match="line 1"):
        blocks("<!-- readme-check: sometimes -->\n```sh\ntrue\n```\n")


def test_commands_share_one_shell_and_placeholders_come_from_answers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "```sh\n"
        "NAME=world\n"
        'echo \'{"id": "abc-1"}\'\n'
        'test "$NAME/<id>" = world/abc-1\n'
        "echo http://127.0.0.1:8080/\n"
        "ls .local/mail/\n"
        "```\n"
        "<!-- readme-check: eventually -->\n"
        "```sh\n"
        "test -e ready || { touch ready; false; }\n"
        "```\n"
    )
    (tmp_path / "state" / "mail").mkdir(parents=True)
    (tmp_path / "state" / "mail" / "000001.eml").write_text("Subject: hello")
    log = io.StringIO()
    env = {"PATH": "/usr/bin:/bin", "DIASPORA_STATE_DIR": str(tmp_path / "state")}
    ran = run_readme(readme, env=env, addresses={"127.0.0.1:8080": "h:1"}, log=log)
    assert ran == 6
    assert "000001.eml" in log.getvalue()
    assert "http://h:1/" in log.getvalue()


def test_a_failing_command_is_named_with_its_line_and_output(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n\n```sh\necho fine\necho 'it broke' >&2; exit 3\necho never\n```\n")
    with pytest.raises(ReadmeCommandFailed) as failed:
        run_readme(readme, env={"PATH": "/usr/bin:/bin"}, addresses={}, log=io.StringIO())
    message = str(failed.value)
    assert "README.md line 5: exit code 3 (expected 0)" in message
    assert "it broke" in message


def test_curl_fails_on_an_http_error_status_and_shows_the_answer(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=tmp_path / "site")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    readme = tmp_path / "README.md"
    readme.write_text(f"```sh\ncurl -s http://127.0.0.1:{server.server_port}/missing\n```\n")
    try:
        with pytest.raises(ReadmeCommandFailed) as failed:
            run_readme(readme, env={"PATH": "/usr/bin:/bin"}, addresses={}, log=io.StringIO())
    finally:
        server.shutdown()
        server.server_close()
    assert "line 2: exit code 22" in str(failed.value)
    assert "File not found" in str(failed.value)  # the body of the 404


def test_commands_not_run_must_name_existing_programs(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "<!-- readme-check: not run: long-running -->\n```sh\nuv run no-such-cli\n```\n"
    )
    with pytest.raises(ReadmeCommandFailed, match="line 3: `uv run no-such-cli`: no such program"):
        run_readme(readme, env={"PATH": "/usr/bin:/bin"}, addresses={}, log=io.StringIO())
    readme.write_text("<!-- readme-check: not run: long-running -->\n```sh\nuv run devstack\n```\n")
    assert run_readme(readme, env={"PATH": "/usr/bin:/bin"}, addresses={}, log=io.StringIO()) == 0


def test_a_placeholder_without_an_answer_is_an_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("```sh\necho <id>\n```\n")
    with pytest.raises(ReadmeCommandFailed, match="no answer before this command"):
        run_readme(readme, env={"PATH": "/usr/bin:/bin"}, addresses={}, log=io.StringIO())
