"""systemd/install.sh, run in a scratch root with its external commands replaced by stubs.

Each stub logs its command line and does to the scratch root what the real
command would have done there (a package marked installed, a user written in
etc/passwd, a unit enabled), so that the second run can see the first one's
work, as it would on a device. What a technician checks: the files land where
the units and udev expect them, with the right modes, and running the script
again changes nothing at all.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "systemd" / "install.sh"
COMMANDS = ("apt-get", "dpkg-query", "useradd", "groupadd", "usermod", "systemctl", "udevadm", "python3")
# What a run may call and still change nothing.
READ_ONLY = {("dpkg-query",), ("systemctl", "is-enabled")}

STUB = textwrap.dedent('''\
    #!{python}
    """A logging stand-in for {{name}}: see tests/test_install.py."""
    import json, os, sys
    from pathlib import Path

    name, args = Path(sys.argv[0]).name, sys.argv[1:]
    state = Path(os.environ["STUB_STATE"])
    with open(os.environ["STUB_LOG"], "a") as log:
        log.write(json.dumps([name] + args) + "\\n")

    def option(flag):
        return args[args.index(flag) + 1] if flag in args else ""

    def marks(kind):
        path = state / kind
        return set(path.read_text().split()) if path.exists() else set()

    def mark(kind, *names):
        (state / kind).write_text("\\n".join(sorted(marks(kind) | set(names))))

    if name == "apt-get" and "install" in args:
        mark("packages", *[a for a in args[args.index("install") + 1:] if not a.startswith("-")])
    elif name == "dpkg-query":
        sys.exit(0 if print("install ok installed") or args[-1] in marks("packages") else 1)
    elif name == "groupadd":
        with open(Path(option("--root")) / "etc/group", "a") as f:
            f.write("%s:x:%d:\\n" % (args[-1], 900 + len(marks("groups"))))
        mark("groups", args[-1])
    elif name == "useradd":
        etc = Path(option("--root")) / "etc"
        gid = next(line.split(":")[2] for line in (etc / "group").read_text().splitlines()
                   if line.split(":")[0] == option("--gid"))
        with open(etc / "passwd", "a") as f:
            f.write("%s:x:990:%s::%s:%s\\n" % (args[-1], gid, option("--home-dir"), option("--shell")))
    elif name == "usermod":
        path = Path(option("--root")) / "etc/group"
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            fields = line.split(":")
            if fields[0] == option("--groups"):
                fields[3] = ",".join(filter(None, fields[3].split(",") + [args[-1]]))
                lines[i] = ":".join(fields)
        path.write_text("\\n".join(lines) + "\\n")
    elif name == "systemctl" and args[1] in ("enable", "mask"):
        mark(args[1] + "d", args[2])
    elif name == "systemctl" and args[1] == "is-enabled":
        print("masked" if args[2] in marks("maskd") else "enabled" if args[2] in marks("enabled") else "disabled")
    elif name == "python3" and args[:2] == ["-m", "kiosk.updates.install"] and os.environ.get("STUB_REAL_INSTALL"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + args)      # the real installer, the real bundle
    elif name == "python3" and args[:2] == ["-m", "kiosk.updates.install"]:
        # What the installer leaves for a first version (kiosk/updates/install.py), from the bundle's name.
        root, version = Path(option("--root")), Path(args[-1]).name.split("-")[1]
        folder = root / "versions" / version
        (folder / "venv/bin").mkdir(parents=True, exist_ok=True)
        (folder / "venv/bin/kiosk").write_text("#!/bin/sh\\n")
        (folder / "venv/bin/kiosk").chmod(0o755)
        (folder / "manifest.json").write_text(json.dumps(dict(version=version)))
        (root / "guard.py").write_text("# the guard\\n")
        if not (root / "current").is_symlink():
            os.symlink("versions/" + version, root / "current")
        with open(os.environ["STUB_LOG"], "a") as log:
            log.write(json.dumps(["PYTHONPATH", os.environ.get("PYTHONPATH", "")]) + "\\n")
''')


@pytest.fixture
def machine(tmp_path):
    """A fresh Raspberry Pi OS Lite as far as the script can tell: its /etc/passwd and /etc/group
    (without `gpio`, as on plain Debian), no kiosk, and stubs first on PATH."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("".join("%s:x:%d:\n" % (g, n) for g, n in (
        ("root", 0), ("tty", 5), ("dialout", 20), ("audio", 29), ("video", 44), ("input", 105), ("render", 106))))
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in COMMANDS:
        (stubs / name).write_text(STUB.format(python=sys.executable).replace("{name}", name))
        (stubs / name).chmod(0o755)
    state = tmp_path / "state"
    state.mkdir()
    bundle = tmp_path / "kiosk-0.1.0-linux_aarch64.tar"
    bundle.write_bytes(b"not really a bundle")
    env = dict(os.environ, PATH="%s:%s" % (stubs, os.environ["PATH"]), STUB_STATE=str(state),
               STUB_LOG=str(tmp_path / "commands.log"))
    return Machine(root, env, tmp_path / "commands.log", bundle)


class Machine:
    def __init__(self, root: Path, env: dict, log: Path, bundle: Path) -> None:
        self.root, self.env, self.log, self.bundle = root, env, log, bundle

    def install(self) -> list[list[str]]:
        """One run of the script; the commands it ran."""
        self.log.write_text("")
        result = subprocess.run(["bash", str(SCRIPT), "--root", str(self.root), "--bundle", str(self.bundle)],
                                env=self.env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stdout + result.stderr
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def snapshot(self) -> dict[str, tuple]:
        """Every path under the root: its bytes (or link target), mode, owner and modification time."""
        seen = {}
        for path in sorted(self.root.rglob("*")):
            info = path.lstat()
            content = os.readlink(path) if path.is_symlink() else path.read_bytes() if path.is_file() else None
            seen[str(path.relative_to(self.root))] = (content, oct(info.st_mode), info.st_uid, info.st_gid,
                                                      info.st_mtime_ns)
        return seen

    def mode(self, path: str) -> str:
        return oct((self.root / path).stat().st_mode & 0o7777)

    def ids(self, user: str) -> tuple[int, int]:
        fields = next(line.split(":") for line in (self.root / "etc/passwd").read_text().splitlines()
                      if line.startswith(user + ":"))
        return int(fields[2]), int(fields[3])


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the script hands directories to the kiosk user (chown)")


@needs_root
def test_a_fresh_machine_gets_packages_user_venv_units_and_rules(machine):
    commands = machine.install()
    names = [c[0] for c in commands]

    installed = next(c for c in commands if c[:2] == ["apt-get", "install"])
    assert {"pcscd", "libccid", "python3-venv", "python3-pip", "python3-pyscard", "libgles2", "libgbm1",
            "fonts-hosny-amiri"} <= set(installed)
    assert not {"gcc", "swig", "python3-dev"} & set(installed)          # nothing is compiled on a kiosk
    assert ["groupadd", "--root", str(machine.root), "--system", "gpio"] in commands
    assert any(c[0] == "useradd" and c[-1] == "kiosk" and "/usr/sbin/nologin" in c for c in commands)
    groups = {line.split(":")[0]: line.split(":")[3].split(",") for line in
              (machine.root / "etc/group").read_text().splitlines()}
    assert all("kiosk" in groups[g] for g in ("video", "render", "input", "tty", "audio", "gpio", "dialout"))
    assert ["python3", "-m", "kiosk.updates.install", "--root", str(machine.root / "opt/kiosk"),
            str(machine.bundle)] in commands
    assert ["PYTHONPATH", str(REPO)] in commands                  # the installer from this checkout
    assert os.readlink(machine.root / "opt/kiosk/current") == "versions/0.1.0"

    for unit in ("kiosk.service", "kiosk-firstboot.service", "kiosk-selftest.service", "kiosk-selftest.timer",
                 "kiosk-update.service", "kiosk-update.timer"):
        assert (machine.root / "etc/systemd/system" / unit).read_bytes() == (REPO / "systemd" / unit).read_bytes()
        assert machine.mode("etc/systemd/system/" + unit) == "0o644"
    enabled = [c[3] for c in commands if c[0] == "systemctl" and c[2] == "enable"]
    assert sorted(enabled) == ["kiosk-firstboot.service", "kiosk-selftest.timer", "kiosk-update.timer",
                               "kiosk.service"]
    assert ["systemctl", "--root=%s" % machine.root, "mask", "getty@tty1.service"] in commands
    assert "NAutoVTs=0" in (machine.root / "etc/systemd/logind.conf.d/kiosk.conf").read_text()

    rules = (machine.root / "etc/udev/rules.d/60-kiosk.rules").read_text()
    assert machine.mode("etc/udev/rules.d/60-kiosk.rules") == "0o644"
    assert 'ENV{ID_USB_INTERFACES}=="*:0b0000:*", GROUP="pcscd"' in rules          # the ID reader
    assert 'ENV{ID_USB_INTERFACES}=="*:0701??:*", GROUP="kiosk"' in rules          # a USB printer

    uid, gid = machine.ids("kiosk")
    state = (machine.root / "var/lib/kiosk").stat()
    assert machine.mode("var/lib/kiosk") == "0o700" and (state.st_uid, state.st_gid) == (uid, gid)
    config = (machine.root / "etc/kiosk/kiosk.toml").stat()
    assert machine.mode("etc/kiosk") == "0o750" and machine.mode("etc/kiosk/kiosk.toml") == "0o640"
    assert (config.st_uid, config.st_gid) == (0, gid)
    assert (machine.root / "opt/kiosk/README.md").is_file()
    # Nothing running is told to reload: there is no running system in a scratch root.
    assert "udevadm" not in names and ["systemctl", "daemon-reload"] not in commands


@needs_root
def test_a_second_run_changes_nothing(machine):
    machine.install()
    before = machine.snapshot()
    commands = machine.install()
    assert machine.snapshot() == before                       # byte for byte, modes, owners, times
    changing = [c for c in commands if tuple(c[:1]) not in READ_ONLY and tuple(c[:1] + c[2:3]) not in READ_ONLY]
    assert changing == []


@needs_root
def test_a_technicians_configuration_is_kept(machine):
    machine.install()
    config = machine.root / "etc/kiosk/kiosk.toml"
    config.write_text('device_id = "kiosk-homs-0007"\n')
    machine.install()
    assert config.read_text() == 'device_id = "kiosk-homs-0007"\n'


@needs_root
def installer_runs(commands: list[list[str]]) -> int:
    return sum(c[:3] == ["python3", "-m", "kiosk.updates.install"] for c in commands)


@needs_root
def test_a_new_bundle_is_installed_once(machine):
    machine.install()
    machine.bundle.write_bytes(b"a newer build")
    assert installer_runs(machine.install()) == 1
    assert installer_runs(machine.install()) == 0


@needs_root
def test_every_program_the_units_run_is_where_the_install_put_it(machine):
    machine.install()
    for unit in sorted((machine.root / "etc/systemd/system").glob("kiosk*.service")):
        for line in unit.read_text().splitlines():
            if line.startswith("Exec"):
                words = line.split("=", 1)[1].lstrip("-+!@:").split()
                # the program, or the script the system's Python runs (the guard)
                path = words[2] if words[0] == "/usr/bin/python3" and words[1] == "-I" else words[0]
                if path.startswith("/opt/kiosk/"):
                    assert (machine.root / path.lstrip("/")).is_file(), (unit.name, line)


@needs_root
@pytest.mark.timeout(900)
def test_a_real_bundle_becomes_the_first_version(machine, tmp_path_factory):
    """The real installer, run by the script with the system's Python, on a bundle of this checkout."""
    from tests import release_bundles

    machine.bundle = release_bundles.host_bundles(tmp_path_factory.getbasetemp()).paths["0.1.0"]
    machine.env["STUB_REAL_INSTALL"] = "1"
    machine.install()
    kiosk = machine.root / "opt/kiosk/current/venv/bin/kiosk"
    shown = subprocess.run([str(kiosk), "--help"], capture_output=True, text=True, timeout=60,
                           env=release_bundles.clean_environment(), cwd=tmp_path_factory.getbasetemp())
    assert shown.returncode == 0 and "update" in shown.stdout
    assert os.readlink(machine.root / "opt/kiosk/current") == "versions/0.1.0"
    assert (machine.root / "opt/kiosk/guard.py").read_bytes() == (REPO / "kiosk/updates/guard.py").read_bytes()
    assert installer_runs(machine.install()) == 0                    # a second run: nothing to do


def test_the_script_is_valid_bash():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    assert shutil.which("bash")


# polkit evaluates its rules in a JavaScript engine: node stands in for it, with the two objects a
# rule sees. What the technician's reboot needs, and nothing more.
POLKIT_CHECK = textwrap.dedent('''\
    const rules = [];
    const polkit = {Result: {YES: "yes", NO: "no"}, addRule: (rule) => rules.push(rule)};
    eval(require("fs").readFileSync(process.argv[2], "utf8"));
    const [user, action] = process.argv.slice(3);
    const answers = rules.map((rule) => rule({id: action}, {user: user})).filter((a) => a !== undefined);
    console.log(answers.length ? answers[0] : "not decided");
''')


@needs_root
@pytest.mark.parametrize("user, action, answer", [
    ("kiosk", "org.freedesktop.login1.reboot", "yes"),
    ("kiosk", "org.freedesktop.login1.reboot-multiple-sessions", "yes"),
    ("kiosk", "org.freedesktop.login1.power-off", "not decided"),
    ("kiosk", "org.freedesktop.systemd1.manage-units", "not decided"),
    ("pi", "org.freedesktop.login1.reboot", "not decided"),
])
def test_polkit_lets_the_kiosk_user_reboot_and_nothing_else(machine, tmp_path, user, action, answer):
    machine.install()
    rule = machine.root / "etc/polkit-1/rules.d/50-kiosk.rules"
    assert machine.mode("etc/polkit-1/rules.d/50-kiosk.rules") == "0o644"
    check = tmp_path / "check.js"
    check.write_text(POLKIT_CHECK)
    result = subprocess.run(["node", str(check), str(rule), user, action], capture_output=True, text=True,
                            timeout=30, check=True)
    assert result.stdout.strip() == answer
