"""The devnet supervisor's pure pieces: exit codes in words, command lines, the status
line and table, the start window, the startup deadline and the control socket's path;
and the command-line errors of ``zoneledger devnet`` and ``zoneledger devnet ctl``."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from scripts.cli import main
from scripts.devnet_supervisor import (
    ACTIONS,
    Command,
    CommandError,
    ZoneStatus,
    admit_next,
    control_socket_path,
    describe_exit,
    format_status_line,
    format_status_table,
    log_tail,
    parse_command,
    startup_deadline,
)

ZONES = ["EG-TEDA", "BY-GREATSTONE", "DJ-DIFTZ", "LK-HAMBANTOTA", "XX-ZONE10", "XX-ZONE11"]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (-signal.SIGKILL, "killed by SIGKILL"),
        (-signal.SIGTERM, "killed by SIGTERM"),
        (-signal.SIGSEGV, "killed by SIGSEGV"),
        (0, "exited normally (code 0)"),
        (1, "exited with code 1"),
        (137, "exited with code 137"),
        (-200, "killed by signal 200"),
    ],
)
def test_exit_codes_read_as_words(code: int, words: str) -> None:
    assert describe_exit(code) == words


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("stop DJ-DIFTZ", Command("stop", ("DJ-DIFTZ",))),
        ("  START dj-diftz \n", Command("start", ("DJ-DIFTZ",))),
        ("kill dj", Command("kill", ("DJ-DIFTZ",))),
        ("restart LK EG-TEDA", Command("restart", ("LK-HAMBANTOTA", "EG-TEDA"))),
        ("stop DJ-DIFTZ dj-diftz", Command("stop", ("DJ-DIFTZ",))),
        ("status", Command("status")),
        ("help", Command("help")),
        ("quit", Command("quit")),
        ("stop XX-ZONE10", Command("stop", ("XX-ZONE10",))),
    ],
)
def test_command_lines_parse(line: str, command: Command) -> None:
    assert parse_command(line, ZONES) == command


def test_a_blank_line_is_no_command() -> None:
    assert parse_command("   \n", ZONES) is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("explode DJ-DIFTZ", "unknown command 'explode'"),
        ("stop", "stop: name the zone"),
        ("stop XX-NOWHERE", "no zone 'XX-NOWHERE'"),
        ("kill XX", "'XX' names 2 zones (XX-ZONE10, XX-ZONE11)"),
        ("status DJ-DIFTZ", "status takes no zone"),
    ],
)
def test_bad_command_lines_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(CommandError) as caught:
        parse_command(line, ZONES)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_every_action_has_help() -> None:
    assert set(ACTIONS) == {"status", "stop", "start", "restart", "kill", "help", "quit"}
    assert all(text for text in ACTIONS.values())


def test_status_line_groups_heights_and_names_who_is_not_up() -> None:
    rows = [
        ZoneStatus("EG-TEDA", "up", 12),
        ZoneStatus("BY-GREATSTONE", "up", 12),
        ZoneStatus("DJ-DIFTZ", "down", None, "killed by SIGKILL"),
        ZoneStatus("LK-HAMBANTOTA", "up", 11),
        ZoneStatus("CN-QIANHAI", "stopped", None, "exited normally (code 0) on request"),
        ZoneStatus("AE-JAFZA", "up", None),
    ]
    line = format_status_line(rows)
    assert line == (
        "3/6 up; heights 12 on 2, 11 on 1; down: DJ-DIFTZ (killed by SIGKILL); stopped: CN-QIANHAI; "
        "not answering: AE-JAFZA"
    )


def test_status_line_stays_one_short_line_at_58_zones() -> None:
    rows = [ZoneStatus(f"XX-ZONE{i:02d}", "up", 40 + i % 7) for i in range(50)]
    rows += [ZoneStatus(f"YY-ZONE{i:02d}", "down", None, "killed by SIGKILL") for i in range(8)]
    line = format_status_line(rows)
    assert line.startswith("50/58 up; heights 46 on 7, 45 on 7, 44 on 7, 43 on 7, 3 more; down: YY-ZONE00 (killed")
    assert line.endswith("and 2 more")
    assert "\n" not in line and len(line) < 300


def test_status_line_with_one_height() -> None:
    assert format_status_line([ZoneStatus("EG-TEDA", "up", 3), ZoneStatus("DJ-DIFTZ", "up", 3)]) == "2/2 up; height 3"


def test_status_table_has_one_row_per_zone() -> None:
    rows = [ZoneStatus("EG-TEDA", "up", 12, "", 4242), ZoneStatus("DJ-DIFTZ", "down", None, "killed by SIGKILL")]
    table = format_status_table(rows)
    assert len(table) == 3
    assert table[1].split() == ["EG-TEDA", "up", "12", "4242"]
    assert table[2].split() == ["DJ-DIFTZ", "down", "-", "-", "killed", "by", "SIGKILL"]


@pytest.mark.parametrize(
    ("waiting", "starting", "window", "admitted"),
    [
        (["a", "b", "c"], 0, 0, ["a", "b", "c"]),
        (["a", "b", "c"], 5, 0, ["a", "b", "c"]),
        (["a", "b", "c", "d", "e"], 0, 2, ["a", "b"]),
        (["c", "d", "e"], 1, 2, ["c"]),
        (["c", "d", "e"], 2, 2, []),
        (["c", "d", "e"], 3, 2, []),
        (["e"], 0, 4, ["e"]),
        ([], 0, 4, []),
    ],
)
def test_start_window_admits_up_to_the_window(waiting: list[str], starting: int, window: int, admitted: list[str]) -> None:
    assert admit_next(waiting, starting, window) == admitted


def test_every_zone_is_admitted_once_in_order_through_a_window() -> None:
    waiting = [f"Z{i}" for i in range(11)]
    starting: list[str] = []
    order: list[str] = []
    while waiting or starting:
        for zone in admit_next(waiting, len(starting), 3):
            waiting.remove(zone)
            starting.append(zone)
            order.append(zone)
        assert len(starting) <= 3
        starting.pop(0)  # the oldest answers
    assert order == [f"Z{i}" for i in range(11)]


def test_startup_deadline_grows_with_the_zone_count() -> None:
    assert startup_deadline(4) >= 50
    assert startup_deadline(58) > startup_deadline(20) > startup_deadline(4)
    assert startup_deadline(0) == startup_deadline(1)


def test_log_tail_gives_the_last_non_blank_lines(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_bytes(b"".join(f"line {i}\n\n".encode() for i in range(100)) + b"\xff broken\n")
    assert log_tail(log, 3) == ["line 98", "line 99", "\ufffd broken"]
    assert log_tail(tmp_path / "missing.log") == []


def test_control_socket_lives_in_the_data_dir_unless_the_path_is_too_long(tmp_path: Path) -> None:
    assert control_socket_path(tmp_path) == tmp_path.resolve() / "devnet.sock"
    deep = tmp_path / ("d" * 120)
    path = control_socket_path(deep)
    assert len(str(path)) < 108 and path.name.startswith("zoneledger-devnet-")
    assert control_socket_path(deep) == path != control_socket_path(tmp_path / ("e" * 120))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_ctl_without_a_running_devnet_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["devnet", "ctl", "status", "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no devnet is running in" in err and str(tmp_path) in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["devnet", "ctl", "stop"], "name the zone"),
        (["devnet", "ctl", "status", "DJ-DIFTZ"], "takes no zone"),
        (["devnet", "--zones", "0"], "--zones: expected 1..100, got 0"),
        (["devnet", "--zones", "4", "--start-window", "-1"], "--start-window"),
    ],
)
def test_devnet_usage_errors_are_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([*argv, "--data-dir", str(tmp_path / "dn")], capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert not (tmp_path / "dn").exists()


def test_devnet_refuses_ports_already_in_use(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from scripts.devnet import free_port_block

    base = free_port_block(2)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", base + 1))
        holder.listen()
        code, out, err = run(
            ["devnet", "--zones", "2", "--port", str(base), "--no-examples", "--data-dir", str(tmp_path / "dn")], capsys,
        )
    assert code == 2
    assert err.count("\n") == 1
    assert f"port {base + 1} of validator BY-GREATSTONE is already in use" in err
    assert "stopping validators" not in out
