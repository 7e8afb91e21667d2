"""A local Apache Kafka broker (KRaft, single node, combined roles) for development, tests and benchmarks.

Not used in production: there, Railbook talks to whatever cluster ``--kafka`` names. Here the
broker's jars come from Maven Central through the repository's ``pom.xml`` (cached under
``.cache/kafka/libs``), and the broker runs with the machine's JDK (17+) on loopback ports, with its
data and log in a work directory::

    java -cp 'libs/*' kafka.tools.StorageTool format -t <cluster id> -c server.properties
    java -cp 'libs/*' kafka.Kafka server.properties

``scripts/kafka-broker.sh fetch|start|stop|status`` wraps this module for manual use
(``python -m ingest._kafka_broker …``); the integration tests' session fixture and
``railbook bench kafka`` call :func:`start_broker` directly.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import KafkaError

__all__ = ["LocalBroker", "fetch_jars", "free_port", "kafka_libs_dir", "start_broker", "stop_pidfile"]

REPO_ROOT = Path(__file__).resolve().parents[1]
#: a marker written after a complete fetch, so an interrupted ``mvn`` run is not mistaken for a cache
_FETCHED_MARKER = ".fetched"

_LOG4J2 = """\
# Railbook dev broker: warnings and errors only, to broker.log in the work directory.
status = error
name = railbook-dev-broker
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{ISO8601}} %-5p [%c{{1}}] %m%n
rootLogger.level = warn
rootLogger.appenderRef.file.ref = file
# one INFO line worth having: "Kafka Server started" tells a reader the broker came up
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
"""

_SERVER_PROPERTIES = """\
# Railbook dev/test broker: KRaft, one node that is both broker and controller, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=1
auto.create.topics.enable=true
# one node: every internal topic has one replica, and few partitions so the broker starts fast
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=2
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# 8 MiB messages, so oversized-message dead letters (consumer limit 4 MiB) can be tested end to end
message.max.bytes=8388608
replica.fetch.max.bytes=8388608
log.retention.hours=24
log.segment.bytes=67108864
"""


def kafka_libs_dir() -> Path:
    """Where the broker jars live: ``$RAILBOOK_KAFKA_LIBS`` or ``<repo>/.cache/kafka/libs``."""
    env = os.environ.get("RAILBOOK_KAFKA_LIBS")
    return Path(env) if env else REPO_ROOT / ".cache" / "kafka" / "libs"


def fetch_jars(libs: Path | None = None, *, force: bool = False, quiet: bool = True) -> Path:
    """Resolve the broker jars with Maven (``pom.xml``) into ``libs``; a no-op when already fetched."""
    libs = libs or kafka_libs_dir()
    if not force and (libs / _FETCHED_MARKER).exists() and any(libs.glob("kafka_2.13-*.jar")):
        return libs
    pom = REPO_ROOT / "pom.xml"
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaError(
            "cannot fetch the Kafka broker jars: 'mvn' (Apache Maven) is not on PATH; "
            f"install Maven (apt-get install maven), or put the jars in {libs} (RAILBOOK_KAFKA_LIBS)"
        )
    if not pom.exists():
        raise KafkaError(
            f"cannot fetch the Kafka broker jars: {pom} not found (run from a Railbook checkout)"
        )
    libs.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={libs}",
    ]
    if quiet:
        cmd.insert(1, "-q")
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not any(libs.glob("kafka_2.13-*.jar")):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise KafkaError(
            f"cannot fetch the Kafka broker jars: '{' '.join(cmd)}' exited {proc.returncode}; "
            "expected kafka_2.13-*.jar in the output directory. Check that Maven Central "
            "(https://repo.maven.apache.org) is reachable, or set up a Maven mirror in ~/.m2/settings.xml.\n"
            + tail
        )
    (libs / _FETCHED_MARKER).write_text("ok\n")
    return libs


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster_id() -> str:
    # Kafka's Uuid text form: URL-safe base64 of 16 bytes, unpadded; it never starts with '-'.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        raise KafkaError("cannot start the Kafka broker: no 'java' on PATH (JDK 17+ needed; set JAVA_HOME)")
    return java


@dataclass
class LocalBroker:
    """A broker process started by :func:`start_broker`; :meth:`stop` ends it (SIGTERM, then SIGKILL)."""

    workdir: Path
    port: int
    controller_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    owns_workdir: bool = False

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "broker.log"

    def log_tail(self, lines: int = 60) -> str:
        """The end of the broker's log and its stdout/stderr, for failure messages."""
        out = []
        for p in (self.log_path, self.workdir / "broker.out"):
            if p.exists():
                text = p.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {p} ---\n" + "\n".join(text))
        return "\n".join(out) or "(no broker output)"

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Block until the broker answers a metadata request, or raise ``KafkaError`` with its log."""
        from kafka import KafkaAdminClient  # here, so an import problem fails at once, not after timeout

        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise KafkaError(
                    f"Kafka broker exited with code {self.process.returncode} before it answered on "
                    f"{self.bootstrap}\n{self.log_tail()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0):
                    pass
                _probe_metadata(KafkaAdminClient, self.bootstrap)
                return
            except Exception as exc:  # not up yet: connection refused, no metadata, no controller
                last = exc
                time.sleep(0.3)
        raise KafkaError(
            f"Kafka broker did not answer on {self.bootstrap} within {timeout:.0f}s (last error: {last})\n"
            + self.log_tail()
        )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (the broker flushes and closes its logs), then SIGKILL after ``timeout`` seconds."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.process = None
        with contextlib.suppress(FileNotFoundError):
            (self.workdir / "broker.pid").unlink()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _probe_metadata(admin_client: Any, bootstrap: str) -> None:
    """One metadata round trip with a controller elected (KRaft answers TCP before it can serve)."""
    admin = admin_client(bootstrap_servers=bootstrap, request_timeout_ms=3000, bootstrap_timeout_ms=2000)
    try:
        cluster = admin.describe_cluster()
        if cluster.get("controller_id") in (None, -1):
            raise RuntimeError("no controller elected yet")
    finally:
        admin.close()


def start_broker(
    workdir: Path | str | None = None,
    *,
    port: int | None = None,
    heap: str = "512m",
    timeout: float = 90.0,
    fetch: bool = True,
    detach: bool = False,
) -> LocalBroker:
    """Format a fresh KRaft log dir in ``workdir`` (a new temp dir when ``None``), start the broker and
    wait until it answers. ``detach`` starts it in its own session (outlives this process; for the
    script) and records ``broker.pid``; stop it with :func:`stop_pidfile`."""
    libs = fetch_jars() if fetch else kafka_libs_dir()
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise KafkaError(f"no Kafka jars in {libs}; run scripts/kafka-broker.sh fetch")
    owns = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="railbook-kafka-")) if workdir is None else Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    data = wd / "data"
    if data.exists():
        shutil.rmtree(data)
    broker = LocalBroker(wd, port or free_port(), free_port(), owns_workdir=owns)
    props = wd / "server.properties"
    props.write_text(
        _SERVER_PROPERTIES.format(port=broker.port, controller_port=broker.controller_port, data=data)
    )
    log4j = wd / "log4j2.properties"
    log4j.write_text(_LOG4J2.format(log=broker.log_path))
    java = _java()
    classpath = str(libs / "*")
    jvm = [
        java,
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={log4j}",
        "-Dlog4j2.disable.jmx=true",
        "-cp",
        classpath,
    ]
    fmt = subprocess.run(
        [*jvm, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(props)],
        capture_output=True,
        text=True,
        check=False,
    )
    if fmt.returncode != 0:
        raise KafkaError(
            f"Kafka StorageTool format failed (exit {fmt.returncode}) for {props}:\n{fmt.stdout}{fmt.stderr}"
        )
    out = (wd / "broker.out").open("wb")
    try:
        broker.process = subprocess.Popen(
            [*jvm, "kafka.Kafka", str(props)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C in a test run reaches pytest, which then stops us cleanly
        )
    finally:
        out.close()
    (wd / "broker.pid").write_text(f"{broker.process.pid}\n")
    (wd / "bootstrap").write_text(broker.bootstrap + "\n")
    try:
        broker.wait_ready(timeout)
    except BaseException:
        broker.owns_workdir = False  # keep the log for whoever reads the error
        broker.stop()
        raise
    if detach:
        broker.process = None  # forget it: stop_pidfile() ends it later
    return broker


def stop_pidfile(workdir: Path | str, timeout: float = 30.0) -> bool:
    """Stop a detached broker by ``workdir/broker.pid``; True when one was running."""
    pidfile = Path(workdir) / "broker.pid"
    try:
        pid = int(pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pidfile.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child (else it lingers as a zombie)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kafka-broker", description="Railbook's dev Kafka broker.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("fetch", help="resolve the broker jars with Maven (skipped when cached)")
    p_start = sub.add_parser("start", help="start a broker in the background and print its bootstrap")
    p_start.add_argument("--dir", default=str(REPO_ROOT / ".cache" / "kafka" / "run"))
    p_start.add_argument("--port", type=int, default=9092)
    p_start.add_argument("--heap", default="512m")
    p_stop = sub.add_parser("stop", help="stop the broker started with 'start'")
    p_stop.add_argument("--dir", default=str(REPO_ROOT / ".cache" / "kafka" / "run"))
    p_status = sub.add_parser("status", help="print the bootstrap of a running broker, exit 1 if none")
    p_status.add_argument("--dir", default=str(REPO_ROOT / ".cache" / "kafka" / "run"))
    args = parser.parse_args(argv)
    try:
        if args.cmd == "fetch":
            print(fetch_jars(quiet=False))
        elif args.cmd == "start":
            if _running(Path(args.dir)):
                running = (Path(args.dir) / "bootstrap").read_text().strip()
                print(f"already running: {running}", file=sys.stderr)
                return 1
            broker = start_broker(args.dir, port=args.port, heap=args.heap, detach=True)
            print(broker.bootstrap)
        elif args.cmd == "stop":
            if not stop_pidfile(args.dir):
                print("no broker running", file=sys.stderr)
        elif args.cmd == "status":
            if not _running(Path(args.dir)):
                print("no broker running", file=sys.stderr)
                return 1
            print((Path(args.dir) / "bootstrap").read_text().strip())
    except KafkaError as exc:
        print(exc.diagnostics(), file=sys.stderr)
        return 1
    return 0


def _running(workdir: Path) -> bool:
    try:
        pid = int((workdir / "broker.pid").read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return False
    return True


if __name__ == "__main__":
    sys.exit(_main())
