"""What tools/k8s/cluster.sh changes on the host and undoes, on its functions alone (sourced into bash with a
scratch directory standing in for /proc/sys and /usr/sbin): no cluster, no root-only side effects.

The whole round trip on the real host (up, then delete, leaving the host as it was) is in test_cluster_lifecycle.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

CLUSTER = Path(__file__).resolve().parent.parent / "tools" / "k8s" / "cluster.sh"


def bash(script: str, scratch: Path) -> subprocess.CompletedProcess[str]:
    """Runs `script` after sourcing cluster.sh with its host paths pointed into `scratch`."""
    prelude = f"""
        source {CLUSTER}
        STATE={scratch}/state
        HOST_RECORD=$STATE/host
        SYSCTL_ROOT={scratch}/sys
        POLICY_RC_D={scratch}/policy-rc.d
        CNI_CACHE={scratch}/cni-results
        DEVICE_PLUGIN_SOCKET={scratch}/device-plugins/kubelet.sock
    """
    return subprocess.run(
        ["bash", "-c", prelude + script], capture_output=True, text=True, timeout=60, check=False, cwd=scratch
    )


def sysctl(scratch: Path, key: str) -> Path:
    return scratch / "sys" / key.replace(".", "/")


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    for key, value in {
        "net.ipv4.ip_forward": "0",
        "net.ipv4.conf.all.route_localnet": "0",
        "kernel.panic": "0",
    }.items():
        sysctl(tmp_path, key).parent.mkdir(parents=True, exist_ok=True)
        sysctl(tmp_path, key).write_text(value + "\n")
    return tmp_path


def test_delete_puts_back_the_sysctls_from_before_the_first_up(scratch: Path) -> None:
    done = bash(
        """
        record_sysctls                      # first up
        set_sysctl net.ipv4.ip_forward 1    # cluster.sh itself
        echo 10 > $SYSCTL_ROOT/kernel/panic # the kubelet
        record_sysctls                      # a later up must not record the cluster's own values
        set_sysctl net.ipv4.conf.all.route_localnet 1
        restore_sysctls                     # delete
        """,
        scratch,
    )
    assert done.returncode == 0, done.stderr
    for key in ("net.ipv4.ip_forward", "net.ipv4.conf.all.route_localnet", "kernel.panic"):
        assert sysctl(scratch, key).read_text().strip() == "0", key
    assert "net.ipv4.ip_forward=0" in (scratch / "state" / "host" / "sysctl").read_text().splitlines()


def test_a_failed_package_install_leaves_no_policy_rc_d(scratch: Path) -> None:
    done = bash(
        """
        DEB_PACKAGES=(goapp-test-not-installed)
        dpkg-query() { return 1; }
        apt-get() { [[ -x $POLICY_RC_D ]] && echo "policy-rc.d in place during apt-get"; return 100; }
        ensure_packages
        """,
        scratch,
    )
    assert done.returncode != 0
    assert "policy-rc.d in place during apt-get" in done.stdout
    assert "apt-get could not install: goapp-test-not-installed" in done.stderr
    assert not (scratch / "policy-rc.d").exists()


# The old mark is the one the script wrote as scripts/cluster.sh, before it moved beside tools/k8s/build.sh.
@pytest.mark.parametrize("mark", ["POLICY_RC_D_MARK", "POLICY_RC_D_OLD_MARK"])
def test_delete_removes_only_its_own_leftover_policy_rc_d(mark: str, scratch: Path) -> None:
    ours = bash(f'printf "#!/bin/sh\\n%s\\nexit 101\\n" "${mark}" > $POLICY_RC_D; remove_own_policy_rc_d', scratch)
    assert ours.returncode == 0, ours.stderr
    assert not (scratch / "policy-rc.d").exists()

    (scratch / "policy-rc.d").write_text("#!/bin/sh\n# the administrator's own\nexit 101\n")
    foreign = bash("remove_own_policy_rc_d", scratch)
    assert foreign.returncode == 0, foreign.stderr
    assert (scratch / "policy-rc.d").read_text() == "#!/bin/sh\n# the administrator's own\nexit 101\n"


def test_delete_removes_created_directories_but_not_other_programs_files(scratch: Path) -> None:
    ours, shared = scratch / "created-by-kubelet", scratch / "shared-later"
    done = bash(
        f"""
        HOST_DIRS=({ours} {shared})
        record_host_dirs
        mkdir -p {ours}/sub $STATE/pod-logs {shared}
        ln -s $STATE/pod-logs/x.log {ours}/sub/x.log
        echo other > {shared}/file
        remove_created_dirs
        """,
        scratch,
    )
    assert done.returncode == 0, done.stderr
    assert not ours.exists()
    assert (shared / "file").read_text() == "other\n"
    assert f"kept {shared}" in done.stderr


def test_delete_removes_the_node_agents_files_of_the_cluster_only(scratch: Path) -> None:
    cache, sockets = scratch / "cni-results", scratch / "device-plugins"
    cache.mkdir()
    sockets.mkdir()
    ours = ["goapp-pods-0a1b-eth0", "cni-loopback-0a1b-lo"]
    others = ["other-net-9f8e-eth0", "cni-loopback-9f8e-lo"]
    for name in ours + others:
        (cache / name).write_text("{}")
    (sockets / "kubelet.sock").write_text("")
    done = bash("pgrep() { return 1; }; remove_node_leftovers", scratch)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in cache.iterdir()) == sorted(others)
    assert not (sockets / "kubelet.sock").exists()


@pytest.mark.parametrize("variable", ["CLUSTER_UP_TIMEOUT", "CLUSTER_LOCK_WAIT"])
def test_a_timeout_that_is_not_whole_seconds_is_refused_by_name(variable: str, scratch: Path) -> None:
    done = bash(f"whole_seconds {variable} 5m", scratch)
    assert done.returncode != 0
    assert f"{variable} must be a whole number of seconds, got '5m'" in done.stderr
