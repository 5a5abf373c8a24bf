"""Offline stand-in for ansible-test's get-pip bootstrap (ci-files.testing.ansible.com is unreachable here).

Installs the pip bundled with Python (ensurepip), then lets that pip install what get-pip was asked for
(from PyPI, which is reachable).
"""
import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
