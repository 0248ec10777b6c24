"""scripts/install-chromium.sh waits while another install holds the package manager's lock
instead of failing (issue 13: setup that doesn't trip). A fake apt-get on PATH stands in."""
import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT

FAKE_APT = """#!/usr/bin/env bash
count=$(cat "$STATE" 2>/dev/null || echo 0); echo $((count + 1)) > "$STATE"
echo "$*" >> "$CALLS"
if [ "$count" -lt "$LOCKED_CALLS" ]; then
  echo "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)"
  exit 100
fi
case "$*" in *install*) printf '#!/bin/sh\\n' > "$CHROMIUM_BIN"; chmod +x "$CHROMIUM_BIN";; esac
exit 0
"""


def run_installer(tmp_path, locked_calls, fail_install=False):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"
    body = FAKE_APT if not fail_install else FAKE_APT.replace(
        "case", 'case "$*" in *install*) echo "E: Unable to locate package"; exit 100;; esac\ncase')
    fake.write_text(body)
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", STATE=str(tmp_path / "n"),
               CALLS=str(tmp_path / "calls"), LOCKED_CALLS=str(locked_calls),
               CHROMIUM_BIN=str(tmp_path / "chromium"), APT_LOCK_WAIT_SECONDS="0", CI="true")
    if os.getuid() != 0:
        (bin_dir / "sudo").write_text('#!/bin/sh\nexec "$@"\n')
        (bin_dir / "sudo").chmod(0o755)
    result = subprocess.run(["bash", str(ROOT / "scripts" / "install-chromium.sh")], env=env,
                            capture_output=True, text=True, timeout=60)
    return result, Path(tmp_path / "calls").read_text().splitlines()


def test_waits_for_the_package_managers_lock(tmp_path):
    result, calls = run_installer(tmp_path, locked_calls=3)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("waiting for another package installation") == 3
    assert (tmp_path / "chromium").exists()
    assert any("install" in call for call in calls)


def test_another_failure_is_not_waited_for(tmp_path):
    result, calls = run_installer(tmp_path, locked_calls=0, fail_install=True)
    assert "waiting for another" not in result.stderr
    assert result.returncode == 1  # CI=true: no browser is a failure
    assert "could not install chromium" in result.stderr
