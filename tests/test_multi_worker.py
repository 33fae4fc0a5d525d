"""Multi-worker training with real worker processes on 127.0.0.1, TF_CONFIG checks, TPU selection.

The launches train the fake task of tests/plugins (seconds); the documented
`kerasapps launch --workers 2 classification` runs in plugins/classification/tests, and a GAN's own
train_step under multi-worker in plugins/pix2pix/tests.
"""

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import FAKE, FAKE_ENV, ROOT, cli, launch, process_alive as _alive, worker_checksums as _checksums
from kerasapps.errors import UsageError

# Two workers of 16 examples a step each: 4 steps an epoch.
TINY = ["--batch-size", "32", "--set", "train_examples=128", "--set", "eval_examples=32"]
# The workers find the fake plugin and, before the installed one, this checkout's kerasapps.
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
           PYTHONPATH=os.pathsep.join(filter(None, [FAKE_ENV["PYTHONPATH"], str(ROOT), os.environ.get("PYTHONPATH")])))


def _launch(workspace, *args, on_line=None, timeout=420):
    """`kerasapps -p kerasapps_fake launch ARGS` (tests.conftest.launch): (exit status, output lines, worker pids)."""
    return launch(workspace, *args, prefix=FAKE, env=ENV, on_line=on_line, timeout=timeout)


def _listening_ports(net_dir) -> set:
    """TCP ports in LISTEN state in a network namespace's socket table (/proc/.../net)."""
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            rows = (net_dir / table).read_text().splitlines()[1:]
        except OSError:  # the process has exited
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A":
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


class _SocketWatch:
    """Polls the host's and the workers' socket tables for the workers' ports while a launch runs."""

    def __init__(self):
        self.ports, self.pids, self.on_host, self.in_workers = {}, {}, set(), set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def on_line(self, line, pids):
        match = re.match(r"\[launch\] worker (\d+): pid (\d+), [\d.]+:(\d+)", line)
        if match:
            self.ports[int(match.group(1))] = int(match.group(3))
            self.pids[int(match.group(1))] = int(match.group(2))

    def _poll(self):
        while not self._stop.wait(0.1):
            ports = set(self.ports.values())
            self.on_host |= ports & _listening_ports(Path("/proc/net"))
            for pid in list(self.pids.values()):
                self.in_workers |= ports & _listening_ports(Path(f"/proc/{pid}/net"))

    def stop(self):
        self._stop.set()
        self._thread.join()


def _assert_clean(workspace, pids):
    assert pids and not [pid for pid in pids.values() if _alive(pid)], "a worker was left running"
    leftovers = [p.name for p in (workspace / "runs" / "fake").iterdir() if p.name.endswith("-scratch")]
    assert not leftovers, f"non-chief scratch folders left behind: {leftovers}"


def test_launch_two_workers_trains_identical_replicas_and_exports_once(workspace):
    # BatchNormalization: its moving statistics are per worker until the engine averages them.
    watch = _SocketWatch()
    try:
        status, lines, pids = _launch(workspace, "--workers", 2, "fake", "--epochs", 2, "--set", "batch_norm=true",
                                      *TINY, on_line=watch.on_line)
    finally:
        watch.stop()
    output = "\n".join(lines)
    assert status == 0, output[-4000:]
    # The workers' unauthenticated gRPC ports listen only inside their private network namespace.
    assert "[launch] workers run in a private network namespace (loopback only)" in output
    assert watch.in_workers == set(watch.ports.values()) and len(watch.ports) == 2, (watch.ports, watch.in_workers)
    assert not watch.on_host, f"worker ports {watch.on_host} are listening in the host's network"
    assert "[launch] exit statuses: worker 0: 0, worker 1: 0" in output
    checksums = _checksums(lines)
    assert set(checksums) == {0, 1} and checksums[0] == checksums[1], checksums
    assert sorted(p.name for p in (workspace / "saved_models" / "fake").iterdir()) == ["1"]
    metrics = json.loads((workspace / "runs" / "fake" / "metrics.json").read_text())
    assert metrics["strategy"] == "MultiWorkerMirroredStrategy" and metrics["replicas"] == 2 and metrics["workers"] == 2
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    # Only the chief prints the run's results.
    assert "[worker 0] exported: saved_models/fake/1" in output
    assert "[worker 1] exported" not in output
    _assert_clean(workspace, pids)


def test_killed_worker_then_relaunch_resumes_at_epoch_two(workspace):
    args = ["--workers", 2, "fake", "--epochs", 3, "--steps-per-epoch", 30, *TINY]

    def kill_worker_one_after_epoch_one(line, pids):
        if line.startswith("[worker 0] epoch 1/3"):  # printed after the epoch's backup was written
            os.kill(pids[1], signal.SIGKILL)

    status, lines, pids = _launch(workspace, *args, on_line=kill_worker_one_after_epoch_one)
    output = "\n".join(lines)
    assert status != 0, output[-3000:]
    assert "[launch] worker 1 exited with status -9; stopping the others" in output
    assert not [pid for pid in pids.values() if _alive(pid)]

    status, lines, pids = _launch(workspace, *args)
    output = "\n".join(lines)
    assert status == 0, output[-4000:]
    for worker in (0, 1):
        assert f"[worker {worker}] resuming fake from runs/fake/backup: epoch 2/3" in output
        assert f"[worker {worker}] epoch 1/3" not in output
    checksums = _checksums(lines)
    assert set(checksums) == {0, 1} and checksums[0] == checksums[1]
    history = json.loads((workspace / "runs" / "fake" / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    _assert_clean(workspace, pids)


def test_launch_refuses_user_mistakes_before_starting_workers(workspace):
    result = cli("launch", "--workers", "2", "no-such-task", cwd=workspace)
    assert result.returncode == 2 and "unknown task 'no-such-task'" in result.stderr
    result = cli(*FAKE, "launch", "fake", "--strategy", "mirrored", cwd=workspace, env=FAKE_ENV)
    assert result.returncode == 2 and "leave --strategy out" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("network", ["private", "host"])
def test_sigterm_to_the_launcher_stops_every_worker(workspace, network):
    process = subprocess.Popen([sys.executable, "-m", "kerasapps", *FAKE, "launch", "--network", network, "--workers",
                                "2", "fake", "--epochs", "500", *TINY], cwd=workspace, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pids, lines = {}, []
    try:
        for line in process.stdout:
            lines.append(line)
            if match := re.match(r"\[launch\] worker (\d+): pid (\d+)", line):
                pids[int(match.group(1))] = int(match.group(2))
            if line.startswith("[worker 0] epoch 1/500"):
                process.send_signal(signal.SIGTERM)
                break
        lines += process.stdout.readlines()
        status = process.wait(timeout=60)
    finally:
        process.kill()
    assert status != 0 and len(pids) == 2, "".join(lines[-30:])
    assert not [pid for pid in pids.values() if _alive(pid)], "a worker outlived its launcher"


@pytest.mark.parametrize("network", ["auto", "private"])
def test_without_namespaces_auto_warns_and_private_refuses(monkeypatch, network):
    from kerasapps import launch

    monkeypatch.setattr(launch, "private_network_error", lambda: "the kernel refused (test)")
    monkeypatch.setattr(launch, "_launch_here", lambda count, command, **kwargs: 0)
    out = io.StringIO()
    if network == "private":
        with pytest.raises(UsageError, match=r"cannot give the workers a private network: the kernel refused \(test\)"):
            launch.launch_workers(2, ["-p", "kerasapps_fake", "run", "fake"], out=out, network=network)
    else:
        assert launch.launch_workers(2, ["-p", "kerasapps_fake", "run", "fake"], out=out, network=network) == 0
        assert "warning: the kernel refused (test); the workers' ports listen on every network interface" in out.getvalue()


def test_a_namespace_the_probe_allowed_but_the_real_call_refuses_is_one_usage_error(monkeypatch):
    from kerasapps import launch

    def refuse():
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(launch, "private_network_error", lambda: None)
    monkeypatch.setattr(launch, "_enter_private_network", refuse)  # runs in the child, as the real one
    with pytest.raises(UsageError, match=r"could not start the workers in a private network namespace .*--network host"):
        launch.launch_workers(2, ["-p", "kerasapps_fake", "run", "fake"], out=io.StringIO(), network="private")


def test_private_network_is_available_on_this_linux_machine():
    from kerasapps.training.launch import private_network_error

    # The launch tests above rely on it; where a kernel refuses namespaces this says why.
    assert private_network_error() is None


def test_multi_worker_without_tf_config_is_a_usage_error(workspace):
    env = {k: v for k, v in ENV.items() if k != "TF_CONFIG"}
    result = subprocess.run([sys.executable, "-m", "kerasapps", *FAKE, "run", "fake", "--strategy", "multi-worker"],
                            cwd=workspace, env=dict(env, **FAKE_ENV), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "needs the TF_CONFIG environment variable" in result.stderr and "kerasapps launch" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("raw, message", [
    ("{not json", "not valid JSON"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}}', '"cluster" and "task" keys'),
    ('{"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}', "expected \"host:port\""),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "index 2 is out of range"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', "'chief' is not a job"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}', "parameter-server"),
])
def test_malformed_tf_config_names_what_is_wrong(raw, message):
    from kerasapps.training.distribute import check_tf_config

    with pytest.raises(UsageError, match=re.escape(message)):
        check_tf_config(raw)


def test_well_formed_tf_config_with_a_chief_is_accepted():
    from kerasapps.training.distribute import check_tf_config

    raw = '{"cluster": {"chief": ["h0:2222"], "worker": ["h1:2222"]}, "task": {"type": "worker", "index": 0}}'
    assert check_tf_config(raw)["task"] == {"type": "worker", "index": 0}


def test_stop_kills_a_worker_that_ignores_sigterm():
    from kerasapps.training.launch import _stop

    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                               "print('ready', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert stubborn.stdout.readline().strip() == "ready"
    started = time.monotonic()
    _stop([stubborn], grace=0.5)
    assert stubborn.returncode == -signal.SIGKILL and time.monotonic() - started < 10


def test_free_ports_are_distinct():
    from kerasapps.training.launch import free_ports, worker_tf_configs

    assert len(set(free_ports(4))) == 4
    configs = worker_tf_configs(3)
    assert [c["task"]["index"] for c in configs] == [0, 1, 2]
    assert len(set(configs[0]["cluster"]["worker"])) == 3 and all(c["cluster"] == configs[0]["cluster"] for c in configs)


def test_auto_shard_policy_becomes_data_unless_the_dataset_chose():
    import tensorflow as tf

    from kerasapps.training.engine import shard_by_data

    policy = tf.data.experimental.AutoShardPolicy
    assert shard_by_data(tf.data.Dataset.range(4)).options().experimental_distribute.auto_shard_policy == policy.DATA
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy.FILE
    chosen = tf.data.Dataset.range(4).with_options(options)
    assert shard_by_data(chosen).options().experimental_distribute.auto_shard_policy == policy.FILE


class _FakeTPU:
    """Stands in for TensorFlow's TPU entry points; records what was called."""

    def __init__(self, monkeypatch, fail=False):
        import tensorflow as tf

        self.calls = []
        fake = self

        class Resolver:
            def __init__(self, tpu=None):
                if fail:
                    raise ValueError(f"Could not lookup TPU metadata for {tpu}")
                fake.calls.append(("resolver", tpu))
                self.tpu = tpu

        monkeypatch.setattr(tf.distribute.cluster_resolver, "TPUClusterResolver", Resolver)
        monkeypatch.setattr(tf.config, "experimental_connect_to_cluster", lambda r: self.calls.append(("connect", r.tpu)))
        monkeypatch.setattr(tf.tpu.experimental, "initialize_tpu_system", lambda r: self.calls.append(("init", r.tpu)))
        monkeypatch.setattr(tf.distribute, "TPUStrategy", lambda r: ("TPUStrategy", r.tpu))


def test_tpu_by_name_connects_initialises_and_builds_the_strategy(monkeypatch):
    from kerasapps.training.distribute import resolve_strategy

    monkeypatch.delenv("TPU_NAME", raising=False)
    fake = _FakeTPU(monkeypatch)
    assert resolve_strategy("tpu", "my-tpu") == ("TPUStrategy", "my-tpu")
    assert fake.calls == [("resolver", "my-tpu"), ("connect", "my-tpu"), ("init", "my-tpu")]


def test_local_tpu_does_not_connect_and_auto_picks_tpu_from_the_environment(monkeypatch):
    from kerasapps.training.distribute import resolve_strategy

    fake = _FakeTPU(monkeypatch)
    assert resolve_strategy("tpu", "local") == ("TPUStrategy", "local")
    assert fake.calls == [("resolver", "local"), ("init", "local")]
    fake.calls.clear()
    monkeypatch.setenv("TPU_NAME", "pod-v4-32")
    assert resolve_strategy("auto") == ("TPUStrategy", "pod-v4-32")
    assert ("connect", "pod-v4-32") in fake.calls


def test_missing_tpu_is_a_usage_error_that_names_it(monkeypatch):
    from kerasapps.training.distribute import resolve_strategy

    monkeypatch.delenv("TPU_NAME", raising=False)
    _FakeTPU(monkeypatch, fail=True)
    with pytest.raises(UsageError, match="no TPU found for --tpu 'nowhere'"):
        resolve_strategy("tpu", "nowhere")


@pytest.mark.parametrize("cluster, task_type, task_id, chief", [
    ({"worker": ["a:1", "b:1"]}, "worker", 0, True),
    ({"worker": ["a:1", "b:1"]}, "worker", 1, False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, "chief", 0, True),
    ({"chief": ["c:1"], "worker": ["a:1"]}, "worker", 0, False),
])
def test_the_chief_is_the_chief_job_else_worker_zero(cluster, task_type, task_id, chief):
    import types

    import tensorflow as tf

    from kerasapps.training.distribute import is_chief, worker_count

    resolver = types.SimpleNamespace(task_type=task_type, task_id=task_id,
                                     cluster_spec=lambda: tf.train.ClusterSpec(cluster))
    strategy = types.SimpleNamespace(cluster_resolver=resolver,
                                     extended=types.SimpleNamespace(_in_multi_worker_mode=lambda: True))
    assert is_chief(strategy) is chief
    assert worker_count(strategy) == 2
    # the same rule decides from TF_CONFIG alone, before any strategy exists
    from kerasapps.training.distribute import tf_config_is_chief

    assert tf_config_is_chief({"cluster": cluster, "task": {"type": task_type, "index": task_id}}) is chief


def test_workers_writing_one_json_file_at_once_never_collide(tmp_path):
    # Workers share a workdir; with one fixed temporary name, one worker's rename moved
    # the other's file away (FileNotFoundError in CI). Each writer now has its own.
    import threading

    from kerasapps.training.runner import write_json_atomic

    target, errors = tmp_path / "config.json", []

    def write_many(value):
        try:
            for _ in range(200):
                write_json_atomic(target, {"writer": value})
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write_many, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert json.loads(target.read_text())["writer"] in range(4)
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
