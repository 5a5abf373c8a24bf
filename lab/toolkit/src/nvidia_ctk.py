"""lpfleet-lab stand-in for ``nvidia-ctk`` (NVIDIA Container Toolkit CLI).

Packaged as /usr/bin/nvidia-ctk by lab/toolkit/build-repo.sh. Implements
``nvidia-ctk runtime configure --runtime=docker`` the way the real tool does
(cmd/nvidia-ctk/runtime/configure and pkg/config/engine/docker upstream): it
merges ``runtimes.nvidia`` into daemon.json, keeps every other key, writes the
JSON with sorted keys and four-space indentation, and never restarts Docker.
Python 3.8+ and the standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from typing import TextIO

TOOLKIT_VERSION = "1.17.8"  # rewritten per package version by build-repo.sh
STAND_IN = "lpfleet-lab stand-in"

DEFAULT_DOCKER_CONFIG = "/etc/docker/daemon.json"
DEFAULT_RUNTIME_NAME = "nvidia"
DEFAULT_RUNTIME_PATH = "nvidia-container-runtime"
KNOWN_RUNTIMES = ("containerd", "crio", "docker")


class CtkError(Exception):
    """Reported as ``ERRO[0000] <message>`` with exit code 1, like the real tool."""


def log(stream: TextIO, level: str, message: str) -> None:
    stream.write(f"{level}[0000] {message}\n")


def load_docker_config(path: str, stderr: TextIO) -> dict:
    """Reads daemon.json; a missing file is an empty config (and is said so)."""
    if os.path.isdir(path):
        raise CtkError(f"unable to load config for runtime docker: config file {path} is a directory")
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except FileNotFoundError:
        log(stderr, "INFO", "Config file does not exist; creating new one")
        return {}
    except OSError as error:
        raise CtkError(f"unable to load config for runtime docker: unable to read config: {error}") from None
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except ValueError as error:
        raise CtkError(f"unable to load config for runtime docker: {path} is not valid JSON ({error}); "
                       "fix or remove the file and run again") from None
    if not isinstance(config, dict):
        raise CtkError(f"unable to load config for runtime docker: {path} must hold a JSON object, "
                       f"found {type(config).__name__}")
    return config


def add_runtime(config: dict, name: str, path: str, set_as_default: bool) -> dict:
    """Returns a copy of the Docker config with the runtime added (AddRuntime upstream)."""
    updated = dict(config)
    runtimes = updated.get("runtimes", {})
    if not isinstance(runtimes, dict):
        raise CtkError(f'unable to update config: "runtimes" must be a JSON object, found {type(runtimes).__name__}')
    runtimes = dict(runtimes)
    runtimes[name] = {"path": path, "args": []}
    updated["runtimes"] = runtimes
    if set_as_default:
        updated["default-runtime"] = name
    return updated


def enable_cdi(config: dict) -> dict:
    updated = dict(config)
    features = updated.get("features", {})
    features = dict(features) if isinstance(features, dict) else {}
    features["cdi"] = True
    updated["features"] = features
    return updated


def render_config(config: dict) -> str:
    """Go's json.MarshalIndent(config, "", "    "): sorted keys, no trailing newline."""
    return json.dumps(config, indent=4, sort_keys=True, ensure_ascii=False)


def write_config(path: str, text: str) -> None:
    """Replaces the file atomically, keeping an existing file's mode and owner."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o755, exist_ok=True)
    try:
        status: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        status = None
    handle, temporary = tempfile.mkstemp(prefix=".daemon.json.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        if status is None:
            os.chmod(temporary, 0o644)
        else:
            os.chmod(temporary, status.st_mode & 0o7777)
            if hasattr(os, "chown"):
                os.chown(temporary, status.st_uid, status.st_gid)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def configure_runtime(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> None:
    if args.runtime not in KNOWN_RUNTIMES:
        raise CtkError(f"unrecognized runtime '{args.runtime}'")
    if args.runtime != "docker":
        raise CtkError(f"the {STAND_IN} supports only --runtime=docker, not '{args.runtime}'")
    config_path = args.config or DEFAULT_DOCKER_CONFIG
    config = add_runtime(load_docker_config(config_path, stderr), args.nvidia_runtime_name,
                         args.nvidia_runtime_path, args.set_as_default)
    if args.cdi_enabled:
        config = enable_cdi(config)
    text = render_config(config)
    if args.dry_run:
        stdout.write(text + "\n")
        return
    try:
        write_config(config_path, text)
    except OSError as error:
        raise CtkError(f"unable to flush config: {error}") from None
    log(stderr, "INFO", f"Wrote updated config to {config_path}")
    log(stderr, "INFO", "It is recommended that docker daemon be restarted.")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise CtkError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nvidia-ctk", allow_abbrev=False, description=f"NVIDIA Container Toolkit CLI ({STAND_IN})")
    parser.add_argument("-v", "--version", action="store_true", help="print the version")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    runtime = commands.add_parser("runtime", help="configure container engines", allow_abbrev=False)
    runtime_commands = runtime.add_subparsers(dest="runtime_command", parser_class=_Parser)
    configure = runtime_commands.add_parser("configure", allow_abbrev=False,
                                           help="add the NVIDIA runtime to an engine's config")
    configure.add_argument("--dry-run", action="store_true", help="print the result; change nothing")
    configure.add_argument("--runtime", default="docker", help="one of [containerd, crio, docker]")
    configure.add_argument("--config", help=f"config file (default {DEFAULT_DOCKER_CONFIG})")
    configure.add_argument("--nvidia-runtime-name", "--runtime-name", default=DEFAULT_RUNTIME_NAME,
                           help="name of the runtime to add")
    configure.add_argument("--nvidia-runtime-path", "--runtime-path", default=DEFAULT_RUNTIME_PATH,
                           help="path of the runtime executable")
    configure.add_argument("--nvidia-set-as-default", "--set-as-default", dest="set_as_default",
                           action="store_true", help="make it Docker's default-runtime")
    configure.add_argument("--cdi.enabled", "--enable-cdi", dest="cdi_enabled", action="store_true",
                           help="enable CDI in the engine")
    return parser


def version_text() -> str:
    return f"NVIDIA Container Toolkit CLI version {TOOLKIT_VERSION}\ncommit: {STAND_IN}\n"


def run(argv: Sequence[str], stdout: TextIO, stderr: TextIO) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
        if args.version:
            stdout.write(version_text())
        elif args.command == "runtime" and args.runtime_command == "configure":
            configure_runtime(args, stdout, stderr)
        else:
            parser.print_help(stdout)
        return 0
    except CtkError as error:
        log(stderr, "ERRO", str(error))
        return 1


def main(argv: list[str] | None = None) -> int:
    return run(sys.argv[1:] if argv is None else argv, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
